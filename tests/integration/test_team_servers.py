"""The same code against real shared servers, switched by settings only.

- `mlflow server` on PostgreSQL with a proxied artifacts destination: the training flow
  registers and promotes through HTTP; two `bentoml serve` replicas load `@champion` from it.
- Two replicas sharing online state in Redis: a card scored alternately on both gets the same
  features as on one process.
- `prefect server start`, a process work pool and `prefect worker start`: the deployments of
  `pipelines/prefect.yaml`; a retrain decision of the monitoring deployment emits
  `fraudops.drift.detected`, whose deployment trigger runs `train-on-drift` on the worker.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest

from fraudops import registry
from fraudops.data import contract as c
from fraudops.processes import free_port
from fraudops.serving.scorer import history_for_warm_up
from fraudops.settings import Settings
from fraudops.streaming.handbook_state import MemoryStore, OnlineFeatures, Transaction
from pipelines.training import run_training
from tests.integration.servers import (
    BIN,
    QUIET,
    SCORER,
    SIGNING_KEY,
    TRAINER,
    mlflow_account,
    mlflow_server,
    mlflow_users,
    postgres_database,
    prefect_server,
    query,
    redis_url,
    server,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]
HASH_SECRET = "test-only-hash-key"
#: The Prefect server's auth string in the team-server test (clients send the same).
PREFECT_AUTH = "fraudops:test-only-prefect-auth-string"


@pytest.fixture(scope="module")
def tracking(tmp_path_factory, history):
    """An MLflow server on a fresh PostgreSQL database with its basic-auth app, with v1 trained
    and promoted through it by the trainer's account; the tests then read as the scorer."""
    root = tmp_path_factory.mktemp("mlflow")
    with (
        postgres_database() as database,
        mlflow_server(
            database, root / "artifacts", root / "mlflow.log", auth_database=root / "users.db"
        ) as url,
        pytest.MonkeyPatch.context() as patch,
    ):
        mlflow_users(url, TRAINER, SCORER)
        settings = Settings(
            home=root / "home", data_path=history, tracking_uri=url, model_signing_key=SIGNING_KEY
        )
        for name, value in mlflow_account(TRAINER).items():
            patch.setenv(name, value)
        result = run_training(settings)
        for name, value in mlflow_account(SCORER).items():
            patch.setenv(name, value)
        yield settings, database, root, result


def test_training_flow_registers_and_promotes_through_the_tracking_server_on_postgres(tracking):
    settings, database, root, result = tracking
    assert result.version == "1" and result.promoted
    client = registry.client_for(settings)
    champion = registry.version_by_alias(client, settings.model_name, registry.CHAMPION)
    assert champion is not None and champion.version == "1"
    assert champion.tags["gate"] == "promoted"
    # the registry lives in PostgreSQL, the artifacts behind the server, nothing local
    assert query(database, "SELECT name, version FROM model_versions") == [(settings.model_name, 1)]
    assert sorted(query(database, "SELECT alias, version FROM registered_model_aliases")) == [
        ("challenger", 1),
        ("champion", 1),
    ]
    run = client.get_run(champion.run_id)
    assert run.info.artifact_uri.startswith("mlflow-artifacts:/")
    assert any((root / "artifacts").rglob("MLmodel"))
    assert any((root / "artifacts").rglob("reference.parquet"))
    assert not (settings.home / "mlartifacts").exists()
    assert not (settings.home / "mlflow.db").exists()


def _replica(home: Path, port: int, env: dict[str, str], log: Path):
    command = [sys.executable, "-m", "fraudops_cli", "serve", "--port", str(port)]
    env = {**env, "FRAUDOPS_HOME": str(home)}
    return server(command, f"http://127.0.0.1:{port}/readyz", log, env)


def _stream(history: pd.DataFrame) -> tuple[list[Transaction], int]:
    """60 transactions of two busy cards over 10 days after the history; a fraud id to label."""
    end = history[c.TX_DATETIME].max().normalize() + pd.Timedelta(days=1)
    cards = history[c.CUSTOMER_ID].value_counts().index[:2].tolist()
    terminal = int(history[c.TERMINAL_ID].value_counts().index[0])
    stream = [
        Transaction(
            transaction_id=90_000_000 + i,
            tx_datetime=(end + pd.Timedelta(hours=4 * i)).to_pydatetime(),
            customer_id=int(cards[i % 2]),
            terminal_id=terminal if i % 3 else int(history[c.TERMINAL_ID].iloc[i]),
            tx_amount=float(20 + 7 * i),
        )
        for i in range(60)
    ]
    return stream, stream[3].transaction_id


def _payload(tx: Transaction) -> dict:
    return {
        "transaction_id": tx.transaction_id,
        "tx_datetime": tx.tx_datetime.isoformat(),
        "customer_id": tx.customer_id,
        "terminal_id": tx.terminal_id,
        "tx_amount": tx.tx_amount,
    }


def test_two_replicas_on_redis_give_a_card_the_same_features_as_one_process(
    tracking, history, tmp_path, small_history
):
    settings, _, _, _ = tracking
    env = {
        "FRAUDOPS_TRACKING_URI": settings.resolved_tracking_uri,
        "FRAUDOPS_DATA_PATH": str(history),
        "FRAUDOPS_FEATURE_STORE": redis_url(13),
        "FRAUDOPS_HASH_SECRET": HASH_SECRET,
        "FRAUDOPS_MODEL_SIGNING_KEY": SIGNING_KEY,
        **mlflow_account(SCORER),  # the replicas read the registry, never write it
    }
    ports = [free_port(), free_port()]
    stream, fraud_id = _stream(small_history)

    reference = OnlineFeatures(MemoryStore(), settings.label_delay_days)
    reference.warm_up(history_for_warm_up(Settings(home=tmp_path / "one", data_path=history)))
    expected = []
    for i, tx in enumerate(stream):
        expected.append(reference.observe(tx))
        if i == 3:
            reference.feedback({fraud_id: 1})

    with (
        _replica(tmp_path / "a", ports[0], env, tmp_path / "a.log"),
        _replica(tmp_path / "b", ports[1], env, tmp_path / "b.log"),
        httpx.Client(timeout=30) as client,
    ):
        for port in ports:  # both load @champion from the tracking server
            assert client.get(f"http://127.0.0.1:{port}/model").json()["version"] == "1"
        got = []
        for i, tx in enumerate(stream):
            base = f"http://127.0.0.1:{ports[i % 2]}"
            response = client.post(f"{base}/score", json=_payload(tx))
            assert response.status_code == 200, response.text
            got.append(response.json()["features"])
            if i == 3:  # the label reaches one replica; both must count it after the delay
                answer = client.post(
                    f"http://127.0.0.1:{ports[1]}/feedback",
                    json=[{"transaction_id": fraud_id, "is_fraud": 1}],
                )
                assert answer.status_code == 200, answer.text
    assert len(got) == len(expected) == 60
    for i, (ours, theirs) in enumerate(zip(got, expected, strict=True)):
        for name in c.FEATURES:
            assert ours[name] == pytest.approx(theirs[name], rel=1e-9, abs=1e-9), (i, name)
    late_risk = [row[c.terminal_risk_feature(30)] for row in got[-10:]]
    assert max(late_risk) > 0, "the label sent to one replica never counted"


def _flow_runs(client: httpx.Client, api: str, flow_name: str) -> list[dict]:
    """Runs of ``flow_name`` that were started (the cron schedules' future runs left out)."""
    answer = client.post(
        f"{api}/flow_runs/filter",
        json={
            "flows": {"name": {"any_": [flow_name]}},
            "flow_runs": {"state": {"type": {"not_any_": ["SCHEDULED"]}}},
            "limit": 10,
        },
    )
    answer.raise_for_status()
    return list(answer.json())


def _prefect(args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(
        [str(BIN / "prefect"), "--no-prompt", *args],
        env={**os.environ, **QUIET, **env},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"prefect {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture
def drifted_home(tmp_path, small_history):
    """v1 trained on April-May (sqlite registry); June scored with amounts x4 (real drift)."""
    from fraudops.serving.scorer import Scorer
    from fraudops.streaming.handbook_state import Transaction as Tx

    cut = pd.Timestamp("2018-06-01")
    data = tmp_path / "history.parquet"
    small_history[small_history[c.TX_DATETIME] < cut].to_parquet(data)
    env = {
        "FRAUDOPS_HOME": str(tmp_path / "home"),
        "FRAUDOPS_DATA_PATH": str(data),
        "FRAUDOPS_TRAIN_DAYS": "14",
        "FRAUDOPS_GATE_MIN_AVERAGE_PRECISION": "0",
        "FRAUDOPS_MONITOR_MIN_ROWS": "500",
        "FRAUDOPS_MIN_LABELLED_ROWS": "200",
        "FRAUDOPS_DRIFT_WINDOWS_NEEDED": "1",
    }
    settings = Settings(**{k[len("FRAUDOPS_") :].lower(): v for k, v in env.items()})
    assert run_training(settings).version == "1"
    scorer = Scorer.start(settings, poll=False)
    try:
        june = small_history[small_history[c.TX_DATETIME] >= cut].head(6000)
        for r in june.itertuples(index=False):
            tx = Tx(r.TRANSACTION_ID, r.TX_DATETIME, r.CUSTOMER_ID, r.TERMINAL_ID, r.TX_AMOUNT * 4)
            scorer.score([tx.as_event()])
    finally:
        scorer.close()
    return settings, env


def test_drift_in_the_monitoring_deployment_emits_an_event_whose_trigger_retrains_on_a_worker(
    drifted_home, tmp_path
):
    settings, fraudops_env = drifted_home
    server_log = tmp_path / "prefect-server.log"
    with prefect_server(tmp_path / "prefect-server", server_log, auth=PREFECT_AUTH) as api:
        # an unauthenticated client (e.g. a web page the operator opens) gets nothing: a read
        # is 401, a write without the CSRF token 403 before auth is even looked at
        anonymous = httpx.get(f"{api}/admin/settings", timeout=30)
        assert anonymous.status_code == 401, anonymous.text
        forged = httpx.post(f"{api}/deployments/filter", json={}, timeout=30)
        assert forged.status_code == 403 and "CSRF" in forged.text, forged.text
        env = {
            **fraudops_env,
            "PREFECT_API_URL": api,
            "PREFECT_API_AUTH_STRING": PREFECT_AUTH,
            "PREFECT_HOME": str(tmp_path / "prefect-client"),
            "FRAUDOPS_RETRAIN_EVENT": "true",
            "PREFECT_WORKER_QUERY_SECONDS": "2",
            "PREFECT_LOGGING_LEVEL": "WARNING",
        }
        (tmp_path / "prefect-client").mkdir()
        _prefect(["work-pool", "create", "fraudops", "--type", "process"], env)
        deployed = _prefect(["deploy", "--all", "--prefect-file", "pipelines/prefect.yaml"], env)
        assert "train-fraud-model/train-weekly" in deployed
        assert "monitor-fraud-model/monitor-daily" in deployed
        assert "train-fraud-model/train-on-drift" in deployed
        worker = [str(BIN / "prefect"), "worker", "start", "--pool", "fraudops"]
        with (
            server(worker, f"{api}/health", tmp_path / "worker.log", env),
            httpx.Client(timeout=30, auth=tuple(PREFECT_AUTH.split(":", 1))) as client,
        ):
            # CSRF protection: a client fetches its token first, as Prefect's own client does
            csrf = client.get(f"{api}/csrf-token", params={"client": "fraudops-test"})
            csrf.raise_for_status()
            client.headers.update(
                {"Prefect-Csrf-Token": csrf.json()["token"], "Prefect-Csrf-Client": "fraudops-test"}
            )
            _prefect(["deployment", "run", "monitor-fraud-model/monitor-daily", "--watch"], env)
            [monitor] = _flow_runs(client, api, "monitor-fraud-model")
            assert monitor["state_type"] == "COMPLETED", monitor["state_name"]
            deadline = time.monotonic() + 300
            while not (runs := _flow_runs(client, api, "train-fraud-model")) or runs[0][
                "state_type"
            ] not in {"COMPLETED", "FAILED", "CRASHED"}:
                assert time.monotonic() < deadline, f"no finished training run: {runs}"
                time.sleep(2)
            [training] = runs
            worker_log = (tmp_path / "worker.log").read_text()
            assert training["state_type"] == "COMPLETED", worker_log[-3000:]
            deployment = client.get(f"{api}/deployments/{training['deployment_id']}")
            assert deployment.json()["name"] == "train-on-drift"  # started by the event's trigger
            assert training["parameters"]["test_end"]  # the last labelled day, chosen by monitoring
            events = client.post(
                f"{api}/events/filter",
                json={"filter": {"event": {"name": ["fraudops.drift.detected"]}}, "limit": 5},
            )
            events.raise_for_status()
            [event] = events.json()["events"]
            assert event["payload"]["test_end"] == training["parameters"]["test_end"]
            assert (
                event["payload"]["drifted_columns"] and event["payload"]["champion_version"] == "1"
            )
    version = registry.client_for(settings).get_model_version(settings.model_name, "2")
    assert version.tags["gate"] in {"promoted", "rejected"}
