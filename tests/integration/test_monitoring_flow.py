"""The monitoring flow on a real registry and a real prediction log (scored in-process)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest

from fraudops import registry
from fraudops.data import contract as c
from fraudops.drift.monitor import MonitorInputError, load_champion_reference, read_decisions
from fraudops.drift.report import DriftInputError
from fraudops.serving.scorer import Scorer
from fraudops.settings import Settings
from fraudops.streaming.handbook_state import Transaction
from monitoring.flow import run_monitoring
from pipelines.training import run_training, with_overrides

pytestmark = [pytest.mark.integration, pytest.mark.slow]
HISTORY_END = dt.date(2018, 5, 31)


@pytest.fixture
def setup(tmp_path, small_history):
    """v1 trained on the history up to May 31; June scored into the prediction log."""
    data = tmp_path / "history.parquet"
    history = small_history[
        small_history[c.TX_DATETIME] < pd.Timestamp(HISTORY_END) + pd.Timedelta(days=1)
    ]
    history.to_parquet(data)
    settings = Settings(
        home=tmp_path / "home",
        data_path=data,
        train_days=14,  # 61 days: 30 warm-up + 14 + 7 + 7
        gate_min_average_precision=0,  # tiny history: the gate is not under test
        monitor_min_rows=500,
        min_labelled_rows=200,
    )
    assert run_training(settings).promoted
    return settings, small_history[
        small_history[c.TX_DATETIME] > pd.Timestamp(HISTORY_END) + pd.Timedelta(days=1)
    ]


def score_days(settings: Settings, rows: pd.DataFrame, amount_scale: float = 1.0) -> None:
    scorer = Scorer.start(settings, poll=False)
    try:
        for r in rows.itertuples(index=False):
            scorer.score(
                [
                    Transaction(
                        r.TRANSACTION_ID,
                        r.TX_DATETIME,
                        r.CUSTOMER_ID,
                        r.TERMINAL_ID,
                        r.TX_AMOUNT * amount_scale,
                    ).as_event()
                ]
            )
    finally:
        scorer.close()


def test_clean_window_is_reported_and_does_not_retrain(setup):
    settings, june = setup
    score_days(settings, june.head(6000))
    decision = run_monitoring(settings, retrain=lambda *_: pytest.fail("a clean window retrained"))
    assert not decision.retrain and not decision.drifted
    assert decision.figures["drift_share"] <= settings.drift_share_threshold
    html = decision.report_html
    assert html and html.endswith(".html")
    recorded = json.loads(Path(html.replace(".html", ".json")).read_text())
    assert recorded["retrain"] is False and 0 < recorded["figures"]["current_rows"] <= 6000
    page = Path(html).read_text(encoding="utf-8")
    days = recorded["days_with_rows"]
    assert f"<title>Drift report {decision.window_start}..{decision.window_end}" in page
    assert 'id="fraudops-header"' in page and "Decision: no drift" in page
    assert ("Window not full" in page) == (days < settings.monitor_window_days)
    assert len(read_decisions(settings)) == 1
    assert (settings.reports_dir / "workspace").is_dir()
    # prediction drift is measured against the champion's holdout scores, out of sample
    champion = load_champion_reference(settings)
    held = champion.score_reference
    assert held is not None and len(held) > 1_000
    assert held[c.TX_DATETIME].min() >= pd.Timestamp(champion.train_end)


def test_drifted_windows_retrain_through_the_training_flow(
    setup, prefect_api, monkeypatch, tmp_path
):
    settings, june = setup
    score_days(settings, june.head(6000), amount_scale=4.0)
    # the settings object reaches the training flow; the environment points elsewhere
    elsewhere = tmp_path / "not-this-home"
    monkeypatch.setenv("FRAUDOPS_HOME", str(elsewhere))
    monkeypatch.setenv("FRAUDOPS_DRIFT_WINDOWS_NEEDED", "3")
    drifting = with_overrides(
        settings,
        drift_windows_needed=1,
        api_token="s3cret-token-value",
        hash_secret="s3cret-hash-value",
        feature_store="redis://:s3cret-redis-password@127.0.0.1:6379/0",  # unread by the flows
    )
    calls = []

    def retrain(s: Settings, end: dt.date) -> dict:
        from monitoring.flow import retrain_in_process

        calls.append(end)
        return retrain_in_process(s, end)

    decision = run_monitoring(drifting, retrain=retrain)
    assert decision.drifted and decision.retrain and calls
    assert c.TX_AMOUNT in decision.figures["drifted_columns"]
    assert "error" not in decision.retrain_result, decision.retrain_result
    assert decision.retrain_result["version"] == "2"
    assert not elsewhere.exists()
    # no secret became a recorded flow parameter (Prefect keeps them in its database)
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as prefect:
        runs = prefect.read_flow_runs()
    recorded = [r.parameters for r in runs]
    assert any(p.get("settings", {}).get("home") == str(settings.home) for p in recorded)
    assert "s3cret" not in json.dumps(recorded, default=str)
    client = registry.client_for(settings)
    assert client.get_model_version(settings.model_name, "2").tags["gate"] in {
        "promoted",
        "rejected",
    }


def test_bad_input_ends_with_a_clear_message_and_no_retrain(tmp_path, setup):
    settings, june = setup
    never = lambda *_: pytest.fail("retrained on bad input")  # noqa: E731
    with pytest.raises(MonitorInputError, match=r"prediction log .* is empty"):
        run_monitoring(settings, retrain=never)
    score_days(settings, june.head(2000))
    with pytest.raises(MonitorInputError, match="has no rows"):
        run_monitoring(settings, window_end=dt.date(2018, 5, 1), retrain=never)
    broken = settings.prediction_log_dir / "date=2018-06-30"
    broken.mkdir(parents=True)
    pd.DataFrame(
        {"transaction_id": [1], "tx_datetime": [pd.Timestamp("2018-06-30")], "score": [0.1]}
    ).to_parquet(broken / "part-x.parquet")
    with pytest.raises(DriftInputError, match="lacks column"):
        run_monitoring(settings, window_end=dt.date(2018, 6, 30), retrain=never)
    with pytest.raises(MonitorInputError, match="no @champion"):
        run_monitoring(Settings(home=tmp_path / "empty-home"), retrain=never)
    assert read_decisions(settings) == []


@pytest.mark.e2e
def test_monitor_command_without_champion_exits_2_naming_the_problem(tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "FRAUDOPS_HOME": str(tmp_path / "fresh")}
    done = subprocess.run(
        [sys.executable, "-m", "fraudops_cli", "monitor", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2
    # refused before the flow starts: one line, and no registry is created to say so
    assert done.stderr.startswith("error: no model is registered under"), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "fresh" / "reports" / "decisions.jsonl").exists()
    assert not (tmp_path / "fresh" / "mlflow.db").exists()
