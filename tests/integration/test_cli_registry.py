"""CLI commands that need a registry but no Prefect: promote, rollback, simulate."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pandas as pd
import pytest
from typer.testing import CliRunner

from fraudops import registry
from fraudops.data import contract as c
from fraudops.data.sources import read_transactions
from fraudops.processes import free_port
from fraudops.settings import Settings
from fraudops_cli.main import app
from pipelines.training import run_training

pytestmark = pytest.mark.integration
runner = CliRunner()


@pytest.fixture
def home(tmp_path, small_history, monkeypatch):
    """A registry with version 1 (@champion) and version 2 (@challenger), no @previous."""
    data = tmp_path / "history.parquet"
    small_history.to_parquet(data)
    for key in ("MLFLOW_TRACKING_URI", "PREFECT_HOME", "BENTOML_HOME"):
        monkeypatch.setenv(key, "")  # restored after the test; the CLI only sets defaults
        monkeypatch.delenv(key)
    monkeypatch.setenv("FRAUDOPS_HOME", str(tmp_path / "home"))
    settings = Settings(data_path=data)
    run_training(settings)
    run_training(Settings(data_path=data, model_kind="logistic_regression", train_days=2))
    client = registry.client_for(settings)  # whatever the gate said: champion 1, no previous
    client.set_registered_model_alias(settings.model_name, "champion", "1")
    if registry.version_by_alias(client, settings.model_name, "previous"):
        client.delete_registered_model_alias(settings.model_name, "previous")
    return settings


def _alias(settings: Settings, alias: str) -> str | None:
    version = registry.version_by_alias(registry.client_for(settings), settings.model_name, alias)
    return None if version is None else str(version.version)


def test_promote_by_hand_moves_champion_and_records_the_override(home):
    result = runner.invoke(app, ["promote", "--version", "2", "--reason", "incident 42"])
    assert result.exit_code == 0, result.output
    assert (_alias(home, "champion"), _alias(home, "previous")) == ("2", "1")
    tags = registry.client_for(home).get_model_version(home.model_name, "2").tags
    assert tags["promotion_reason"] == "operator override: incident 42"


def test_rollback_returns_champion_to_previous(home):
    assert runner.invoke(app, ["promote", "--version", "2"]).exit_code == 0
    result = runner.invoke(app, ["promote", "--rollback"])
    assert result.exit_code == 0, result.output
    assert (_alias(home, "champion"), _alias(home, "previous")) == ("1", "2")


def test_rollback_without_previous_and_unknown_version_fail_cleanly(home):
    no_previous = runner.invoke(app, ["promote", "--rollback"])
    assert no_previous.exit_code == 2 and "no @previous" in no_previous.output
    unknown = runner.invoke(app, ["promote", "--version", "9"])
    assert unknown.exit_code == 2 and "no version 9" in unknown.output
    both = runner.invoke(app, ["promote", "--version", "2", "--rollback"])
    assert both.exit_code == 2
    assert _alias(home, "champion") == "1"


def test_simulate_writes_a_history_that_reads_back_under_the_contract(tmp_path):
    out = tmp_path / "sim.csv"
    result = runner.invoke(
        app,
        ["simulate", "--days", "10", "--customers", "50", "--terminals", "100", "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    frame = c.validate_transactions(read_transactions(out))
    assert frame[c.TX_DATETIME].dt.normalize().nunique() == 10
    renamed = tmp_path / "renamed.parquet"
    pd.read_csv(out).rename(columns={c.CUSTOMER_ID: "card"}).to_parquet(renamed)
    mapped = read_transactions(renamed, {"card": c.CUSTOMER_ID})
    assert len(c.validate_transactions(mapped)) == len(frame)


def test_report_fetches_the_champions_model_report_or_names_what_is_missing(home):
    result = runner.invoke(app, ["report"])
    assert result.exit_code == 0, result.output
    path = home.reports_dir / "models" / f"{home.model_name}-v1.html"
    assert result.output.strip() == f"model report: {path.as_uri()}"
    page = path.read_text(encoding="utf-8")
    assert "<title>Model report: fraud-detector v1</title>" in page and "ROC curve" in page
    logistic = runner.invoke(app, ["report", "--version", "2"])
    assert logistic.exit_code == 0 and "champion v1" in (
        home.reports_dir / "models" / f"{home.model_name}-v2.html"
    ).read_text(encoding="utf-8")
    missing = runner.invoke(app, ["report", "--version", "9"])
    assert missing.exit_code == 2 and "has no version 9" in missing.output


def test_audit_lists_gate_decisions_overrides_and_rollbacks_oldest_first(home):
    assert (
        runner.invoke(app, ["promote", "--version", "2", "--reason", "incident 42"]).exit_code == 0
    )
    assert runner.invoke(app, ["promote", "--rollback"]).exit_code == 0
    result = runner.invoke(app, ["audit", "--json"])
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in result.output.splitlines()]
    first = events[0]
    assert (first["action"], first["version"], first["previous"]) == ("promote", "1", None)
    assert first["reason"].startswith("gate: promote") and "@" in first["actor"]
    assert [(e["action"], e["version"], e["previous"]) for e in events[-2:]] == [
        ("promote", "2", "1"),
        ("rollback", "1", "2"),
    ]
    assert events[-2]["reason"] == "operator override: incident 42"
    assert [e["at"] for e in events] == sorted(e["at"] for e in events)
    text = runner.invoke(app, ["audit"])
    assert text.exit_code == 0 and "rollback         v1 (was v2)" in text.output
    # the second training's gate is in the log, whatever it decided
    assert any(
        e["version"] == "2" and e["action"].startswith(("gate-", "promote")) for e in events[1:-2]
    )


def test_audit_of_a_model_never_trained_names_it(tmp_path, monkeypatch):
    monkeypatch.setenv("FRAUDOPS_HOME", str(tmp_path / "empty"))
    result = runner.invoke(app, ["audit"])
    assert result.exit_code == 2 and "no model is registered under" in result.output
    assert not (tmp_path / "empty" / "mlflow.db").exists()


def _cli(
    *args: str, home, extra_env: dict[str, str] | None = None, timeout: float = 120
) -> tuple[subprocess.CompletedProcess, float]:
    """Run ``fraudops ARGS`` as a user would (a new process), timed; ``timeout``: seconds
    before it is killed (a hang guard, not a speed check)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FRAUDOPS_", "MLFLOW_"))}
    env["FRAUDOPS_HOME"] = str(home)
    env.update(extra_env or {})
    began = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "fraudops_cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )
    return done, time.monotonic() - began


def _one_error_line(done: subprocess.CompletedProcess, says: str) -> None:
    assert done.returncode == 2, done.stderr
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert lines == [lines[0]] and lines[0].startswith("error: ") and says in lines[0], lines
    assert "Traceback" not in done.stderr


def test_failing_commands_say_one_line_fast_before_starting_anything(home, tmp_path):
    client = registry.client_for(home)
    client.delete_registered_model_alias(home.model_name, "champion")
    checks = [
        (("monitor",), home.home, "no @champion for 'fraud-detector' yet"),
        (("monitor",), tmp_path / "fresh", "no model is registered under"),
        (("promote", "--version", "99"), home.home, "has no version 99"),
        (("train", "--data", str(tmp_path / "x.txt")), home.home, "use .parquet or .csv"),
        (("train", "--data", str(tmp_path / "absent.csv")), home.home, "data file not found"),
    ]
    (tmp_path / "x.txt").write_text("a,b\n1,2\n")
    # a Prefect API nobody answers: a command that started a flow before its check would end
    # on a connection error (after Prefect's retries), not on the check's one line
    nowhere = {"PREFECT_API_URL": f"http://127.0.0.1:{free_port()}/api"}
    for args, where, says in checks:
        done, _ = _cli(*args, home=where, extra_env=nowhere)
        _one_error_line(done, says)
    assert not (tmp_path / "fresh" / "mlflow.db").exists()  # nothing was created to say so


def test_a_crash_is_one_line_and_its_traceback_shows_only_with_verbose(home, tmp_path):
    done, _ = _cli("--version", home=home.home)
    assert done.returncode == 0 and done.stdout.startswith("fraudops ")
    not_a_folder = tmp_path / "home-is-a-file"
    not_a_folder.write_text("")
    crash, _ = _cli("audit", home=not_a_folder)
    assert crash.returncode == 1 and "Traceback" not in crash.stderr
    (line,) = crash.stderr.strip().splitlines()
    assert line.startswith("error: unexpected ") and line.endswith("for the traceback)")
    verbose, _ = _cli("--verbose", "audit", home=not_a_folder)
    assert verbose.returncode == 1 and "Traceback (most recent call last)" in verbose.stderr


def test_train_names_each_step_as_it_starts(tmp_path, small_history):
    data = tmp_path / "history.parquet"
    small_history.to_parquet(data)
    # a whole training run in a new process, with a fresh Prefect database: minutes when the
    # two cores are shared (it was killed at 120 s once in a loaded run)
    done, _ = _cli("train", "--data", str(data), home=tmp_path / "home", timeout=900)
    assert done.returncode == 0, done.stderr
    steps = [line for line in done.stderr.splitlines() if line.startswith("training: ")]
    assert steps[0] == "training: load (1/11)" and steps[-1] == "training: apply decision (11/11)"
    assert len(steps) == 11 and "INFO" not in done.stderr and "Traceback" not in done.stderr
