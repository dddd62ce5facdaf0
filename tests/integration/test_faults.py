"""Faults under load: the registry stopped, a worker SIGKILLed, training killed, an unwritable log.

Each test runs real processes on 127.0.0.1 with a bounded load loop and writes its figures
(see ``tests/integration/figures.py``) for ``benchmarks/reliability.md``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import httpx
import psutil
import pytest
from mlflow import MlflowClient

from fraudops import registry
from fraudops.logs.predlog import read_log
from fraudops.processes import free_port
from fraudops.settings import Settings
from pipelines.training import run_training
from tests.integration.figures import record
from tests.integration.load import LoadLoop
from tests.integration.servers import SIGNING_KEY, mlflow_server, server

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def serve(home: Path, history: Path, log: Path, **env: str):  # type: ignore[no-untyped-def]
    """`fraudops serve` on a free port, polling the registry every second; yields (proc, url)."""
    port = free_port()
    command = [sys.executable, "-m", "fraudops_cli", "serve", "--port", str(port)]
    settings = {
        "FRAUDOPS_HOME": str(home),
        "FRAUDOPS_DATA_PATH": str(history),
        "FRAUDOPS_POLL_INTERVAL_SECONDS": "1",
        "FRAUDOPS_API_TOKEN": "",
        **env,
    }
    return server(command, f"http://127.0.0.1:{port}/readyz", log, settings), port


def gauge(base: str, name: str) -> float:
    """A Prometheus gauge or counter of ``/metrics`` (0 when absent)."""
    for line in httpx.get(f"{base}/metrics", timeout=10).text.splitlines():
        if line.startswith(f"{name} ") or line.startswith(f"{name}{{"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def mlflow_on_sqlite(root: Path, port: int):  # type: ignore[no-untyped-def]
    """The MLflow server on one sqlite file under ``root``, always on ``port``."""
    return mlflow_server(
        f"sqlite:///{root / 'mlflow.db'}", root / "artifacts", root / "mlflow.log", port
    )


def test_registry_stopped_during_load_keeps_serving_and_reload_resumes(history, tmp_path):
    port = free_port()
    tracking = f"http://127.0.0.1:{port}"
    settings = Settings(
        home=tmp_path / "home",
        data_path=history,
        tracking_uri=tracking,
        model_signing_key=SIGNING_KEY,
    )
    challenger = settings.model_copy(
        update={"train_days": 21, "gate_ap_tolerance": 1.0, "gate_recall_tolerance": 1.0}
    )
    with ExitStack() as stack:
        mlflow = ExitStack()
        mlflow.enter_context(mlflow_on_sqlite(tmp_path, port))
        assert run_training(settings).version == "1"
        context, service_port = serve(
            settings.home,
            history,
            tmp_path / "service.log",
            FRAUDOPS_TRACKING_URI=tracking,
            FRAUDOPS_MODEL_SIGNING_KEY=SIGNING_KEY,
        )
        stack.enter_context(context)
        base = f"http://127.0.0.1:{service_port}"
        load = LoadLoop(base)
        load.start()
        stack.callback(load.join, 30)
        stack.callback(load.stop.set)
        time.sleep(2)
        mlflow.close()  # the registry goes down under load
        down_at = len(load.ok)
        # several failed polls while the load goes on: a poll against the stopped server takes
        # as long as MLflow's client retries, so wait for the count, not for a fixed time
        deadline = time.monotonic() + 90
        while gauge(base, "fraudops_model_reload_failures") < 2:
            assert time.monotonic() < deadline, "fewer than 2 failed reloads in 90 s"
            time.sleep(0.5)
        ready_while_down = httpx.get(f"{base}/readyz", timeout=10).status_code
        failed_polls = gauge(base, "fraudops_model_reload_failures")
        served_while_down = len(load.ok) - down_at
        with mlflow_on_sqlite(tmp_path, port):  # back, and a new champion is promoted
            assert run_training(challenger).promoted
            back = time.monotonic()
            while httpx.get(f"{base}/model", timeout=10).json()["version"] != "2":
                assert time.monotonic() - back < 60, "reload did not resume"
                time.sleep(0.2)
            resumed_seconds = time.monotonic() - back
            time.sleep(1)
    assert ready_while_down == 200 and served_while_down > 20
    assert failed_polls >= 2
    assert load.failures == []
    assert {v for _, v in load.ok} == {"1", "2"}
    record(
        "registry_down",
        {
            "requests": len(load.ok) + len(load.failures),
            "failed": len(load.failures),
            "served_while_registry_down": served_while_down,
            "failed_reloads_counted": failed_polls,
            "new_champion_picked_up_seconds": round(resumed_seconds, 1),
        },
    )


@pytest.fixture(scope="module")
def champion_home(tmp_path_factory, history) -> Path:
    """A home whose sqlite registry holds v1 as @champion."""
    home = tmp_path_factory.mktemp("champion") / "home"
    assert run_training(Settings(home=home, data_path=history)).promoted
    return home


def bentoml_workers(server_pid: int) -> list[psutil.Process]:
    """The service's worker processes (children of `bentoml serve` running the service)."""
    workers = []
    for child in psutil.Process(server_pid).children(recursive=True):
        try:
            if "_bentoml_impl.worker" in " ".join(child.cmdline()):
                workers.append(child)
        except psutil.NoSuchProcess:  # the killed worker, gone or a zombie not yet reaped
            continue
    return workers


def test_sigkilled_worker_recovers_and_the_log_holds_every_answered_row(
    champion_home, history, tmp_path
):
    context, port = serve(champion_home, history, tmp_path / "service.log")
    base = f"http://127.0.0.1:{port}"
    with context as process:
        load = LoadLoop(base, limit=120)
        load.start()
        time.sleep(3)
        [worker] = bentoml_workers(process.pid)
        worker.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        answered_before = len(load.ok)
        while len(load.ok) == answered_before or bentoml_workers(process.pid) == []:
            assert time.monotonic() - killed_at < 120, "the service did not recover"
            time.sleep(0.2)
        recovered_seconds = time.monotonic() - killed_at
        time.sleep(3)
        load.stop.set()
        load.join(30)
        [restarted] = bentoml_workers(process.pid)
        assert restarted.pid != worker.pid
    answered = sorted(t for t, _ in load.ok)
    logged = read_log(champion_home / "predictions")
    logged = logged[logged["transaction_id"] >= 50_000_000]  # rows of this test's load only
    assert logged["transaction_id"].is_unique  # nothing recovered twice
    assert set(answered) <= set(logged["transaction_id"])  # every answered row is in the log
    # beyond those, only a request in flight at the kill: journaled, its answer lost
    assert set(logged["transaction_id"]) - set(answered) <= set(load.failed_ids)
    assert answered_before > 50 and len(answered) > answered_before
    record(
        "worker_sigkill",
        {
            "requests": len(load.ok) + len(load.failures),
            "answered_2xx": len(answered),
            "failed_while_restarting": len(load.failures),
            "rows_logged": len(logged),
            "rows_lost": len(set(answered) - set(logged["transaction_id"])),
            "rows_logged_without_an_answer": len(set(logged["transaction_id"]) - set(answered)),
            "worker_back_seconds": round(recovered_seconds, 1),
        },
    )


def test_unwritable_prediction_log_keeps_answering_and_counts_buffered_then_dropped_rows(
    champion_home, history, tmp_path
):
    home = tmp_path / "home"
    home.mkdir()
    (home / "mlflow.db").symlink_to(champion_home / "mlflow.db")
    (home / "mlartifacts").symlink_to(champion_home / "mlartifacts")
    (home / "predictions").write_text("a regular file: no log folder can be made here")
    context, port = serve(
        home, history, tmp_path / "service.log", FRAUDOPS_LOG_MAX_BUFFERED_ROWS="100"
    )
    base = f"http://127.0.0.1:{port}"
    with context:
        load = LoadLoop(base, limit=60)
        load.start()
        while len(load.ok) < 300:
            assert load.is_alive(), load.failures[:3]
            time.sleep(0.1)
        load.stop.set()
        load.join(30)
        time.sleep(2.5)  # the gauges refresh every second
        failed = gauge(base, "fraudops_prediction_log_failed_writes")
        buffered = gauge(base, "fraudops_prediction_log_buffered_rows")
        dropped = gauge(base, "fraudops_prediction_log_dropped_rows")
        ready = httpx.get(f"{base}/readyz", timeout=10).status_code
    assert load.failures == [] and ready == 200
    assert failed >= 1
    assert buffered <= 100
    assert buffered + dropped == len(load.ok)  # every row either held or counted, none silently
    assert "no write-ahead journal" in (tmp_path / "service.log").read_text()
    record(
        "unwritable_log",
        {
            "requests_answered": len(load.ok),
            "failed": len(load.failures),
            "failed_writes": failed,
            "rows_buffered": buffered,
            "rows_dropped_counted": dropped,
        },
    )


def _train_until(home: Path, history: Path, moment) -> subprocess.Popen:  # type: ignore[no-untyped-def]
    """Start `fraudops train`; SIGKILL it as soon as ``moment(client)`` is true."""
    env = {**os.environ, "FRAUDOPS_HOME": str(home), "FRAUDOPS_DATA_PATH": str(history)}
    child = subprocess.Popen(
        [sys.executable, "-m", "fraudops_cli", "train", "--json"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = registry.client_for(Settings(home=home))
    deadline = time.monotonic() + 300
    while not moment(client):
        assert child.poll() is None, "training ended before the kill point"
        assert time.monotonic() < deadline, "the kill point was never reached"
        time.sleep(0.05)
    orphans = psutil.Process(child.pid).children(recursive=True)
    child.send_signal(signal.SIGKILL)
    child.wait(30)
    _stop(orphans)  # Prefect's ephemeral API server: its killed parent cannot stop it any more
    return child


def _stop(processes: list[psutil.Process]) -> None:
    """Terminate ``processes``, kill any still alive after 10 s, and check none is left."""
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.terminate()
    _, alive = psutil.wait_procs(processes, timeout=10)
    for process in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
    _, alive = psutil.wait_procs(alive, timeout=10)
    assert not alive, f"processes left running: {alive}"


def _champion_is_whole(client: MlflowClient, settings: Settings) -> str:
    """The @champion version, after checking it is fully registered, gated, sealed (its
    files verify against its artifact_sha256) and loadable."""
    name = settings.model_name
    champion = registry.version_by_alias(client, name, registry.CHAMPION)
    assert champion is not None
    assert champion.tags.get("gate") == "promoted"
    assert {"features", "threshold", "holdout.average_precision"} <= set(champion.tags)
    assert registry.version_by_alias(client, name, registry.CHALLENGER) is not None
    registry.load_verified(settings, str(champion.version), dict(champion.tags))
    return str(champion.version)


def test_training_killed_mid_run_leaves_no_half_champion_and_a_rerun_succeeds(
    champion_home, history, tmp_path
):
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy2(champion_home / "mlflow.db", home / "mlflow.db")  # artifacts stay shared
    settings = Settings(home=home)
    registry.configure_mlflow(settings)  # load_verified below reads this registry
    client = registry.client_for(settings)
    [experiment] = [e for e in client.search_experiments() if e.name == settings.experiment_name]
    runs_before = len(client.search_runs([experiment.experiment_id]))

    def run_started(c: MlflowClient) -> bool:
        return len(c.search_runs([experiment.experiment_id])) > runs_before

    def version_created(c: MlflowClient) -> bool:
        return len(c.search_model_versions(f"name='{settings.model_name}'")) > 1

    _train_until(home, history, run_started)
    assert _champion_is_whole(client, settings) == "1"
    _train_until(home, history, version_created)
    after_second_kill = _champion_is_whole(client, settings)
    killed_versions = client.search_model_versions(f"name='{settings.model_name}'")

    rerun = subprocess.run(
        [sys.executable, "-m", "fraudops_cli", "train", "--json"],
        env={**os.environ, "FRAUDOPS_HOME": str(home), "FRAUDOPS_DATA_PATH": str(history)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    final = _champion_is_whole(client, settings)
    versions = client.search_model_versions(f"name='{settings.model_name}'")
    assert len(versions) == len(killed_versions) + 1
    record(
        "training_killed",
        {
            "kills": 2,
            "champion_after_kill_at_run_start": "1",
            "champion_after_kill_at_registration": after_second_kill,
            "half_registered_champions": 0,
            "rerun_exit_code": rerun.returncode,
            "champion_after_rerun": final,
        },
    )


def test_shadow_canary_promotion_and_a_guardrail_rollback_under_load_fail_no_request(
    history, tmp_path
):
    from fraudops.registry import stage as stages

    settings = Settings(home=tmp_path / "home", data_path=history)
    staged = settings.model_copy(
        update={"promotion": "staged", "gate_ap_tolerance": 1.0, "gate_recall_tolerance": 1.0}
    )
    assert run_training(settings).version == "1"
    assert run_training(staged.model_copy(update={"seed": 1})).stage == stages.SHADOW
    client = registry.client_for(settings)
    name = settings.model_name

    def challenger() -> dict | None:
        return httpx.get(f"{base}/model", timeout=10).json()["challenger"]

    def until(check, what: str, seconds: float = 60) -> float:  # type: ignore[no-untyped-def]
        began = time.monotonic()
        while not check():
            assert time.monotonic() - began < seconds, what
            time.sleep(0.2)
        return time.monotonic() - began

    context, port = serve(
        settings.home, history, tmp_path / "service.log", FRAUDOPS_GUARDRAIL_MIN_REQUESTS="20"
    )
    with ExitStack() as stack:
        stack.enter_context(context)
        base = f"http://127.0.0.1:{port}"
        load = LoadLoop(base)
        load.start()
        stack.callback(load.join, 30)
        stack.callback(load.stop.set)
        until(lambda: (challenger() or {}).get("stage") == "shadow", "v2 not in shadow")
        until(lambda: gauge(base, "fraudops_challenger_scored") > 50, "shadow scored nothing")
        shadow_versions = {v for _, v in load.ok}
        stages.enter(client, name, "2", stages.CANARY, reason="test", share=0.5)
        until(lambda: any(v == "2" for _, v in load.ok[-50:]), "the canary never decided")
        stages.conclude(client, name, "2", stages.PROMOTED, reason="test: promoted")
        promoted_in = until(
            lambda: (
                httpx.get(f"{base}/model", timeout=10).json()["version"] == "2"
                and challenger() is None
            ),
            "v2 not promoted",
        )
        loud = staged.model_copy(update={"alert_rate": 0.5, "seed": 2})  # alerts on half
        assert run_training(loud).stage == stages.SHADOW
        stages.enter(client, name, "3", stages.CANARY, reason="test: a loud canary", share=0.5)
        rolled_back_in = until(
            lambda: client.get_model_version(name, "3").tags.get("stage") == stages.ROLLED_BACK,
            "the loud canary was not rolled back",
        )
        until(lambda: challenger() is None, "the service kept the rolled-back canary", 5)
        until(  # the gauges are refreshed every second
            lambda: gauge(base, "fraudops_challenger_rollbacks") >= 1, "no rollback counted", 5
        )
        rollbacks = gauge(base, "fraudops_challenger_rollbacks")
        time.sleep(1)
    assert shadow_versions == {"1"}  # shadow never answers
    assert load.failures == [] and len(load.ok) > 200
    assert {"1", "2"} <= {v for _, v in load.ok}
    assert rollbacks == 1
    reason = client.get_model_version(name, "3").tags["stage_reason"]
    assert "alert rate" in reason
    record(
        "staged_promotion",
        {
            "requests": len(load.ok) + len(load.failures),
            "failed": len(load.failures),
            "promotion_picked_up_seconds": round(promoted_in, 1),
            "canary_rolled_back_seconds": round(rolled_back_in, 1),
        },
    )
