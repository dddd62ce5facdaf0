"""Benchmark: offline features of a day-partitioned history, one process vs Dask, 1x..50x.

For each scale the simulator writes N regions of the handbook's population (N times its
volume: 1.79 M rows at 1x, 17.9 M at 10x, 89.7 M at 50x) as one Parquet file per day. Then, each
in a fresh child process so that peak memory is its own:

- ``single``: :func:`fraudops.offline.partitioned.write_features_in_process` (the whole history
  in memory, the single-process engine), skipped when the 1x peak times the scale exceeds
  ``--single-limit-gib`` (it would swap or be killed; the figure printed is that estimate);
- ``dask``: :func:`fraudops.offline.partitioned.write_features` on a ``LocalCluster`` of
  ``--workers`` processes (one thread each, ``--worker-memory`` limit each).

Prints JSON per scale: rows, wall seconds, rows/s, peak RSS (GiB) of the single process, of
each Dask worker and of the Dask client; then batch scoring at the largest scale on Dask
(:func:`fraudops.serving.batch.score_history` with a champion trained on the 1x history).

Usage: python benchmarks/dask_features.py [--scales 1,10,50] [--workers 2] [--scratch DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq
from _common import emit

from fraudops.data.partitioned_history import WrittenHistory, simulate_by_day
from fraudops.data.simulator import SimulationConfig

GIB = 2**30

_SINGLE = """
import json, resource, sys, time
from pathlib import Path
from fraudops.offline import partitioned
from fraudops.spec import load_spec
history, out = Path(sys.argv[1]), Path(sys.argv[2])
began = time.perf_counter()
written = partitioned.write_features_in_process(
    partitioned.history_parts(history), load_spec("handbook"), out
)
print(json.dumps({"rows": written.rows, "seconds": time.perf_counter() - began,
                  "peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""

_DASK = """
import json, resource, sys, time
from pathlib import Path
from distributed import Client, LocalCluster

def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

if __name__ == "__main__":
    history, out, job = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[5]
    workers, memory = int(sys.argv[3]), sys.argv[4]
    from fraudops.offline import partitioned
    from fraudops.spec import load_spec
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      memory_limit=memory, dashboard_address=None, silence_logs=40) as cluster, \\
            Client(cluster) as client:
        began = time.perf_counter()
        if job == "features":
            files = partitioned.history_parts(history)
            rows = partitioned.write_features(files, load_spec("handbook"), out).rows
        else:
            from fraudops.serving.batch import score_history
            from fraudops.settings import Settings
            from fraudops import registry
            settings = Settings(home=Path(sys.argv[6]))
            registry.configure_mlflow(settings)
            rows = score_history(settings, history, out, on_dask=True).rows
        seconds = time.perf_counter() - began
        workers_kib = sorted(client.run(peak).values())
    print(json.dumps({"rows": rows, "seconds": seconds, "workers_peak_kib": workers_kib,
                      "client_peak_kib": peak()}))
"""


def _child(code: str, *args: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def _gib(kib: float) -> float:
    return round(kib * 1024 / GIB, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default="1,10,50", help="Comma-separated volume factors.")
    parser.add_argument("--workers", type=int, default=2, help="Dask worker processes.")
    parser.add_argument("--worker-memory", default="8GiB", help="Memory limit per worker.")
    parser.add_argument("--days", type=int, default=183, help="Days of history.")
    parser.add_argument("--single-limit-gib", type=float, default=16.0)
    parser.add_argument("--scratch", type=Path, default=None, help="Folder for the data.")
    parser.add_argument(
        "--reuse", action="store_true", help="Reuse the histories already in --scratch."
    )
    parser.add_argument("--skip-scoring", action="store_true", help="Features only.")
    args = parser.parse_args()
    scales = sorted(int(s) for s in args.scales.split(","))
    scratch = Path(args.scratch or tempfile.mkdtemp(prefix="fraudops-dask-bench-"))
    scratch.mkdir(parents=True, exist_ok=True)
    single_gib_per_x = None
    try:
        for scale in scales:
            began = time.perf_counter()
            folder = scratch / f"h{scale}"
            if args.reuse and folder.is_dir():  # a history this script wrote before
                rows = sum(pq.read_metadata(f).num_rows for f in folder.rglob("*.parquet"))
                history = WrittenHistory(folder, rows, -1, len(list(folder.glob("day=*"))))
            else:
                history = simulate_by_day(SimulationConfig(days=args.days), scale, folder)
            written_seconds = time.perf_counter() - began
            figures: dict = {"scale": scale, "rows": history.rows, "days": history.days}
            figures["history_write_seconds"] = round(written_seconds, 1)
            estimate = None if single_gib_per_x is None else single_gib_per_x * scale
            if estimate is not None and estimate > args.single_limit_gib:
                figures["single"] = {"skipped": f"needs about {estimate:.0f} GiB"}
            else:
                one = _child(_SINGLE, str(history.path), str(scratch / "single"))
                peak = _gib(one["peak_kib"])
                if scale == 1:
                    single_gib_per_x = peak
                figures["single"] = {
                    "seconds": round(one["seconds"], 1),
                    "rows_per_second": round(one["rows"] / one["seconds"]),
                    "peak_gib": peak,
                }
                shutil.rmtree(scratch / "single", ignore_errors=True)
            spread = _child(
                _DASK,
                str(history.path),
                str(scratch / "dask"),
                str(args.workers),
                args.worker_memory,
                "features",
            )
            figures["dask"] = {
                "workers": args.workers,
                "seconds": round(spread["seconds"], 1),
                "rows_per_second": round(spread["rows"] / spread["seconds"]),
                "worker_peak_gib": [_gib(k) for k in spread["workers_peak_kib"]],
                "client_peak_gib": _gib(spread["client_peak_kib"]),
            }
            shutil.rmtree(scratch / "dask", ignore_errors=True)
            emit("dask_features", figures)
            if scale != scales[-1] and scale != 1:
                shutil.rmtree(history.path)
        if not args.skip_scoring:
            _batch_scores(scratch, scales[-1], args)
    finally:
        if args.scratch is None:
            shutil.rmtree(scratch, ignore_errors=True)


def _batch_scores(scratch: Path, scale: int, args: argparse.Namespace) -> None:
    """Train a champion on the 1x history, then score the largest history on Dask."""
    from fraudops.settings import Settings
    from pipelines.training import run_training

    home = scratch / "home"
    if not (scratch / "h1").exists():
        simulate_by_day(SimulationConfig(days=args.days), 1, scratch / "h1")
    settings = Settings(home=home, data_path=scratch / "h1", train_days=14)
    result = run_training(settings)
    spread = _child(
        _DASK,
        str(scratch / f"h{scale}"),
        str(scratch / "scores"),
        str(args.workers),
        args.worker_memory,
        "scores",
        str(home),
    )
    emit(
        "dask_batch_scoring",
        {
            "scale": scale,
            "champion": result.version,
            "rows": spread["rows"],
            "seconds": round(spread["seconds"], 1),
            "rows_per_second": round(spread["rows"] / spread["seconds"]),
            "worker_peak_gib": [_gib(k) for k in spread["workers_peak_kib"]],
            "client_peak_gib": _gib(spread["client_peak_kib"]),
        },
    )
    shutil.rmtree(scratch / "scores", ignore_errors=True)


if __name__ == "__main__":
    main()
