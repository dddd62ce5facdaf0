"""`fraudops demo` end to end on short replays: injected drift retrains, a clean replay does not."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import HANDBOOK_FILE

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def demo(tmp_path, *args: str) -> dict:
    env = {**os.environ, "FRAUDOPS_HOME": str(tmp_path / "home")}
    data = ["--data", str(HANDBOOK_FILE)] if HANDBOOK_FILE.is_file() else []
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
        tmp_path, "--days", "9", "--inject-drift", "amount", "--drift-from", "2018-06-03"
    )
    assert summary["retrains"] >= 1
    assert summary["weeks"][0]["rows"] > 0
    assert list((tmp_path / "home" / "demo" / "reports").glob("drift-*.html"))


def test_plain_replay_of_the_same_days_does_not_retrain(tmp_path):
    summary = demo(tmp_path, "--days", "9")
    assert summary["retrains"] == 0 and summary["champion_versions"] == ["1"]
