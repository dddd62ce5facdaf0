"""`fraudops demo` end to end on short replays: injected drift retrains, a clean replay does not."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import sys

import pandas as pd
import pytest

from tests.conftest import HANDBOOK_FILE

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


#: Where the tools keep state: the demo points them at its home unless the caller set them.
TOOL_HOMES = ("PREFECT_HOME", "BENTOML_HOME", "MLFLOW_TRACKING_URI", "PREFECT_API_URL")


def demo_env(tmp_path) -> dict[str, str]:
    """The environment of a demo run under ``tmp_path/home``, no tool pointed elsewhere."""
    env = {k: v for k, v in os.environ.items() if k not in TOOL_HOMES}
    return {**env, "FRAUDOPS_HOME": str(tmp_path / "home")}


def demo(tmp_path, *args: str, handbook: bool = True) -> dict:
    env = demo_env(tmp_path)
    data = ["--data", str(HANDBOOK_FILE)] if handbook and HANDBOOK_FILE.is_file() else []
    done = subprocess.run(
        [sys.executable, "-m", "fraudops_cli", "demo", *data, "--json", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def test_injected_amount_drift_is_detected_and_retrains(tmp_path):
    summary = demo(
        tmp_path,
        *("--days", "9", "--inject-drift", "amount", "--drift-from", "2018-06-03"),
        *("--analysts", "0"),
    )
    assert summary["retrains"] >= 1
    assert summary["weeks"][0]["rows"] > 0
    for week in summary["weeks"]:  # no analysts: every fraud waits for its chargeback
        assert week["analyst_decisions"] == 0 and week["frauds_known_in_a_day"] in (0.0, None)
    assert list((tmp_path / "home" / "demo" / "reports").glob("drift-*.html"))


def test_plain_replay_does_not_retrain_and_analyst_labels_count_in_terminal_risk_within_hours(
    tmp_path,
):
    """The same days without drift, on the ``handbook-arrival`` spec (the handbook's features
    plus the terminal's frauds known by label arrival): no retrain; analysts label frauds
    within hours, the service counts each label in the terminal's known risk from the moment
    it arrives, and the warehouse records that moment, so the features served equal the
    training features recomputed from the warehouse."""
    from fraudops.cases.store import CaseStore
    from fraudops.logs.predlog import read_log
    from fraudops.offline.engine import compute_spec_features
    from fraudops.spec import load_spec
    from fraudops.spec.data import prepare_events, read_events

    summary = demo(tmp_path, "--spec", "handbook-arrival", "--days", "9", "--analysts", "40")
    assert summary["retrains"] == 0 and summary["champion_versions"] == ["1"]
    # the label-free challenger staged on day 1 is scored in shadow and never promoted
    assert all(d["outcome"] != "promoted" for d in summary["online_decisions"])
    assert summary["weeks"][0]["stage"] == "shadow" and summary["weeks"][0]["challenger"] == "v2"
    for week in summary["weeks"]:  # labelled by the days replayed, inside their week
        first, last = week["days"].split("..")
        assert week["week"][5:] <= first <= last
    home = tmp_path / "home" / "demo"
    store = CaseStore.open(f"sqlite:///{home / 'cases.db'}")
    decided = store.decided()
    store.close()
    reviewed = sum(week["analyst_decisions"] for week in summary["weeks"])
    assert reviewed == len(decided) > 0
    assert max(week["frauds_known_in_a_day"] for week in summary["weeks"]) > 0
    labels = read_log(home / "labels")
    analyst = labels[labels["source"] == "analyst"]
    assert len(analyst) == sum(c.disposition != "unsure" for c in decided)
    assert set(analyst["labelled_by"]) <= {f"sim-analyst-{i}" for i in range(1, 6)}
    spec = load_spec("handbook-arrival")
    events = prepare_events(read_events(home / "warehouse", spec), spec)
    offline = compute_spec_features(events, spec).set_index(events[spec.event_id.column])
    served = read_log(home / "predictions").set_index("transaction_id")
    known = ["TERMINAL_ID_KNOWN_RISK_1DAY_WINDOW", "TERMINAL_ID_KNOWN_RISK_7DAY_WINDOW"]
    assert (served[known].to_numpy() > 0).sum() > 20  # analysts' labels reached the features
    pd.testing.assert_frame_equal(served[known], offline.loc[served.index, known])
    # one home: Prefect's database is the demo's, its monitoring runs are recorded flow runs
    with sqlite3.connect(home / "prefect" / "prefect.db") as prefect:
        runs = prefect.execute(
            "SELECT fr.name, fr.tags, fr.state_type FROM flow_run fr JOIN flow f"
            " ON f.id = fr.flow_id WHERE f.name = 'monitor-fraud-model' ORDER BY fr.name"
        ).fetchall()
    days = [f"2018-06-0{d}" for d in range(1, 10)]
    assert [name for name, _, _ in runs] == [f"monitor window to {day}" for day in days]
    assert all("fraudops-demo" in json.loads(tags) for _, tags, _ in runs)
    assert {state for _, _, state in runs} == {"COMPLETED"}
    # the README's pictures, taken from the real UIs of this home
    shots = tmp_path / "shots"
    done = subprocess.run(
        [sys.executable, "-m", "fraudops_cli", "screenshots", "--out", str(shots)],
        env={**demo_env(tmp_path), "FRAUDOPS_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    pictures = sorted(shots.glob("*.png"))
    assert [p.name for p in pictures] == [
        "dashboard.png",
        "drift-report.png",
        "mlflow-version.png",
        "week-table.png",
    ]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pictures)


def test_the_cards_spec_runs_the_whole_loop_and_logs_no_card_token(tmp_path):
    import pandas as pd

    from fraudops.logs.predlog import read_log

    summary = demo(tmp_path, "--spec", "cards", "--days", "4", handbook=False)
    assert sum(week["analyst_decisions"] for week in summary["weeks"]) > 0  # text ids
    assert sum(week["rows"] for week in summary["weeks"]) > 10_000
    assert summary["champion_versions"][0] == "1"
    assert all(week["average_precision"] is not None for week in summary["weeks"])
    home = tmp_path / "home" / "demo"
    log = read_log(home / "predictions")
    assert {"card_hash", "device_hash", "merchant", "mcc", "card_merchants_1h"} <= set(log)
    assert not {"card_token", "device"} & set(log)  # PII entities only as keyed hashes
    tokens = set(pd.read_parquet(home / "warehouse")["card_token"].astype(str))
    assert not tokens & set(log["card_hash"])
    assert log["transaction_id"].str.startswith("tx-").all()  # the spec's text ids


def test_a_terminated_demo_stops_its_service_and_prefect_server(tmp_path):
    """SIGTERM (a CI runner's cancel, `kill`) ends the demo and every process it started."""
    import time

    import psutil

    env = demo_env(tmp_path)
    demo = subprocess.Popen(
        [sys.executable, "-m", "fraudops_cli", "demo", "--days", "5", "--analysts", "0"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    started: list[psutil.Process] = []
    try:
        service_log = tmp_path / "home" / "demo" / "service.log"
        deadline = time.monotonic() + 600
        while not (service_log.is_file() and "BentoServer" in service_log.read_text()):
            assert demo.poll() is None and time.monotonic() < deadline, "the service never started"
            time.sleep(1)
        time.sleep(5)  # its workers
        started = psutil.Process(demo.pid).children(recursive=True)
        assert len(started) >= 2  # the service (and its workers), Prefect's temporary server
        demo.terminate()
        assert demo.wait(180) == 128 + 15
        left = [p for p in started if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        assert not left, [p.cmdline()[:4] for p in left]
    finally:
        for process in [psutil.Process(demo.pid), *started] if demo.poll() is None else started:
            with contextlib.suppress(psutil.Error):
                process.kill()
