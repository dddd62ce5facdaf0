"""`fraudops serve` as a real process: promotion under load, then a clean stop."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import pytest

from fraudops.logs.predlog import read_log
from fraudops.processes import free_port, stop
from fraudops.settings import Settings
from pipelines.training import run_training
from tests.integration.figures import record
from tests.integration.load import LoadLoop, wait_ready

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.slow]


def test_promotion_under_load_has_no_failed_request_and_stop_loses_no_row(tmp_path, small_history):
    data = tmp_path / "history.parquet"
    small_history.to_parquet(data)
    home = tmp_path / "home"
    settings = Settings(home=home, data_path=data)
    assert run_training(settings).version == "1"

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "FRAUDOPS_HOME": str(home),
        "FRAUDOPS_DATA_PATH": str(data),
        "FRAUDOPS_POLL_INTERVAL_SECONDS": "1",
    }
    env.pop("FRAUDOPS_API_TOKEN", None)
    server_log = tmp_path / "server.log"
    with server_log.open("w") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "fraudops_cli", "serve", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_ready(base, server, server_log)
        load = LoadLoop(base)
        load.start()
        time.sleep(2)
        promoted = run_training(
            Settings(
                home=home,
                data_path=data,
                train_days=21,
                gate_ap_tolerance=1.0,
                gate_recall_tolerance=1.0,
            )
        )
        assert promoted.promoted and promoted.version == "2"
        switched_at = time.monotonic()
        while httpx.get(f"{base}/model").json()["version"] != "2":
            assert time.monotonic() - switched_at < 60, "the service did not pick up v2"
            time.sleep(0.2)
        pickup_seconds = time.monotonic() - switched_at
        time.sleep(2)
        load.stop.set()
        load.join(30)
        assert load.failures == []
        versions = [v for _, v in load.ok]
        assert versions[0] == "1" and versions[-1] == "2"
        assert len(load.ok) > 50
        deadline = time.monotonic() + 15  # gauges refresh every second
        while "fraudops_model_version 2.0" not in (metrics := httpx.get(f"{base}/metrics").text):
            assert time.monotonic() < deadline, "the model-version gauge never showed v2"
            time.sleep(0.5)
        for name in (
            "fraudops_alerts_total",
            "fraudops_scored_transactions_total",
            "fraudops_feature_state_events",
        ):
            assert name in metrics
        bad = httpx.post(f"{base}/score", json={"transaction_id": 1, "tx_amount": "abc"})
        assert bad.status_code == 422
    finally:
        if not stop(server):
            pytest.fail("server did not stop within 60 s of SIGINT")
    # a refused request is one line in the server's log, not an ERROR with a traceback
    assert "Exception on /score" not in server_log.read_text()
    logged = read_log(home / "predictions")
    assert sorted(logged["transaction_id"]) == sorted(t for t, _ in load.ok)
    record(
        "promotion_under_load",
        {
            "requests": len(load.ok) + len(load.failures),
            "failed": len(load.failures),
            "new_champion_picked_up_seconds": round(pickup_seconds, 1),
            "rows_logged_after_clean_stop": len(logged),
        },
    )
