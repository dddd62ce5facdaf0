"""A bounded load loop for the service tests: single transactions back to back, results kept."""

from __future__ import annotations

import datetime as dt
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from fraudops.processes import wait_http_ok

START = dt.datetime(2018, 6, 20, 10, 0, 0)


def wait_ready(base: str, server: subprocess.Popen, log: Path) -> None:
    try:
        wait_http_ok(f"{base}/readyz", server, timeout=180, log=log)
    except RuntimeError as exc:
        pytest.fail(str(exc))


class LoadLoop(threading.Thread):
    """Scores transactions back to back until stopped (at most ``limit`` seconds)."""

    def __init__(self, base: str, limit: float = 300) -> None:
        super().__init__(daemon=True)
        self.base, self.limit = base, limit
        self.stop = threading.Event()
        self.ok: list[tuple[int, str]] = []  # (transaction id, model version)
        self.failures: list[str] = []
        self.failed_ids: list[int] = []  # transactions whose request got no 2xx

    def run(self) -> None:
        started = time.monotonic()
        with httpx.Client(base_url=self.base, timeout=30) as client:
            i = 0
            while not self.stop.is_set() and time.monotonic() - started < self.limit:
                i += 1
                payload = {
                    "transaction_id": 50_000_000 + i,
                    "tx_datetime": (START + dt.timedelta(seconds=i)).isoformat(),
                    "customer_id": i % 300,
                    "terminal_id": i % 700,
                    "tx_amount": 10.0 + i % 90,
                }
                try:
                    response = client.post("/score", json=payload)
                except httpx.HTTPError as exc:
                    self.failures.append(f"{type(exc).__name__}: {exc}")
                    self.failed_ids.append(payload["transaction_id"])
                    continue
                if response.status_code == 200:
                    self.ok.append((payload["transaction_id"], response.json()["model_version"]))
                else:
                    self.failures.append(f"{response.status_code}: {response.text[:200]}")
                    self.failed_ids.append(payload["transaction_id"])
