"""The online gate on a real registry: a staged challenger waits without labels, is promoted
on paired evidence that it is better, and another is rejected on evidence that it is worse."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from fraudops import registry
from fraudops.logs.predlog import LogWriter
from fraudops.logs.records import LABEL_TIME, LOG_TIME, ChallengerRecord, LabelRecord
from fraudops.online_promotion import online_gate, read_runs
from fraudops.registry import audit
from fraudops.registry import stage as stages
from fraudops.settings import Settings
from monitoring.flow import judge_challenger
from pipelines.training import run_training

pytestmark = pytest.mark.integration

_ids = iter(range(70_000_000, 80_000_000))


def evidence(settings: Settings, champion: str, challenger: str, better: bool, n=4_000) -> None:
    """n paired, labelled events over 5 days: the challenger separates frauds far better
    (``better``) or far worse than the champion."""
    rng = np.random.default_rng(5)
    labels = (rng.random(n) < 0.03).astype(int)
    strong = 1 / (1 + np.exp(-(-4 + 4 * labels + rng.normal(0, 1, n))))
    weak = 1 / (1 + np.exp(-(-4 + 0.8 * labels + rng.normal(0, 1, n))))
    old, new = (weak, strong) if better else (strong, weak)
    start = dt.datetime(2026, 3, 1)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    scored = LogWriter(settings.challenger_log_dir, LOG_TIME, flush_seconds=0.05, journal=False)
    labelled = LogWriter(settings.label_log_dir, LABEL_TIME, flush_seconds=0.05, journal=False)
    ids = [next(_ids) for _ in range(n)]
    scored.append_many(
        [
            ChallengerRecord(
                event_id=ids[i],
                event_time=start + dt.timedelta(minutes=2 * i),
                entities={"customer_hash": f"c{i % 900}", "terminal_hash": f"t{i % 300}"},
                stage=stages.SHADOW,
                decided_by="champion",
                champion_version=champion,
                champion_score=float(old[i]),
                challenger_version=challenger,
                challenger_score=float(new[i]),
                challenger_decision="pass",
                challenger_ms=0.1,
                scored_at=now,
            ).row()
            for i in range(n)
        ]
    )
    labelled.append_many([LabelRecord(ids[i], int(labels[i]), now).row() for i in range(n)])
    scored.close()
    labelled.close()


def alias(client, name: str) -> str:
    return str(registry.version_by_alias(client, "fraud-detector", name).version)


def test_a_staged_challenger_waits_for_labels_then_the_better_is_promoted_the_worse_rejected(
    tmp_path, history
):
    settings = Settings(
        home=tmp_path / "home",
        data_path=history,
        promotion="staged",
        online_gate_resamples=100,
        gate_ap_tolerance=1.0,  # the offline gate passes whatever the second model scores
        gate_recall_tolerance=1.0,
    )
    assert run_training(settings).promoted  # the first model has no champion to be staged against
    second = run_training(settings.model_copy(update={"seed": 1}))
    assert second.stage == stages.SHADOW and not second.promoted
    client = registry.client_for(settings)
    assert alias(client, registry.CHALLENGER) == "2"

    from fraudops.registry.card import ModelCard

    card = ModelCard.from_tags(dict(client.get_model_version(settings.model_name, "2").tags))
    assert set(card.feature_importance) == set(card.features)  # permutation importance, signed
    assert max(card.feature_importance.values()) > 0.01

    waiting = judge_challenger(settings)
    assert waiting["outcome"] == "waiting" and "labelled frauds" in waiting["summary"]

    evidence(settings, champion="1", challenger="2", better=True)
    promoted = online_gate(settings)
    assert promoted.outcome == "promoted", promoted.decision.summary
    assert alias(client, registry.CHAMPION) == "2"
    assert alias(client, registry.PREVIOUS) == "1"
    tags = client.get_model_version(settings.model_name, "2").tags
    assert tags["stage"] == stages.PROMOTED and "not worse" in tags["stage_reason"]
    assert online_gate(settings) is None  # nothing live any more

    stages.enter(client, settings.model_name, "1", stages.SHADOW, reason="test: v1 again")
    evidence(settings, champion="2", challenger="1", better=False)
    rejected = online_gate(settings)
    assert rejected.outcome == "rejected", rejected.decision.summary
    assert alias(client, registry.CHAMPION) == "2"
    assert client.get_model_version(settings.model_name, "1").tags["stage"] == stages.REJECTED

    runs = read_runs(settings)
    assert [r["outcome"] for r in runs] == ["waiting", "promoted", "rejected"]
    assert runs[1]["decision"]["differences"]["average_precision"]["low"] > 0
    actions = [e.action for e in audit.read(client, settings.model_name)]
    assert {"stage-shadow", "stage-promoted", "stage-rejected", "promote"} <= set(actions)
    artifacts = [a.path for a in client.list_artifacts(second.run_id, "stage")]
    assert any(path.endswith("-promoted.json") for path in artifacts)
    assert pd.Timestamp(runs[1]["at"]) >= pd.Timestamp(runs[0]["at"])

    from typer.testing import CliRunner

    from fraudops_cli.main import app

    runner = CliRunner()
    env = {"FRAUDOPS_HOME": str(settings.home), "FRAUDOPS_DATA_PATH": str(history)}
    moved = runner.invoke(app, ["stage", "1", "canary", "--share", "0.3"], env=env)
    assert moved.exit_code == 0, moved.output
    status = runner.invoke(app, ["status"], env=env)
    assert status.exit_code == 0, status.output
    lines = {line.split()[0]: line for line in status.output.splitlines() if line.startswith("  v")}
    assert "@champion" in lines["v2"] and "stage promoted" in lines["v2"]
    assert "@challenger" in lines["v1"] and "canary" in lines["v1"] and "(share 30%)" in lines["v1"]
    refused = runner.invoke(app, ["stage", "2", "shadow"], env=env)
    assert refused.exit_code == 2 and "is @champion already" in refused.output
    ended = runner.invoke(app, ["stage", "1", "reject", "--reason", "enough"], env=env)
    assert ended.exit_code == 0 and "v1 rejected" in ended.output
