"""Benchmark: the BentoML service under load vs ``mlflow models serve`` on the same champion.

Both servers run on 127.0.0.1 with one OpenMP thread per worker and serve the same registered
version. Ours receives raw transactions and computes the 18 behavioural features from its
online state, logs every row and decides; the peer (``mlflow models serve --env-manager local``,
what a user would pick instead) receives the precomputed features. The load comes from this
process: a bounded asyncio loop (httpx) of single-transaction requests at concurrency 1, then
``--rounds`` turns of each server at concurrency 8 (both servers stay up and take turns, so a
slow spell of the VM falls on both: the peer's figure moved 3x between separate runs), then
1,000-row batches; each phase stops after ``--seconds`` or ``--max-requests``. Real
transactions of the shared file are replayed in time order, after the state's history ends;
ours never gets the same event twice (that would be a retry, answered from the state).

Prints JSON: requests/s, rows/s, p50/p99 latency (ms), failures per phase and server, each
round's throughput ratio and their median, and the in-process floor (``predict_proba`` on 1
and 1,000 rows). Target (issue 10): the median ratio at concurrency 8 at least 2.9x, p99 no
worse than the peer's.

Usage: python benchmarks/serving.py [--seconds 15] [--rounds 3] [--peer-workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
from _common import HANDBOOK_FILE, emit, load_handbook

from fraudops.data import contract as c
from fraudops.offline.handbook import compute_features
from fraudops.processes import free_port, stop, wait_http_ok

HISTORY_END = "2018-09-20"
OURS, PEER = "ours_bentoml", "peer_mlflow_models_serve"


async def load(
    url: str,
    payloads: list[Any],
    concurrency: int,
    seconds: float,
    max_requests: int,
    rows_per_request: int,
) -> dict[str, float]:
    """Send payloads in order from ``concurrency`` workers; bounded in time and count."""
    latencies: list[float] = []
    failures = 0
    next_index = 0
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:

        async def worker() -> None:
            nonlocal next_index, failures
            while time.monotonic() < deadline and next_index < min(max_requests, len(payloads)):
                payload = payloads[next_index]
                next_index += 1
                began = time.perf_counter()
                try:
                    response = await client.post(url, json=payload)
                    ok = response.status_code == 200
                except httpx.HTTPError:
                    ok = False
                latencies.append(time.perf_counter() - began)
                failures += 0 if ok else 1

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    ms = np.array(latencies) * 1000
    return {
        "requests": len(latencies),
        "failures": failures,
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "rows_per_s": round(len(latencies) * rows_per_request / elapsed, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
    }


def in_process_floor(model_uri: str, features: pd.DataFrame) -> dict[str, float]:
    import mlflow

    from fraudops.model.fastpredict import fast_estimator

    pipeline = mlflow.sklearn.load_model(model_uri)
    estimator = pipeline.named_steps["model"]
    flat = fast_estimator(estimator)
    one_frame, one_row = features.head(1), features.head(1).to_numpy()
    thousand = features.head(1000).to_numpy()

    def per_call_ms(fn: Any, repeat: int) -> float:
        fn()
        began = time.perf_counter()
        for _ in range(repeat):
            fn()
        return round((time.perf_counter() - began) / repeat * 1000, 3)

    return {
        "pipeline_1_row_dataframe_ms": per_call_ms(lambda: pipeline.predict_proba(one_frame), 200),
        "sklearn_1_row_numpy_ms": per_call_ms(lambda: estimator.predict_proba(one_row), 200),
        "flat_trees_1_row_ms": per_call_ms(lambda: flat.predict_proba(one_row), 2000),
        "sklearn_1000_rows_ms": per_call_ms(lambda: estimator.predict_proba(thousand), 50),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--max-requests", type=int, default=20_000)
    parser.add_argument("--peer-workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3, help="Turns of each server at c=8.")
    args = parser.parse_args()

    from fraudops import registry
    from fraudops.settings import Settings
    from pipelines.training import run_training

    transactions = load_handbook()
    work = Path(tempfile.mkdtemp(prefix="fraudops-serving-"))
    settings = Settings(home=work / "home", data_path=HANDBOOK_FILE)
    champion = run_training(settings)
    registry.configure_mlflow(settings)
    model_uri = f"models:/{settings.model_name}@champion"

    replay = transactions[
        transactions[c.TX_DATETIME] >= pd.Timestamp(HISTORY_END) + pd.Timedelta(days=1)
    ]
    features = compute_features(transactions, 7).loc[replay.index, list(c.FEATURES)]
    raw = [
        {
            "transaction_id": int(r.TRANSACTION_ID),
            "tx_datetime": r.TX_DATETIME.isoformat(),
            "customer_id": int(r.CUSTOMER_ID),
            "terminal_id": int(r.TERMINAL_ID),
            "tx_amount": float(r.TX_AMOUNT),
        }
        for r in replay.itertuples(index=False)
    ]
    rows = features.to_numpy().tolist()
    peer_single = [
        {"dataframe_split": {"columns": list(c.FEATURES), "data": [row]}} for row in rows
    ]

    def batches(ours: bool, first: int) -> list[Any]:
        """1,000-row batches from ``first`` on: events the single phases have not sent (the
        same ids again would be retries, answered from the state, not observed)."""
        starts = range(first, len(raw) - 999, 1000)
        if ours:
            return [raw[i : i + 1000] for i in starts]
        return [
            {"dataframe_split": {"columns": list(c.FEATURES), "data": rows[i : i + 1000]}}
            for i in starts
        ]

    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "FRAUDOPS_HOME": str(settings.home),
        "FRAUDOPS_DATA_PATH": str(HANDBOOK_FILE),
        "FRAUDOPS_ONLINE_HISTORY_END": HISTORY_END,
        "MLFLOW_TRACKING_URI": settings.resolved_tracking_uri,
        "FRAUDOPS_MAX_BODY_BYTES": str(64 * 2**20),
    }
    env.pop("FRAUDOPS_API_TOKEN", None)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # uvicorn
    ports = {OURS: free_port(), PEER: free_port()}
    commands = {
        OURS: [sys.executable, "-m", "fraudops_cli", "serve", "--port", str(ports[OURS])],
        PEER: [
            *(sys.executable, "-m", "mlflow", "models", "serve", "-m", model_uri),
            *("--env-manager", "local", "-h", "127.0.0.1", "-p", str(ports[PEER])),
            *("-w", str(args.peer_workers)),
        ],
    }
    bases = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    single_url = {OURS: f"{bases[OURS]}/score", PEER: f"{bases[PEER]}/invocations"}
    batch_url = {OURS: f"{bases[OURS]}/score_batch", PEER: f"{bases[PEER]}/invocations"}
    singles = {OURS: raw, PEER: peer_single}
    sent = {OURS: 0, PEER: 0}  # ours must not send an event twice: a retry is not observed

    def phase(name: str, concurrency: int) -> dict[str, float]:
        chunk = singles[name][sent[name] :]
        result = asyncio.run(
            load(single_url[name], chunk, concurrency, args.seconds, args.max_requests, 1)
        )
        sent[name] += int(result["requests"])
        return result

    results: dict[str, Any] = {
        "champion_version": champion.version,
        "seconds_per_phase": args.seconds,
        "rounds_c8": args.rounds,
    }
    servers, logs = {}, []
    try:
        for name, command in commands.items():
            logs.append(open(work / f"{name}.log", "w"))  # noqa: SIM115
            servers[name] = subprocess.Popen(
                command, env=env, stdout=logs[-1], stderr=subprocess.STDOUT
            )
        wait_http_ok(f"{bases[OURS]}/readyz", servers[OURS])
        wait_http_ok(f"{bases[PEER]}/ping", servers[PEER])
        phases: dict[str, dict[str, Any]] = {OURS: {}, PEER: {}}
        for name in (OURS, PEER):
            phases[name]["single_c1"] = phase(name, 1)
        # 8 clients, the servers taking turns: a slow spell of this VM hits both
        rounds: list[dict[str, dict[str, float]]] = []
        for _ in range(args.rounds):
            rounds.append({name: phase(name, 8) for name in (OURS, PEER)})
        for name in (OURS, PEER):
            phases[name]["single_c8_rounds"] = [r[name] for r in rounds]
            chunks = batches(name == OURS, sent[name])
            phases[name]["batch_1000_c1"] = asyncio.run(
                load(batch_url[name], chunks, 1, args.seconds, len(chunks), 1000)
            )
            results[name] = phases[name]
    finally:
        for server in servers.values():
            stop(server)
        for log in logs:
            log.close()
    ratios = [r[OURS]["requests_per_s"] / r[PEER]["requests_per_s"] for r in rounds]
    p99s = [r[OURS]["p99_ms"] / r[PEER]["p99_ms"] for r in rounds]
    results["throughput_ratio_c8_rounds"] = [round(x, 2) for x in ratios]
    results["throughput_ratio_c8"] = round(float(np.median(ratios)), 2)
    results["p99_ratio_c8"] = round(float(np.median(p99s)), 2)
    results["target_met"] = results["throughput_ratio_c8"] >= 2.9 and results["p99_ratio_c8"] <= 1
    os.environ["MLFLOW_TRACKING_URI"] = settings.resolved_tracking_uri
    results["in_process_floor"] = in_process_floor(model_uri, features)
    emit("serving", results)


if __name__ == "__main__":
    main()
