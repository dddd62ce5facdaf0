"""Benchmark (c): the training flow's wall time on the default window vs the same steps as
plain function calls, so Prefect's orchestration overhead shows.

Runs, each on the full shared file with its own fresh registry: (1) the steps as plain calls
(``run_training(step=plain)``); (2) the Prefect flow on the ephemeral API, first run in the
process (includes starting the temporary API server); (3) a second flow run in the same process.

Usage: python benchmarks/flow_overhead.py
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from _common import HANDBOOK_FILE, emit, load_handbook

WORK = Path(tempfile.mkdtemp(prefix="fraudops-bench-"))
os.environ["PREFECT_HOME"] = str(WORK / "prefect")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
(WORK / "prefect").mkdir()


def _settings(name: str):
    from fraudops.settings import Settings

    return Settings(home=WORK / name, data_path=HANDBOOK_FILE)


def main() -> None:
    load_handbook()  # exits early with a message if the data is absent
    from pipelines.training import plain, run_training, training_flow

    began = time.perf_counter()
    result = run_training(_settings("plain"), step=plain)
    plain_seconds = time.perf_counter() - began

    flow_seconds = []
    for run in ("flow1", "flow2"):
        os.environ["FRAUDOPS_HOME"] = str(WORK / run)
        os.environ["FRAUDOPS_DATA_PATH"] = str(HANDBOOK_FILE)
        began = time.perf_counter()
        training_flow()
        flow_seconds.append(time.perf_counter() - began)
    emit(
        "flow_overhead",
        {
            "window": result.windows,
            "plain_functions_seconds": round(plain_seconds, 1),
            "prefect_flow_first_run_seconds": round(flow_seconds[0], 1),
            "prefect_flow_second_run_seconds": round(flow_seconds[1], 1),
            "overhead_first_run_seconds": round(flow_seconds[0] - plain_seconds, 1),
            "overhead_warm_seconds": round(flow_seconds[1] - plain_seconds, 1),
        },
    )


if __name__ == "__main__":
    main()
