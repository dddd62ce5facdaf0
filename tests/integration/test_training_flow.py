"""The real training flow (Prefect ephemeral API) against a real sqlite MLflow registry."""

from __future__ import annotations

import datetime as dt
import json
import os

import pandas as pd
import pytest
from mlflow import MlflowClient

from fraudops import registry
from fraudops.data import contract as c
from fraudops.data.contract import DataValidationError
from fraudops.data.splits import SplitError
from fraudops.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def prefect_api(tmp_path_factory):
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
def env(tmp_path, handbook_slice, monkeypatch):
    """Settings for a 7-day training window on the 51-day slice, home in a temp folder."""
    monkeypatch.setenv("FRAUDOPS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FRAUDOPS_DATA_PATH", str(handbook_slice))
    monkeypatch.setenv("FRAUDOPS_TRAIN_DAYS", "7")
    settings = Settings()
    registry.configure_mlflow(settings)
    return settings


def _client(settings: Settings) -> MlflowClient:
    return registry.client_for(settings)


def test_flow_registers_first_champion_then_gate_rejects_a_worse_challenger(env, prefect_api):
    from pipelines.training import training_flow

    first = training_flow()
    client = _client(env)
    name = env.model_name
    assert first["promoted"] and first["version"] == "1"
    assert str(client.get_model_version_by_alias(name, "champion").version) == "1"
    assert str(client.get_model_version_by_alias(name, "challenger").version) == "1"

    tags = client.get_model_version(name, "1").tags
    assert tags["train_start"] == "2018-05-01" and tags["test_end"] == "2018-05-22"
    assert len(tags["data_sha256"]) == 64
    assert tags["git_commit"]
    assert tags["features"].split(",") == list(c.FEATURES)
    assert json.loads(tags["model_params"])["learning_rate"] == "0.05"
    assert tags["gate"] == "promoted"
    gate_file = client.download_artifacts(first["run_id"], "gate/decision.json")
    with open(gate_file) as fh:
        assert json.load(fh)["promote"] is True
    # what a person sees in the MLflow UI: a named run linked to its Prefect flow run, its
    # training window as a dataset input, the gate's verdict in words on the version
    run = client.get_run(first["run_id"])
    assert run.info.run_name == "train handbook 2018-05-01..2018-05-07 hist_gradient_boosting"
    assert len(run.data.tags["prefect.flow_run_id"]) == 36
    (inputs,) = run.inputs.dataset_inputs
    assert inputs.dataset.name == "handbook training window"
    assert client.get_model_version(name, "1").description.startswith("Gate: promoted to @champ")
    assert "audit log" in client.get_registered_model(name).description
    from prefect import get_client

    with get_client(sync_client=True) as prefect:
        flow_run = prefect.read_flow_run(run.data.tags["prefect.flow_run_id"])
    assert flow_run.name == "train on the latest window"  # not two random words

    second = training_flow(model_kind="logistic_regression", train_days=2)
    assert second["version"] == "2" and not second["promoted"]
    assert second["champion_metrics"]["average_precision"] > second["metrics"]["average_precision"]
    assert str(client.get_model_version_by_alias(name, "champion").version) == "1"
    assert str(client.get_model_version_by_alias(name, "challenger").version) == "2"
    assert client.get_model_version(name, "2").tags["gate"] == "rejected"
    assert client.get_model_version(name, "2").description.startswith(
        "Gate: kept out: the champion v1 stays"
    )
    assert registry.version_by_alias(client, name, "previous") is None

    assert registry.promote(client, name, "2", reason="operator override: test") == "1"
    assert str(client.get_model_version_by_alias(name, "previous").version) == "1"
    assert registry.rollback(client, name) == ("1", "2")
    assert str(client.get_model_version_by_alias(name, "champion").version) == "1"


def _registry_state(settings: Settings) -> tuple[list[str], str | None]:
    client = _client(settings)
    versions = sorted(
        str(v.version) for v in client.search_model_versions(f"name='{settings.model_name}'")
    )
    champion = registry.version_by_alias(client, settings.model_name, "champion")
    return versions, None if champion is None else str(champion.version)


def test_bad_input_leaves_registry_and_champion_unchanged(env, handbook_slice, tmp_path):
    from pipelines.training import run_training

    run_training(env)
    before = _registry_state(env)
    assert before == (["1"], "1")

    frame = pd.read_parquet(handbook_slice)
    missing = tmp_path / "missing.parquet"
    frame.drop(columns=[c.TX_AMOUNT]).to_parquet(missing)
    with pytest.raises(DataValidationError, match="TX_AMOUNT"):
        run_training(Settings(data_path=missing, train_days=7))
    nan_amounts = tmp_path / "nan.parquet"
    frame.assign(**{c.TX_AMOUNT: frame[c.TX_AMOUNT].where(frame.index % 1000 != 5)}).to_parquet(
        nan_amounts
    )
    with pytest.raises(DataValidationError, match="TX_AMOUNT"):
        run_training(Settings(data_path=nan_amounts, train_days=7))
    with pytest.raises(SplitError, match="ends after"):
        run_training(Settings(train_days=7, train_start=dt.date(2018, 5, 15)))
    assert _registry_state(env) == before


def test_registering_the_same_run_twice_gives_one_version(env, monkeypatch):
    import time

    from fraudops import training
    from pipelines.training import run_training

    fit_started = []
    fit = training.fit_challenger
    monkeypatch.setattr(
        training, "fit_challenger", lambda *a: fit_started.append(time.time() * 1000) or fit(*a)
    )
    result = run_training(env)
    client = _client(env)
    # the MLflow run spans the training: it started before the model was fitted
    assert client.get_run(result.run_id).info.start_time <= fit_started[0]
    version = client.get_model_version(env.model_name, result.version)
    again = registry.register_version(client, env.model_name, result.run_id, version.source, {})
    assert str(again.version) == str(version.version)
    assert _registry_state(env)[0] == ["1"]


@pytest.mark.e2e
def test_cli_train_json_then_bad_inputs_exit_non_zero_naming_the_problem(handbook_slice, tmp_path):
    import subprocess
    import sys

    env = {**os.environ, "FRAUDOPS_HOME": str(tmp_path / "home"), "FRAUDOPS_TRAIN_DAYS": "7"}
    cli = [sys.executable, "-m", "fraudops_cli"]
    ok = subprocess.run(
        [*cli, "train", "--data", str(handbook_slice), "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert ok.returncode == 0, ok.stderr[-2000:]
    summary = json.loads(ok.stdout)
    assert summary["version"] == "1" and summary["promoted"] is True

    unknown = subprocess.run(
        [*cli, "train", "--model", "xgb"], env=env, capture_output=True, text=True, timeout=120
    )
    assert unknown.returncode == 2 and "'xgb' is not one of" in unknown.stderr

    bad = tmp_path / "bad.csv"
    pd.read_parquet(handbook_slice).head(100).drop(columns=[c.CUSTOMER_ID]).to_csv(bad, index=False)
    failed = subprocess.run(
        [*cli, "train", "--data", str(bad)], env=env, capture_output=True, text=True, timeout=600
    )
    assert failed.returncode == 2 and "CUSTOMER_ID" in failed.stderr
    settings = Settings(home=tmp_path / "home")
    assert _registry_state(settings) == (["1"], "1")


def test_flow_retries_a_transient_registry_error(env, prefect_api, monkeypatch):
    from mlflow.exceptions import MlflowException

    from pipelines.training import training_flow

    real = registry.log_challenger
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise MlflowException("temporarily unavailable", error_code="TEMPORARILY_UNAVAILABLE")
        return real(*args, **kwargs)

    monkeypatch.setattr(registry, "log_challenger", flaky)
    result = training_flow()
    assert calls["n"] == 2
    assert result["promoted"] and _registry_state(env) == (["1"], "1")


def test_a_run_whose_champion_moved_after_its_gate_is_not_promoted(env, monkeypatch):
    """Compare-and-set: another promotion lands between this run's gate and its alias move."""
    import mlflow

    from fraudops import training
    from pipelines.training import run_training

    assert run_training(env).promoted  # v1
    client = _client(env)
    name = env.model_name
    first = client.get_model_version(name, "1")
    real_gate = training.gate

    def gate_then_a_concurrent_promotion(*args, **kwargs):
        decision = real_gate(*args, **kwargs)
        concurrent = mlflow.register_model(first.source, name, tags=dict(first.tags))
        registry.promote(client, name, str(concurrent.version), reason="a concurrent run")
        return decision

    monkeypatch.setattr(training, "gate", gate_then_a_concurrent_promotion)
    lenient = env.model_copy(update={"gate_ap_tolerance": 1.0, "gate_recall_tolerance": 1.0})
    result = run_training(lenient)

    assert result.version == "2" and not result.promoted
    assert "@champion moved to v3 while this run was gated against v1" in result.reasons[-1]
    assert str(client.get_model_version_by_alias(name, "champion").version) == "3"
    assert str(client.get_model_version_by_alias(name, "previous").version) == "1"
    tags = client.get_model_version(name, "2").tags
    assert tags["gate"] == "stale" and "moved to v3" in tags["gate_reasons"]
    with open(client.download_artifacts(result.run_id, "gate/decision.json")) as fh:
        assert json.load(fh)["promote"] is False


def test_a_retried_promotion_that_already_moved_the_alias_succeeds(env):
    from pipelines.training import run_training

    assert run_training(env).promoted  # v1
    client = _client(env)
    assert registry.promote(client, env.model_name, "1", reason="retry", expected=None) is None
    with pytest.raises(registry.ChampionMoved, match="gated against no champion"):
        registry.promote(client, env.model_name, "7", reason="late", expected=None)
