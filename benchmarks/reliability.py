"""Regenerate ``benchmarks/reliability.md`` from the reliability tests' own figures.

Runs the fuzzing, fault and promotion tests with pytest (they assert the behaviour; each writes
its figures as JSON into ``FRAUDOPS_RELIABILITY_OUT``), then writes the table. The same table
is in the README. Exits with pytest's code if a test fails (the table is not rewritten then).

Usage: python benchmarks/reliability.py [--out benchmarks/reliability.md]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = [
    "tests/integration/test_api_fuzz.py",
    "tests/integration/test_service_process.py",
    "tests/integration/test_faults.py",
    "tests/integration/test_model_integrity.py",
    "tests/integration/test_registry_auth.py",
]


def fuzz_row(scenario: str, fuzz: dict) -> tuple[str, str, str]:
    """The row of one fuzzing run (figures of ``tests/integration/test_api_fuzz.py``)."""
    statuses = ", ".join(f"{k}: {v}" for k, v in fuzz["fuzz_statuses"].items())
    return (
        scenario,
        f"{fuzz['fuzz_cases']:,} cases ({fuzz['fuzz_generated_cases']:,} generated "
        f"from the OpenAPI spec, {fuzz['fuzz_operations']} operations)",
        f"5xx: {fuzz['fuzz_5xx']}; 4xx without a message: "
        f"{fuzz['fuzz_4xx_without_message']}; no answer: {fuzz['fuzz_no_response']}; "
        f"statuses {statuses}",
    )


def rows(f: dict[str, dict]) -> list[tuple[str, str, str]]:
    """(scenario, what was done, outcome) from the figures of each test."""
    promo = f["promotion_under_load"]
    down, kill = f["registry_down"], f["worker_sigkill"]
    train, disk = f["training_killed"], f["unwritable_log"]
    return [
        fuzz_row("API fuzzing (schemathesis, all endpoints), handbook spec", f["fuzz"]),
        fuzz_row("API fuzzing, `cards` spec (text ids, categoricals)", f["fuzz_cards"]),
        (
            "Promotion of a new champion under load",
            f"{promo['requests']:,} requests",
            f"failed: {promo['failed']}; picked up in {promo['new_champion_picked_up_seconds']} s; "
            f"rows logged after a clean stop: {promo['rows_logged_after_clean_stop']:,}",
        ),
        (
            "Registry (MLflow server) stopped under load",
            f"{down['requests']:,} requests, {down['served_while_registry_down']:,} while down",
            f"failed: {down['failed']}; /readyz stayed 200; failed reloads counted: "
            f"{down['failed_reloads_counted']:.0f}; new champion "
            f"{down['new_champion_picked_up_seconds']} s after the registry was back",
        ),
        (
            "Worker SIGKILLed under load",
            f"{kill['requests']:,} requests, {kill['answered_2xx']:,} answered 2xx",
            f"rows lost: {kill['rows_lost']} ({kill['rows_logged']:,} logged, of which "
            f"{kill['rows_logged_without_an_answer']} in flight at the kill); failed while "
            f"restarting: {kill['failed_while_restarting']}; "
            f"back in {kill['worker_back_seconds']} s",
        ),
        (
            "Training flow SIGKILLed (at run start, at registration)",
            f"{train['kills']} kills, then a rerun",
            f"half-registered @champion: {train['half_registered_champions']}; rerun exit "
            f"{train['rerun_exit_code']}, @champion v{train['champion_after_rerun']}",
        ),
        (
            "Model file overwritten in the artifact store after training (signed registry)",
            f"{f['integrity_tampered']['loaders_tried']} loaders (service reload, score-batch)",
            f"refused: {f['integrity_tampered']['refused']}, nothing unpickled; the service "
            f"kept serving v{f['integrity_tampered']['served_after']}",
        ),
        (
            "Version planted without the signing key (own digest; then a forged signature)",
            f"{f['integrity_planted']['planted_versions_tried']} attempts",
            f"refused: {f['integrity_planted']['refused']}; the service does not start on it",
        ),
        (
            "MLflow server with basic auth: anonymous client; the service's read-only account",
            f"{f['registry_anonymous']['requests']} anonymous requests; "
            f"{f['registry_reader_writes']['writes_tried']} writes (version, alias, tag)",
            f"401: {f['registry_anonymous']['refused_401']}; 403: "
            f"{f['registry_reader_writes']['refused_403']}; champion loaded by the reader",
        ),
        (
            "Prediction-log folder unwritable",
            f"{disk['requests_answered']:,} requests answered",
            f"failed: {disk['failed']}; failed writes {disk['failed_writes']:.0f}; rows held "
            f"{disk['rows_buffered']:.0f} (bound 100), dropped and counted "
            f"{disk['rows_dropped_counted']:.0f}",
        ),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "reliability.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        env = {**os.environ, "FRAUDOPS_RELIABILITY_OUT": folder}
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *TESTS],
            cwd=ROOT,
            env=env,
        )
        if done.returncode != 0:
            return done.returncode
        figures = {p.stem: json.loads(p.read_text()) for p in Path(folder).glob("*.json")}
    lines = [
        "# Reliability figures",
        "",
        f"Generated by `python benchmarks/reliability.py` on {dt.date.today().isoformat()} "
        f"({platform.machine()}, {os.cpu_count()} cores); every row is a test in "
        "`tests/integration/` that asserts the outcome, run on 127.0.0.1 with real processes.",
        "",
        "| scenario | load | outcome |",
        "|---|---|---|",
        *(f"| {a} | {b} | {c} |" for a, b, c in rows(figures)),
        "",
    ]
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
