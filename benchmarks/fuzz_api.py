"""API fuzzing of the scoring service with schemathesis, against a real ``fraudops serve``.

The cases come from the service's own OpenAPI document (``/docs.json``) through schemathesis'
Python API (hypothesis strategies), for every operation of it:

- ``positive``: bodies that match the schema (any date-time, any int, amounts in range);
- ``negative``: bodies that break it (wrong types, missing or extra fields, out-of-range values);
- ``in_domain``: positive bodies whose times are moved into the accepted range (1970 to now),
  so that extreme ids and amounts reach the scoring code rather than a 422;
- ``protocol``: hand-written requests the schema cannot express: other methods, other media
  types, no body, bodies over the size limit (with and without ``Content-Length``), invalid
  UTF-8, deeply nested JSON, ``NaN``/``Infinity``, ids beyond int64, unknown paths and, for a
  spec with text ids, keys or categories, a lone surrogate, an empty, an over-long, a NUL and
  an emoji value in each of them.

The service's request models and OpenAPI document are generated from its dataset spec
(``FRAUDOPS_DATASET_SPEC``), so the protocol suite's valid transaction and label are built
from the same spec (:func:`target`; ``--spec``): for the handbook spec they are the
``transaction_id``/``tx_datetime``/``customer_id``/``terminal_id``/``tx_amount`` body this
harness always sent, for ``cards`` a ``tx_id``/``tx_time``/``card_token``/... body.

Every request carries the bearer token. A response passes when it is not a 5xx and, if it is
a 4xx, its body is a JSON object with a non-empty ``error`` (or ``detail``). Afterwards the
service must still be ready and score a valid transaction. A generated case's status must also
be one its operation declares in the document (``fuzz_undeclared_statuses``, status-code
conformance; the protocol suite's other methods and paths are not operations of the document).

Usage::

    python benchmarks/fuzz_api.py [--url URL --token TOKEN] [--spec handbook|cards|FILE]
                                  [--time ISO] [--examples 150] [--seed 0] [--json-out FILE]

Without ``--url`` it simulates the spec's history (:data:`HISTORIES`: 80 handbook days, or 60
days of the card simulator), trains a champion into a temporary home and starts
``fraudops serve`` of that spec (with a token) on a free port of 127.0.0.1. Prints the figures
as JSON; ``--json-out`` (default: ``$FRAUDOPS_RELIABILITY_OUT``) also writes them to a file.
Exits 1 when a run found a 5xx, a 4xx without a message, no answer or an undeclared status,
or the service was not ready or scoring afterwards; 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import datetime as dt
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from fraudops.processes import free_port, stop, wait_http_ok
from fraudops.serving.api_models import MAX_TEXT, spec_api
from fraudops.spec import load_spec
from fraudops.spec.model import api_field

AUTH_HEADER = "Authorization"
QUIET = {"DO_NOT_TRACK": "true", "BENTOML_DO_NOT_TRACK": "true"}
#: Suite of requests that break HTTP itself: uvicorn's parser answers them (plain-text 400)
#: before the app sees them, so only "no 5xx" applies to them.
MALFORMED = "malformed_http"
#: Suites whose cases schemathesis generates from the OpenAPI document.
GENERATED_SUITES = ("positive", "negative", "in_domain")

#: The history the harness simulates, trains on and serves for each shipped spec: (days,
#: first day). The handbook's is ``tests/conftest.py``'s ``small_history`` (80 days, 400
#: customers, 800 terminals, seed 7); the cards' 60 days of 600 cards at 300 merchants (seed 7).
HISTORIES: dict[str, tuple[int, dt.date]] = {
    "handbook": (80, dt.date(2018, 4, 1)),
    "cards": (60, dt.date(2024, 1, 1)),
}
#: The first id of the fuzzer's own transactions (ids the simulated histories never use).
FIRST_ID = 99_000_001
#: The valid transaction's amount (clamped into the spec's bounds of the amount column).
AMOUNT = 25.0


def after_id() -> int:
    """The id of the transaction scored after the run: one no case sent before (a retry of a
    sent id with other values rightly gets a 422). Drawn at run time from the OS's random
    source among 2**52 ids: Hypothesis generates integers near the schema's examples and the
    literals of the code it runs (a fixed ``987_000_211`` here was generated, scored with other
    values, and the check after the run refused), so no literal names it."""
    return 2**52 + secrets.randbelow(2**52)


@dataclass(frozen=True)
class Target:
    """The requests a service of one dataset spec accepts, as the fuzzer sends them.

    Attributes:
        spec_name: the dataset spec's name (``handbook``, ``cards`` or a user spec's).
        transaction: a valid ``/score`` body: every request field of the spec, in the request
            model's order (for the handbook: ``transaction_id``, ``tx_datetime``,
            ``customer_id``, ``terminal_id``, ``tx_amount``).
        label: a valid ``/feedback`` row of that transaction: the id field, ``is_fraud`` and
            ``label_time``.
        id_field: the request field of the event id (``transaction_id``, ``tx_id``).
        time_fields: the fields holding a date and time: the event time's and ``label_time``.
        amount_field: the request field of the spec's amount column.
        key_field: the request field of the spec's first entity key (``customer_id``).
    """

    spec_name: str
    transaction: dict[str, Any]
    label: dict[str, Any]
    id_field: str
    time_fields: tuple[str, str]
    amount_field: str
    key_field: str

    def with_id(self, number: int) -> dict[str, Any]:
        """The valid transaction with the id ``number`` (``"tx-<number>"`` for a text id)."""
        text = isinstance(self.transaction[self.id_field], str)
        return {**self.transaction, self.id_field: _typed_id(number, text=text)}

    def text_fields(self) -> list[str]:
        """The transaction's text fields but its time (text ids, keys, categories); may be []."""
        return [
            name
            for name, value in self.transaction.items()
            if isinstance(value, str) and name != self.time_fields[0]
        ]


def history_end(spec_name: str) -> dt.datetime:
    """10:00 on the day after the history :data:`HISTORIES` gives ``spec_name``: a time just
    past the served history, within the default clock skew of the service's watermark.

    Raises:
        KeyError: ``spec_name`` is not a shipped spec (no simulated history).
    """
    days, start = HISTORIES[spec_name]
    return dt.datetime.combine(start, dt.time(10)) + dt.timedelta(days=days)


def target(spec: str = "handbook", when: dt.datetime | None = None) -> Target:
    """The :class:`Target` of a dataset spec, built from its API models
    (:func:`fraudops.serving.api_models.spec_api`); for the handbook spec, the requests this harness
    always sent.

    Args:
        spec: a shipped spec's name or a spec YAML file (as ``FRAUDOPS_DATASET_SPEC``).
        when: the transaction's and the label's time (naive UTC); None: :func:`history_end`.

    Raises:
        KeyError: ``when`` is None and ``spec`` is not a shipped spec.
        ValueError: the spec's event time is a step index (the fuzzer sends ISO times only).
        fraudops.spec.SpecError: and the other errors of ``load_spec`` for an unreadable spec.
    """
    api = spec_api(load_spec(spec))
    if api.spec.event_time.unit:
        raise ValueError(f"spec {api.spec.name!r}: a step-index event time is not fuzzed")
    when = when or history_end(api.spec.name)
    transaction = _valid_transaction(api, when)
    label = {api.id_field: transaction[api.id_field], "is_fraud": True}
    return Target(
        spec_name=api.spec.name,
        transaction=transaction,
        label={**label, "label_time": when.isoformat()},
        id_field=api.id_field,
        time_fields=(api.time_field, "label_time"),
        amount_field=api_field(api.spec.amount),
        key_field=api_field(api.spec.entities[0].column),
    )


def _valid_transaction(api: Any, when: dt.datetime) -> dict[str, Any]:
    """The request model's example of ``api`` (a ``SpecApi``) with the id :data:`FIRST_ID`,
    the time ``when``, the amount :data:`AMOUNT` (within the column's bounds) and integer
    entity keys 3, 4, ...; text keys and categories keep the example's values.

    Returns:
        Request field → JSON value, in the request model's field order.
    """
    example = api.transaction.model_json_schema()["example"]
    transaction = {name: example[name] for name in api.transaction.model_fields}
    for i, entity in enumerate(api.spec.entities):
        if isinstance(transaction[api_field(entity.column)], int):
            transaction[api_field(entity.column)] = 3 + i
    amount = api_field(api.spec.amount)
    for numeric in api.spec.numeric:
        if api_field(numeric.column) == amount:
            low = AMOUNT if numeric.min is None else numeric.min
            high = AMOUNT if numeric.max is None else numeric.max
            transaction[amount] = float(min(max(AMOUNT, low), high))
    text_id = isinstance(transaction[api.id_field], str)
    transaction[api.id_field] = _typed_id(FIRST_ID, text=text_id)
    transaction[api.time_field] = when.isoformat()
    return transaction


def _typed_id(number: int, *, text: bool) -> int | str:
    """``number`` as an event id: the int itself, or ``"tx-<number>"`` for a text id."""
    return f"tx-{number}" if text else number


#: The handbook's requests (the fuzzer's defaults).
HANDBOOK = target("handbook")
VALID_TRANSACTION = HANDBOOK.transaction
VALID_LABEL = HANDBOOK.label
TIME_FIELDS = HANDBOOK.time_fields


def has_message(body: bytes) -> bool:
    """Whether an error body is a JSON object with a non-empty ``error`` or ``detail``."""
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):
        return False
    if not isinstance(parsed, dict):
        return False
    error, detail = parsed.get("error"), parsed.get("detail")
    return bool(isinstance(error, str) and error.strip()) or bool(
        (isinstance(detail, str) and detail.strip()) or (isinstance(detail, list) and detail)
    )


@dataclass
class Tally:
    """Every response of a fuzzing run, by suite, operation and status."""

    cases: int = 0
    statuses: collections.Counter[int] = field(default_factory=collections.Counter)
    by_suite: collections.Counter[str] = field(default_factory=collections.Counter)
    by_operation: collections.Counter[str] = field(default_factory=collections.Counter)
    ok_by_operation: collections.Counter[str] = field(default_factory=collections.Counter)
    server_errors: list[dict[str, Any]] = field(default_factory=list)
    without_message: list[dict[str, Any]] = field(default_factory=list)
    no_response: list[dict[str, Any]] = field(default_factory=list)
    undeclared: list[dict[str, Any]] = field(default_factory=list)
    unsent: int = 0
    operations: set[str] = field(default_factory=set)  # those of the OpenAPI document

    def record(
        self, suite: str, operation: str, status: int, body: bytes, sent: Any = None
    ) -> None:
        self.cases += 1
        self.statuses[status] += 1
        self.by_suite[suite] += 1
        self.by_operation[operation] += 1
        if 200 <= status < 300:
            self.ok_by_operation[operation] += 1
        sample = {
            "suite": suite,
            "operation": operation,
            "status": status,
            "response": body[:300].decode("utf-8", errors="replace"),
            "request": repr(sent)[:300],
        }
        if status >= 500:
            self.server_errors.append(sample)
        elif status >= 400 and suite != MALFORMED and not has_message(body):
            self.without_message.append(sample)

    def figures(self) -> dict[str, Any]:
        """The run's figures; ``fuzz_*`` keys are the ones the reliability report shows."""
        return {
            "fuzz_cases": self.cases,
            "fuzz_generated_cases": sum(
                n for suite, n in self.by_suite.items() if suite in GENERATED_SUITES
            ),
            "fuzz_5xx": sum(n for s, n in self.statuses.items() if s >= 500),
            "fuzz_4xx_without_message": len(self.without_message),
            "fuzz_no_response": len(self.no_response),
            "fuzz_undeclared_statuses": len(self.undeclared),
            "fuzz_unsent": self.unsent,
            "fuzz_statuses": {str(s): n for s, n in sorted(self.statuses.items())},
            "fuzz_cases_by_suite": dict(sorted(self.by_suite.items())),
            "fuzz_operations": len(self.operations),
            "fuzz_cases_by_operation": {
                op: n for op, n in sorted(self.by_operation.items()) if op in self.operations
            },
            "fuzz_2xx_by_operation": {
                op: n for op, n in sorted(self.ok_by_operation.items()) if op in self.operations
            },
            "samples": {
                "server_errors": self.server_errors[:5],
                "without_message": self.without_message[:5],
                "no_response": self.no_response[:5],
                "undeclared_statuses": self.undeclared[:5],
            },
        }


def _move_times_into_range(
    body: Any, times: list[dt.datetime], fields: tuple[str, ...] = TIME_FIELDS
) -> Any:
    """``body`` (a JSON object or array of them, changed in place) with every time of
    ``fields`` (the transaction's and the label's) replaced by one of ``times``, in turn."""
    rows = body if isinstance(body, list) else [body]
    for i, row in enumerate(rows):
        if isinstance(row, dict):
            for name in fields:
                if row.get(name) is not None:
                    row[name] = times[i % len(times)].isoformat()
    return body


def schema_suites(
    base: str,
    token: str,
    tally: Tally,
    *,
    examples: int,
    seed: int,
    log: Callable[[str], None],
    time_fields: tuple[str, ...] = TIME_FIELDS,
) -> None:
    """The ``positive``, ``negative`` and ``in_domain`` suites, every operation of the
    service's OpenAPI document; ``in_domain`` moves the ``time_fields`` into 1970 .. now."""
    import hypothesis
    import requests
    import schemathesis
    from hypothesis import strategies as st
    from schemathesis import GenerationMode

    schema = schemathesis.openapi.from_url(f"{base}/docs.json")
    # the token goes with every case (``headers``): no made-up bearer header from the document's
    # security scheme, which negative cases would drop (a 401 that never reaches validation)
    schema.config.generation.update(with_security_parameters=False)
    headers = {AUTH_HEADER: f"Bearer {token}"}
    session = requests.Session()
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    zones = st.sampled_from(
        [None, dt.UTC, dt.timezone(dt.timedelta(hours=14)), dt.timezone(dt.timedelta(hours=-12))]
    )
    when = st.datetimes(min_value=dt.datetime(1970, 1, 1), max_value=now, timezones=zones)
    times = st.lists(when, min_size=1, max_size=8)
    settings = hypothesis.settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    for result in schema.get_all_operations():
        operation = result.ok()
        label = operation.label
        tally.operations.add(label)
        suites = {
            "positive": (GenerationMode.POSITIVE, False),
            "negative": (GenerationMode.NEGATIVE, False),
        }
        if operation.method.upper() == "POST":
            suites["in_domain"] = (GenerationMode.POSITIVE, True)
        for suite, (mode, in_domain) in suites.items():
            declared = {str(status) for status in operation.definition.raw["responses"]}
            send = _sender(base, headers, session, tally, (suite, label), declared, time_fields)
            run = hypothesis.given(
                case=operation.as_strategy(generation_mode=mode),
                moved=times if in_domain else st.just([]),
            )(send)
            before = tally.cases
            # an operation without parameters or body has nothing to break: Unsatisfiable
            with contextlib.suppress(hypothesis.errors.Unsatisfiable):
                hypothesis.seed(seed)(settings(run))()
            log(f"{label:<20} {suite:<10} {tally.cases - before:>5} cases")


def _sender(
    base: str,
    headers: dict[str, str],
    session: Any,
    tally: Tally,
    where: tuple[str, str],
    declared: set[str],
    time_fields: tuple[str, ...],
) -> Callable[[Any, list[dt.datetime]], None]:
    """The body of one hypothesis test: send ``case`` (its ``time_fields`` moved if times are
    given), record it under ``where`` (suite, operation), and its status if the operation does
    not declare it (``declared``)."""
    import requests

    suite, label = where

    def send(case: Any, moved: list[dt.datetime]) -> None:
        if moved and case.body is not None:
            case.body = _move_times_into_range(case.body, moved, time_fields)
        try:
            response = case.call(base_url=base, session=session, headers=headers, timeout=60)
        except (requests.ConnectionError, requests.Timeout) as exc:
            tally.no_response.append({"operation": label, "error": repr(exc)[:300]})
            return
        except (requests.RequestException, ValueError, TypeError):
            tally.unsent += 1  # e.g. a header value that requests refuses to encode
            return
        tally.record(suite, label, response.status_code, response.content, case.body)
        if str(response.status_code) not in declared and "default" not in declared:
            tally.undeclared.append(
                {
                    "suite": suite,
                    "operation": label,
                    "status": response.status_code,
                    "declared": sorted(declared),
                    "response": response.content[:300].decode("utf-8", errors="replace"),
                }
            )

    return send


def _request(
    client: httpx.Client, tally: Tally, operation: str, method: str, path: str, **kwargs: Any
) -> None:
    try:
        response = client.request(method, path, **kwargs)
    except httpx.TransportError as exc:
        tally.no_response.append({"operation": f"{method} {path}", "error": repr(exc)[:300]})
        return
    sent = kwargs.get("content", kwargs.get("json"))
    tally.record("protocol", operation, response.status_code, response.content, sent)


def _raw_request(
    base: str,
    tally: Tally,
    suite: str,
    operation: str,
    path: str,
    token: str,
    body: bytes,
    declared: bytes,
) -> None:
    """POST ``body`` with a ``Content-Length`` of ``declared`` (which clients refuse to send)."""
    host, port = base.removeprefix("http://").split(":")
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
        "Content-Type: application/json\r\nConnection: close\r\n"
    ).encode()
    request = head + b"Content-Length: " + declared + b"\r\n\r\n" + body
    try:
        with socket.create_connection((host, int(port)), timeout=30) as sock:
            sock.sendall(request)  # "Connection: close": the server closes after answering
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
    except OSError as exc:
        error = f"Content-Length {declared!r}: {exc!r}"[:300]
        tally.no_response.append({"operation": operation, "error": error})
        return
    status_line, _, rest = answer.partition(b"\r\n")
    _, _, payload = rest.partition(b"\r\n\r\n")
    try:
        status = int(status_line.split()[1])
    except (IndexError, ValueError):
        error = f"Content-Length {declared!r}: answer {answer[:300]!r}"
        tally.no_response.append({"operation": operation, "error": error})
        return
    tally.record(suite, operation, status, payload, b"Content-Length: " + declared)


def _mutated_bodies(template: bytes, target: Target = HANDBOOK) -> list[bytes]:
    """Bodies that are not JSON, not the right JSON, or carry values no field accepts.

    Args:
        template: a valid body of ``target`` (its transaction or its label) as JSON bytes; its
            amount, id and time are replaced by bad values (those it holds).
        target: the requests of the served spec.

    Returns:
        31 bodies, then :func:`_text_mutations` of the template (none for the handbook).
    """
    valid = target.transaction
    amount = json.dumps(valid[target.amount_field]).encode()
    ident = json.dumps(valid[target.id_field]).encode()
    when = valid[target.time_fields[0]].encode()
    bad_strings = b'{"%s": "\\u0000\\u202e\\ud83d\\udca5", "%s": "\\ud800"}'
    return [
        b"",
        b"{",
        b"null",
        b"[]",
        b"{}",
        b"[{}]",
        b'"text"',
        b"\xff\xfe\x00",
        bad_strings % (target.amount_field.encode(), target.id_field.encode()),
        f'{{"{target.key_field}": "\u202e\U0001f4a5 \u00e9"}}'.encode(),
        b"[" * 5000 + b"]" * 5000,
        b'{"a":' * 3000 + b"1" + b"}" * 3000,
        template.replace(amount, b"NaN"),
        template.replace(amount, b"Infinity"),
        template.replace(amount, b"-Infinity"),
        template.replace(amount, b"1e400"),
        template.replace(amount, b"1" + b"0" * 4000),
        template.replace(ident, b"9" * 40),
        template.replace(ident, b"-" + b"9" * 40),
        template.replace(ident, b"9223372036854775808"),
        template.replace(ident, b"1.5"),
        template.replace(ident, b"true"),
        template.replace(when, b"0001-01-01T00:00:00+01:00"),
        template.replace(when, b"9999-12-31T23:59:59-01:00"),
        template.replace(when, b"2018-06-20T10:00:00+23:59"),
        template.replace(when, b"2018-02-30T25:61:61"),
        template.replace(when, b"\u0000"),
        template.replace(b'"%s"' % when, b"1e20"),
        template.replace(b'"%s"' % when, b"-1e20"),
        template + b"garbage",
        b" " * 100 + template,
        *_text_mutations(template, target),
    ]


#: Values a text id, key or category may not hold, or that are hard to store: a lone
#: surrogate (not encodable as UTF-8), empty, one character too long, NUL, an emoji.
BAD_TEXTS = ("\ud800", "", "x" * (MAX_TEXT + 1), "\u0000", "\U0001f4a5")


def _text_mutations(template: bytes, target: Target) -> list[bytes]:
    """``template`` (a JSON object) with each text field (a text id, key or category, not a
    time) set to each of :data:`BAD_TEXTS` in turn; [] when it has none (the handbook)."""
    row = json.loads(template)
    names = [name for name in target.text_fields() if name in row]
    return [json.dumps({**row, name: bad}).encode() for name in names for bad in BAD_TEXTS]


def protocol_suite(
    base: str,
    token: str,
    tally: Tally,
    *,
    max_body_bytes: int,
    paths: list[str],
    target: Target = HANDBOOK,
) -> None:
    """Hand-written requests the OpenAPI document cannot describe (see the module doc), built
    on ``target``'s valid transaction and label."""
    json_type = {"content-type": "application/json"}
    valid = json.dumps(target.transaction).encode()
    auth = {AUTH_HEADER: f"Bearer {token}"}
    with httpx.Client(base_url=base, headers=auth, timeout=60) as client:
        for path in paths:
            for method in ("PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"):
                _request(client, tally, f"{method} {path}", method, path)
        for path in ("/nope", "/score/", "/docs.json/x", "/%ff"):
            _request(client, tally, f"GET {path}", "GET", path)
            _request(client, tally, f"POST {path}", "POST", path, content=valid)
        for path in ("/model", "/readyz", "/livez", "/healthz", "/metrics"):
            _request(client, tally, f"GET {path}", "GET", path, params={"x": "\u00e9" * 50})
            _request(client, tally, f"POST {path}", "POST", path, content=valid)
        for path, template in (
            ("/score", valid),
            ("/score_batch", valid),
            ("/feedback", json.dumps(target.label).encode()),
        ):
            operation = f"POST {path}"
            shaped = template if path == "/score" else b"[%s]" % template
            for body in _mutated_bodies(template, target):
                content = body if path == "/score" or not body.startswith(b"{") else b"[%s]" % body
                _request(client, tally, operation, "POST", path, content=content, headers=json_type)
            for media in (
                "text/plain",
                "application/x-www-form-urlencoded",
                "multipart/form-data; boundary=x",
                "application/vnd.bentoml+pickle",
                "application/xml",
                "",
            ):
                _request(
                    client,
                    tally,
                    operation,
                    "POST",
                    path,
                    content=shaped,
                    headers={"content-type": media},
                )
            _request(client, tally, operation, "POST", path, content=shaped)  # no content-type
            too_big = b"[" + b" " * max_body_bytes + b"]"
            _request(client, tally, operation, "POST", path, content=too_big, headers=json_type)
            _request(
                client,
                tally,
                operation,
                "POST",
                path,
                content=iter([too_big[: len(too_big) // 2], too_big[len(too_big) // 2 :]]),
                headers=json_type,
            )  # chunked: no Content-Length to refuse early
            _raw_request(base, tally, "protocol", operation, path, token, shaped, b"10000000000")
            for declared in (b"99999999999999999999", b"-1", b"abc"):
                _raw_request(base, tally, MALFORMED, operation, path, token, shaped, declared)
        rows = [target.with_id(99_100_000 + i) for i in range(500)]
        _request(client, tally, "POST /score_batch", "POST", "/score_batch", json=rows)
        _request(client, tally, "POST /score_batch", "POST", "/score_batch", json=[])
        _request(client, tally, "POST /feedback", "POST", "/feedback", json=[])


def _gauges(client: httpx.Client) -> dict[str, float]:
    metrics = client.get("/metrics").text
    return {
        name: float(value)
        for name, value in re.findall(r"^(fraudops_[a-z_]+) ([0-9.e+-]+)$", metrics, re.M)
    }


def health(base: str, token: str, target: Target = HANDBOOK) -> dict[str, Any]:
    """Readiness, the score of a new valid transaction with its reason codes (``target``'s
    with an id :func:`after_id` draws), its label and the log-writer gauges, after the run."""
    auth = {AUTH_HEADER: f"Bearer {token}"}
    transaction = target.with_id(after_id())
    label = {target.id_field: transaction[target.id_field], "is_fraud": False}
    with httpx.Client(base_url=base, timeout=60) as client:
        ready = client.get("/readyz").status_code
        score = client.post("/score?explain=true", json=transaction, headers=auth)
        feedback = client.post("/feedback", json=[label], headers=auth)
        time.sleep(2.5)  # the log writers flush every second; the gauges refresh every second
        gauges = _gauges(client)
    return {
        "readyz_after": ready,
        "score_after": score.status_code,
        "score_after_body": score.json() if score.status_code == 200 else score.text[:300],
        "feedback_after": feedback.status_code,
        "prediction_log_failed_writes": gauges.get("fraudops_prediction_log_failed_writes"),
        "prediction_log_dropped_rows": gauges.get("fraudops_prediction_log_dropped_rows"),
        "feature_state_events": gauges.get("fraudops_feature_state_events"),
    }


def fuzz(
    base: str,
    token: str,
    *,
    examples: int = 150,
    seed: int = 0,
    max_body_bytes: int = 8 * 2**20,
    log: Callable[[str], None] = print,
    target: Target = HANDBOOK,
) -> dict[str, Any]:
    """Fuzz the service at ``base`` and return the figures (see :meth:`Tally.figures`).

    Args:
        base: the service's URL, e.g. ``http://127.0.0.1:3000``.
        token: its ``FRAUDOPS_API_TOKEN``, sent as a bearer token with every request.
        examples: cases per operation and suite (operations without input give one).
        seed: hypothesis seed (the same seed sends the same cases).
        max_body_bytes: the service's ``FRAUDOPS_MAX_BODY_BYTES`` (for the over-limit bodies).
        log: where a line per operation and suite goes.
        target: the requests of the service's dataset spec (:func:`target`); the figures
            name its spec (``spec``).
    """
    started = time.perf_counter()
    tally = Tally()
    with httpx.Client(base_url=base, timeout=60) as client:
        state_before = _gauges(client).get("fraudops_feature_state_events")
    schema_suites(
        base,
        token,
        tally,
        examples=examples,
        seed=seed,
        log=log,
        time_fields=target.time_fields,
    )
    paths = sorted(httpx.get(f"{base}/docs.json", timeout=30).json()["paths"])
    protocol_suite(base, token, tally, max_body_bytes=max_body_bytes, paths=paths, target=target)
    log(f"protocol suite {tally.by_suite['protocol']:>5} cases")
    figures = {"spec": target.spec_name, **tally.figures()}
    figures["fuzz_seconds"] = round(time.perf_counter() - started, 1)
    figures.update(health(base, token, target))
    # informational: with ANY_DATE_SKEW_SECONDS every accepted date moves the watermark
    figures["feature_state_events_before"] = state_before
    return figures


#: A clock skew that lets any date the schema allows (1970 .. now + 1 day) be scored, so the
#: fuzzer reaches the scoring path instead of the clock's 422 (tested on its own elsewhere).
ANY_DATE_SKEW_SECONDS = 100 * 366 * 86_400


@contextlib.contextmanager
def serving(home: Path, data: Path, token: str, log_file: Path, **env: str) -> Iterator[str]:
    """``fraudops serve`` on a free port with ``token``; yields its URL; stopped afterwards."""
    port = free_port()
    environ = {
        **os.environ,
        **QUIET,
        "FRAUDOPS_HOME": str(home),
        "FRAUDOPS_DATA_PATH": str(data),
        "FRAUDOPS_POLL_INTERVAL_SECONDS": "3600",
        "FRAUDOPS_API_TOKEN": token,
        **env,
    }
    with log_file.open("w") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "fraudops_cli", "serve", "--port", str(port)],
            env=environ,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http_ok(f"{base}/readyz", server, timeout=180, log=log_file)
        yield base
    finally:
        stop(server)


def write_figures(figures: dict[str, Any], path: str | os.PathLike[str] | None) -> None:
    """Write ``figures`` as JSON to ``path`` (default ``$FRAUDOPS_RELIABILITY_OUT``), if any."""
    target = path or os.environ.get("FRAUDOPS_RELIABILITY_OUT")
    if target:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        Path(target).write_text(json.dumps(figures, indent=2, default=str) + "\n")


def simulated_history(spec_name: str) -> Any:
    """The history of :data:`HISTORIES` for a shipped spec, from its built-in simulator.

    Returns:
        A labelled ``pandas.DataFrame`` in the spec's raw columns: for the handbook about
        40,000 rows (400 customers, 800 terminals), for cards about 32,000 (600 cards, 300
        merchants), seed 7.

    Raises:
        KeyError: ``spec_name`` is not a shipped spec.
    """
    days, start = HISTORIES[spec_name]
    if spec_name == "handbook":
        from fraudops.data.simulator import SimulationConfig, simulate_transactions

        config = SimulationConfig(days=days, start=start, n_customers=400, n_terminals=800, seed=7)
        return simulate_transactions(config)
    from fraudops.data.card_simulator import CardSimulationConfig, simulate_card_payments

    cards = CardSimulationConfig(days=days, start=start, n_cards=600, n_merchants=300, seed=7)
    return simulate_card_payments(cards)


def training_settings(spec_name: str, home: Path, data: Path) -> Any:
    """The ``Settings`` the harness trains the champion of ``spec_name`` with, on ``data``.

    The handbook's are the defaults. The cards' train on 14 days with a low first-model gate
    (AP 0.05, ROC AUC 0.5): on 600 cards the point is a served champion, not its quality.
    """
    from fraudops.settings import Settings

    if spec_name == "handbook":
        return Settings(home=home, data_path=data, dataset_spec=spec_name)
    return Settings(
        home=home,
        data_path=data,
        dataset_spec=spec_name,
        train_days=14,
        gate_min_average_precision=0.05,
        gate_min_roc_auc=0.5,
    )


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="a running service; default: start one")
    parser.add_argument("--token", default=os.environ.get("FRAUDOPS_API_TOKEN", ""))
    parser.add_argument(
        "--spec",
        default=os.environ.get("FRAUDOPS_DATASET_SPEC") or "handbook",
        help="the service's dataset spec: handbook or cards (a spec YAML file with --url "
        "and --time); default $FRAUDOPS_DATASET_SPEC, else handbook",
    )
    parser.add_argument(
        "--time",
        type=dt.datetime.fromisoformat,
        help="the valid transaction's time (naive UTC), near the served history's end; "
        "default: 10:00 on the day after the harness' simulated history of the spec",
    )
    parser.add_argument("--examples", type=int, default=150)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-body-bytes", type=int, default=64 * 1024)
    parser.add_argument("--json-out")
    args = parser.parse_args()
    if not args.url and args.spec not in HISTORIES:
        parser.error(f"--spec {args.spec}: without --url only {', '.join(HISTORIES)} are served")
    try:
        args.target = target(args.spec, args.time)
    except KeyError:
        parser.error(f"--spec {args.spec}: not a shipped spec, give --time (the history's end)")
    except (ValueError, OSError) as exc:
        parser.error(f"--spec {args.spec}: {exc}")
    return args


def _serve_and_fuzz(args: argparse.Namespace, log: Callable[[str], None]) -> dict[str, Any]:
    """Simulate the spec's history, train a champion, serve it and fuzz it (see the module doc)."""
    from pipelines.training import run_training

    spec_name = args.target.spec_name
    token = args.token or "fuzz-token"
    with tempfile.TemporaryDirectory(prefix="fraudops-fuzz-") as tmp:
        root = Path(tmp)
        data = root / "history.parquet"
        simulated_history(spec_name).to_parquet(data)
        run_training(training_settings(spec_name, root / "home", data))
        with serving(
            root / "home",
            data,
            token,
            root / "server.log",
            FRAUDOPS_DATASET_SPEC=spec_name,
            FRAUDOPS_MAX_BODY_BYTES=str(args.max_body_bytes),
            FRAUDOPS_MAX_EVENT_SKEW_SECONDS=str(ANY_DATE_SKEW_SECONDS),
        ) as base:
            return fuzz(
                base,
                token,
                examples=args.examples,
                seed=args.seed,
                max_body_bytes=args.max_body_bytes,
                log=log,
                target=args.target,
            )


def main() -> int:
    """The command line (see the module doc); 0 when the run found nothing, else 1."""
    args = _arguments()
    log = lambda line: print(line, file=sys.stderr)  # noqa: E731
    if args.url:
        figures = fuzz(
            args.url,
            args.token,
            examples=args.examples,
            seed=args.seed,
            max_body_bytes=args.max_body_bytes,
            log=log,
            target=args.target,
        )
    else:
        figures = _serve_and_fuzz(args, log)
    print(json.dumps(figures, indent=2, default=str))
    write_figures(figures, args.json_out)
    failed = (
        figures["fuzz_5xx"]
        or figures["fuzz_4xx_without_message"]
        or figures["fuzz_no_response"]
        or figures["fuzz_undeclared_statuses"]
    )
    return 1 if failed or figures["readyz_after"] != 200 or figures["score_after"] != 200 else 0


if __name__ == "__main__":
    sys.exit(main())
