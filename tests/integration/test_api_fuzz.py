"""API fuzzing of a real `fraudops serve` with schemathesis (harness: benchmarks/fuzz_api.py).

For each shipped dataset spec (``handbook``, ``cards``: the service's request models and
``/docs.json`` are generated from it), at least 1,000 generated cases over every operation of
``/docs.json`` plus hand-written protocol cases, all with the bearer token: no 5xx, every 4xx a
JSON body with a message, and the service still ready and scoring afterwards. The figures are
printed and, when ``FRAUDOPS_RELIABILITY_OUT`` is set, written there as fuzz.json (handbook) and
fuzz_cards.json for ``benchmarks/reliability.md``.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple

import httpx
import pytest

from fraudops.logs.predlog import read_log
from pipelines.training import run_training
from tests.integration.figures import record

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "fuzz-token-0123456789"
MAX_BODY_BYTES = 64 * 1024
#: Per operation and suite: 1,085 generated cases a spec (+ 193 protocol cases for the
#: handbook, 259 for cards: its text fields get more), ~35 s each on an idle 2-core machine.
EXAMPLES = 120
#: The figures' name of each spec (``record``): the handbook's keep their old name.
FIGURES = {"handbook": "fuzz", "cards": "fuzz_cards"}


def _harness() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "fraudops_fuzz_api", ROOT / "benchmarks/fuzz_api.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module's annotations
    spec.loader.exec_module(module)
    return module


fuzz_api = _harness()


class Served(NamedTuple):
    """A running service of one spec and what the tests need of it."""

    base: str  # its URL
    log: Path  # its stdout and stderr
    settings: Any  # the Settings it was trained with (its home: the prediction and label logs)
    target: Any  # fuzz_api.Target: the spec's valid requests


@pytest.fixture(scope="module", params=list(FIGURES))
def service(request, tmp_path_factory):
    """`fraudops serve` of the spec ``request.param`` with a token, on a champion trained on
    the harness' simulated history of it (handbook: the 80-day ``small_history``)."""
    name = request.param
    root = tmp_path_factory.mktemp(f"fuzz-{name}")
    data = root / "history.parquet"
    if name == "handbook":
        history = request.getfixturevalue("small_history")
    else:
        history = fuzz_api.simulated_history(name)
    history.to_parquet(data)
    settings = fuzz_api.training_settings(name, root / "home", data)
    result = run_training(settings)
    assert result.promoted, result.reasons
    log = root / "server.log"
    try:
        with fuzz_api.serving(
            root / "home",
            data,
            TOKEN,
            log,
            FRAUDOPS_DATASET_SPEC=name,
            FRAUDOPS_MAX_BODY_BYTES=str(MAX_BODY_BYTES),
            FRAUDOPS_MAX_BATCH_ROWS="50",
            # every generated date (1970 .. now) must reach the scoring path; the clock's
            # refusals are tested in tests/unit/test_online_clock.py
            FRAUDOPS_MAX_EVENT_SKEW_SECONDS=str(fuzz_api.ANY_DATE_SKEW_SECONDS),
        ) as base:
            yield Served(base, log, settings, fuzz_api.target(name))
    except RuntimeError as exc:  # not ready: the message has the log's tail
        pytest.fail(str(exc))


def test_missing_or_wrong_token_gets_401_with_a_message(service):
    base, valid, label = service.base, service.target.transaction, service.target.label
    bodies = {"/score": valid, "/score_batch": [valid], "/feedback": [label]}
    wrong = [
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": TOKEN},
        {"Authorization": f"Bearer {TOKEN}x"},
    ]
    with httpx.Client(base_url=base, timeout=30) as client:
        for path, body in bodies.items():
            for headers in wrong:
                response = client.post(path, json=body, headers=headers)
                assert response.status_code == 401, (path, headers)
                assert response.json()["error"] == "missing or invalid bearer token"
        ok = client.post("/score", json=valid, headers={"Authorization": f"bearer {TOKEN}"})
        assert ok.status_code == 200


def test_fuzzing_finds_no_5xx_and_no_4xx_without_a_message(service):
    base, log, settings, target = service
    figures = fuzz_api.fuzz(
        base,
        TOKEN,
        examples=EXAMPLES,
        seed=0,
        max_body_bytes=MAX_BODY_BYTES,
        log=print,
        target=target,
    )
    shown = {k: v for k, v in figures.items() if k not in ("samples", "score_after_body")}
    record(FIGURES[target.spec_name], shown)
    samples = json.dumps(figures["samples"], indent=2)

    assert figures["fuzz_5xx"] == 0, f"{samples}\n{log.read_text()[-3000:]}"
    assert figures["fuzz_4xx_without_message"] == 0, samples
    assert figures["fuzz_no_response"] == 0, samples
    assert figures["fuzz_undeclared_statuses"] == 0, samples  # the spec tells the truth
    assert figures["fuzz_generated_cases"] >= 1000  # by schemathesis, besides the protocol ones
    by_operation = figures["fuzz_cases_by_operation"]
    assert set(by_operation) >= {"POST /score", "POST /score_batch", "POST /feedback"}
    assert set(by_operation) >= {f"GET {p}" for p in ("/model", "/readyz", "/livez", "/metrics")}
    assert all(n >= 1 for n in by_operation.values())
    # a generated label succeeds only when its random id happens to name a transaction the
    # service holds, or it is flagged external: 16-23 of them did in runs of 2026-12-06, 7 and
    # 10 in runs of 2026-12-07 (the generated times follow the wall clock, and with them which
    # ids were scored); scores 42-76. The floor says positive labels can succeed at all.
    least = {"POST /score": 20, "POST /score_batch": 20, "POST /feedback": 1}
    for operation, successes in least.items():
        assert by_operation[operation] >= 3 * EXAMPLES
        assert figures["fuzz_2xx_by_operation"].get(operation, 0) >= successes, operation
    assert figures["fuzz_statuses"].get("422", 0) >= 100  # the negative cases were refused

    assert figures["readyz_after"] == 200
    assert figures["score_after"] == 200, figures["score_after_body"]
    assert figures["score_after_body"]["model_version"] == "1"
    reasons = figures["score_after_body"]["reasons"]  # ?explain=true: categories too (cards)
    assert reasons and all(r["contribution"] > 0 and r["phrase"] for r in reasons), reasons
    assert figures["feedback_after"] == 200
    assert figures["prediction_log_failed_writes"] == 0  # no row the log cannot store
    assert figures["prediction_log_dropped_rows"] == 0
    # both logs stay readable: one naive-UTC time column each, whatever offsets were sent (the
    # prediction log's is tx_datetime whatever the spec calls its time)
    predictions, labels = read_log(settings.prediction_log_dir), read_log(settings.label_log_dir)
    assert len(predictions) >= figures["fuzz_2xx_by_operation"]["POST /score"]
    assert len(labels) > 0
    assert str(predictions["tx_datetime"].dtype).startswith("datetime64")
    assert str(labels["label_time"].dtype).startswith("datetime64")
    assert predictions["tx_datetime"].dt.tz is None and labels["label_time"].dt.tz is None
