"""BentoML service: scores raw transactions with the registry's ``@champion``.

Thin: request models come from :mod:`fraudops.serving.api_models`, all logic from
:class:`fraudops.serving.scorer.Scorer`. Start it with ``fraudops serve`` (or
``bentoml serve services.service:FraudService``). Settings are read once, in ``__init__``.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import os
import threading
import time
from http import HTTPStatus
from typing import Annotated, Any

import bentoml
import orjson
from bentoml.exceptions import BentoMLException
from fastapi import FastAPI
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, Field, TypeAdapter, ValidationError
from starlette.responses import Response

from fraudops.logs.records import LabelRecord
from fraudops.serving.api_models import FeedbackOut, spec_api
from fraudops.serving.exposure import require_safe_exposure
from fraudops.settings import Settings
from fraudops.streaming.labels import UNKNOWN, LabelRefused
from fraudops.streaming.state import StateUnavailable
from services import client_errors
from services.io_schemas import memoize_io_schemas
from services.middleware import GuardMiddleware, tell_server_error, validation_message
from services.openapi import document

JSON = "application/json"
#: A request body before the dataset spec's model validates it (in the API method).
Body = dict[str, Any]

logger = logging.getLogger(__name__)
#: ``/docs``: Swagger UI (the assets BentoML serves) on this service's OpenAPI document.
SWAGGER_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>fraudops scoring API</title>
<link rel="stylesheet" href="/static_content/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/static_content/swagger-ui-bundle.js"></script>
<script>window.ui = SwaggerUIBundle({url: "/docs.json", dom_id: "#swagger-ui"});</script>
</body></html>
"""
#: How often the review queue's gauges are read from the case store (and the label log).
REVIEW_FIGURES_SECONDS = 15.0
info_app = FastAPI(title="fraudops model info", docs_url=None, redoc_url=None, openapi_url=None)


class BatchTooLarge(BentoMLException):
    """A batch holds more rows than ``FRAUDOPS_MAX_BATCH_ROWS`` (labels:
    ``FRAUDOPS_MAX_FEEDBACK_ROWS``)."""

    error_code = HTTPStatus.REQUEST_ENTITY_TOO_LARGE


class Invalid(BentoMLException):
    """A request the dataset spec's model refuses; the message names each field."""

    error_code = HTTPStatus.UNPROCESSABLE_ENTITY


@functools.cache
def _list_of(model: type[BaseModel]) -> TypeAdapter[list[BaseModel]]:
    """A validator of a list of ``model`` (built once per model: about 55 µs each time)."""
    return TypeAdapter(list[model])  # type: ignore[valid-type]


def validated(model: type[BaseModel], body: Any, where: str) -> list[BaseModel]:
    """``body`` (a list of objects) validated by ``model``, each object strictly.

    Raises:
        Invalid: naming each failing field where it is (``transactions[3].tx_amount``).
    """
    try:
        return _list_of(model).validate_python(body)
    except ValidationError as exc:
        errors = exc.errors(include_context=False, include_input=False, include_url=False)
        raise Invalid(validation_message(list(errors), where) or str(exc)) from None


def answer(body: Any) -> Any:
    """``body`` as the JSON response itself, which BentoML sends as it is.

    BentoML 1.4 passes a Starlette ``Response`` returned by an API method through
    (``_bentoml_impl/server/app.py``); any other value is validated into the output model and
    serialised by pydantic: 28.9 ms for a 1,000-row ``/score_batch`` answer here, against
    0.8 ms for orjson (40 vs 2.4 µs for one ``/score`` answer). orjson writes what pydantic
    did: NaN and infinities as ``null``, numpy scalars as numbers. The methods keep their
    annotation, which BentoML reads for its generated schema (:mod:`services.openapi`
    replaces it with the spec's answer model).
    """
    return Response(orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY), media_type=JSON)


def tell(message: str) -> str:
    """``message``, also given to the middleware as the body of the coming 5xx."""
    tell_server_error(message)
    return message


def explain_asked(value: str | None) -> bool:
    """The ``explain`` query parameter: absent or ``false``/``0`` → False, ``true``/``1`` → True.

    Raises:
        Invalid: any other value (422 naming the parameter).
    """
    if value is None or value.lower() in ("false", "0"):
        return False
    if value.lower() in ("true", "1"):
        return True
    raise Invalid(f"query parameter explain: {value!r} is not true or false")


class Refused(BentoMLException):
    """A transaction breaks the online clock's rule, or reuses a scored transaction id with
    other values (:mod:`fraudops.streaming.clock`); or a label breaks a label rule
    (:mod:`fraudops.streaming.labels`)."""

    error_code = HTTPStatus.UNPROCESSABLE_ENTITY


class NotReady(BentoMLException):
    """No champion is loaded yet."""

    error_code = HTTPStatus.SERVICE_UNAVAILABLE
    expected = True  # one log line, no traceback (services.client_errors)


class StateDown(BentoMLException):
    """The online state's store (Redis) cannot be reached; nothing of the request was kept."""

    error_code = HTTPStatus.SERVICE_UNAVAILABLE
    expected = True


#: ``ChallengerCounters`` fields exported as ``fraudops_challenger_<field>`` gauges.
CHALLENGER_GAUGES = {
    "scored": "Events the challenger scored (shadow and canary)",
    "decided": "Events whose answer was the canary challenger's",
    "failures": "Challenger scorings that raised (the champion answered)",
    "dropped": "Events not shadow-scored: the shadow queue was full",
    "load_failures": "Failed challenger loads",
    "rollbacks": "Canaries stopped by a guardrail breach",
}
_REGISTRY_HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
}


def _metrics() -> dict[str, Any]:
    """Prometheus metrics, created in the worker (after BentoML sets up multiprocess mode)."""
    import prometheus_client as prom

    return {
        "scored": prom.Counter("fraudops_scored_transactions", "Transactions scored"),
        "alerts": prom.Counter("fraudops_alerts", "Transactions whose decision was alert"),
        "feedback": prom.Counter("fraudops_feedback_labels", "Labels received on /feedback"),
        "external_labels": prom.Counter(
            "fraudops_feedback_external_labels",
            "Labels of transactions this service did not score (flagged external; log only)",
        ),
        "corrections": prom.Counter(
            "fraudops_feedback_corrections", "Labels flagged as corrections of a confirmed fraud"
        ),
        "labels_refused": prom.Counter(
            "fraudops_feedback_refused_labels",
            "Labels of /feedback requests refused (422): an unknown id not flagged external, "
            "or a confirmed fraud labelled false without correction, by reason",
            ["reason"],
        ),
        "refused": prom.Counter(
            "fraudops_events_refused",
            "Transactions of requests refused by the online state (422): its clock (ahead, "
            "too_old) or a transaction id reused with other values (conflict), by reason",
            ["reason"],
        ),
        "version": prom.Gauge(
            "fraudops_model_version", "Served champion version", multiprocess_mode="max"
        ),
        "state": prom.Gauge(
            "fraudops_feature_state_events",
            "Events in the online state",
            multiprocess_mode="livesum",
        ),
        "log_buffered": prom.Gauge(
            "fraudops_prediction_log_buffered_rows",
            "Prediction-log rows not yet written",
            multiprocess_mode="livesum",
        ),
        "log_dropped": prom.Gauge(
            "fraudops_prediction_log_dropped_rows",
            "Prediction-log rows dropped (buffer full)",
            multiprocess_mode="livesum",
        ),
        "log_failures": prom.Gauge(
            "fraudops_prediction_log_failed_writes",
            "Failed prediction-log writes",
            multiprocess_mode="livesum",
        ),
        "cases_open": prom.Gauge(
            "fraudops_cases_open",
            "Cases not yet decided (review queue depth)",
            multiprocess_mode="max",
        ),
        "cases_in_review": prom.Gauge(
            "fraudops_cases_in_review", "Cases claimed by an analyst", multiprocess_mode="max"
        ),
        "case_age": prom.Gauge(
            "fraudops_case_oldest_open_hours",
            "Age of the oldest undecided case, hours",
            multiprocess_mode="max",
        ),
        "decided_hour": prom.Gauge(
            "fraudops_cases_decided_last_hour",
            "Cases decided in the last hour",
            multiprocess_mode="max",
        ),
        "agreement_compared": prom.Gauge(
            "fraudops_analyst_chargeback_compared",
            "Reviewed events that also got a chargeback label (last 120 days of labels)",
            multiprocess_mode="max",
        ),
        "agreement_agreed": prom.Gauge(
            "fraudops_analyst_chargeback_agreed",
            "Of those, events where the analyst's label equals the chargeback's",
            multiprocess_mode="max",
        ),
        "cases_waiting": prom.Gauge(
            "fraudops_case_intake_waiting_alerts",
            "Alerts waiting for the case store (down or slow)",
            multiprocess_mode="livesum",
        ),
        "reload_failures": prom.Gauge(
            "fraudops_model_reload_failures", "Failed champion reloads", multiprocess_mode="livesum"
        ),
        "challenger_version": prom.Gauge(
            "fraudops_challenger_version",
            "Challenger version in shadow or canary (0: none)",
            multiprocess_mode="max",
        ),
        **{
            f"challenger_{key}": prom.Gauge(
                f"fraudops_challenger_{key}", text, multiprocess_mode="livesum"
            )
            for key, text in CHALLENGER_GAUGES.items()
        },
    }


@bentoml.service(
    name="fraudops",
    workers=int(os.environ.get("FRAUDOPS_SERVE_WORKERS", "1")),
    traffic={"timeout": 120},
    # per-request access lines cost throughput; BENTOML's own metrics still count every request
    logging={"access": {"enabled": os.environ.get("FRAUDOPS_ACCESS_LOG", "") == "true"}},
    envs=[{"name": "OMP_NUM_THREADS", "value": "1"}],
)
@bentoml.asgi_app(info_app, path="/")
class FraudService:
    """Scoring API; see the README for every endpoint with an example."""

    def __init__(self) -> None:
        from threadpoolctl import threadpool_limits

        from fraudops.serving.heap import settle_heap, widen_young_generation
        from fraudops.serving.scorer import Scorer

        threadpool_limits(1)  # one OpenMP thread per worker: 2 workers x N threads thrash 2 cores
        client_errors.install()
        # MLflow's client retries a dead registry for minutes by default; the service would
        # rather fall back (bundled model) or keep its model and poll again
        for key, value in _REGISTRY_HTTP_DEFAULTS.items():
            os.environ.setdefault(key, value)
        self.settings = Settings()
        require_safe_exposure(self.settings)  # before any model, state or log is touched
        self.api = spec_api(self.settings.spec)
        if self.settings.gc_young_threshold:
            widen_young_generation(self.settings.gc_young_threshold)
        self.scorer = Scorer.start(
            self.settings, settle=settle_heap if self.settings.freeze_heap else None
        )
        self._openapi: dict[str, Any] | None = None
        self.metrics = _metrics()
        self._cases: Any = None  # the case store, opened by the gauge thread
        self._figures: Any = None  # its FigureReader (reads the label log incrementally)
        self._stop = threading.Event()
        self._refresh_gauges()
        threading.Thread(target=self._gauge_loop, name="gauges", daemon=True).start()

    def _refresh_gauges(self) -> None:
        stats = self.scorer
        if stats.champion is not None:
            self.metrics["version"].set(float(stats.champion.version))
        size = stats.online.size()
        self.metrics["state"].set(size.get("events", size.get("keys", 0)))
        self.metrics["log_buffered"].set(stats.predictions.buffered_rows)
        self.metrics["log_dropped"].set(stats.predictions.dropped_rows)
        self.metrics["log_failures"].set(stats.predictions.failed_writes)
        self.metrics["reload_failures"].set(stats.counters.reload_failures)
        challenger = stats.challenger
        self.metrics["challenger_version"].set(float(challenger.version) if challenger else 0.0)
        for key in CHALLENGER_GAUGES:
            self.metrics[f"challenger_{key}"].set(getattr(stats.challenger_counters, key))
        if stats.cases is not None:
            self.metrics["cases_waiting"].set(stats.cases.pending)

    def _refresh_review(self) -> None:
        from fraudops.cases.figures import FigureReader
        from fraudops.cases.store import CaseStore

        if self._figures is None:
            self._cases = self._cases or CaseStore.open(self.settings.resolved_case_store_url)
            self._figures = FigureReader(self._cases, self.settings.label_log_dir)
        figures = self._figures.read()
        self.metrics["cases_open"].set(figures.queue.open)
        self.metrics["cases_in_review"].set(figures.queue.in_review)
        self.metrics["case_age"].set(figures.queue.oldest_open_hours)
        self.metrics["decided_hour"].set(figures.queue.decided_last_hour)
        self.metrics["agreement_compared"].set(figures.agreement.compared)
        self.metrics["agreement_agreed"].set(figures.agreement.agreed)

    def _gauge_loop(self) -> None:
        review_due = 0.0
        while not self._stop.wait(1.0):
            try:
                self._refresh_gauges()
                if self.settings.open_cases and time.monotonic() >= review_due:
                    review_due = time.monotonic() + REVIEW_FIGURES_SECONDS
                    self._refresh_review()
            except Exception:  # a failed refresh must not freeze every gauge for good
                logger.exception("gauge refresh failed; retrying in 1 s")

    def __is_ready__(self) -> bool:
        return self.scorer.ready and self.scorer.state_ready()

    def _score(
        self, bodies: list[Body], started: float, ctx: bentoml.Context, *, batch: bool
    ) -> list[dict[str, Any]]:
        from fraudops.streaming.clock import EventRefused

        explain = explain_asked(ctx.request.query_params.get("explain"))
        where = "transactions" if batch else ""
        requests = validated(self.api.transaction, bodies, where)
        if not batch:
            requests = requests[:1]
        if not self.scorer.ready:
            raise NotReady(
                tell("no @champion model is loaded yet; train one with `fraudops train`")
            )
        try:
            rows = self.scorer.score(
                [self.api.event(r) for r in requests], started, explain=explain
            )
        except StateUnavailable as exc:
            raise StateDown(tell(f"{exc}; retry later")) from None
        except EventRefused as exc:  # nothing of the request entered the state or the log
            self.metrics["refused"].labels(reason=exc.reason).inc(len(requests))
            where = f"transactions[{exc.index}]." if batch else ""
            raise Refused(
                f"{where}{exc}" + ("; the whole batch is refused" if batch else "")
            ) from None
        alerts = sum(1 for r in rows if r["decision"] == "alert")
        self.metrics["scored"].inc(len(rows))
        if alerts:
            self.metrics["alerts"].inc(alerts)
        return rows

    @bentoml.api(route="/score")
    def score(self, transaction: Body, /, ctx: bentoml.Context) -> dict[str, Any]:
        """Score one transaction: fraud probability, decision, model version, features used,
        reason codes for an alert (for any transaction with ``?explain=true``).

        The body is the dataset spec's request model (``/docs.json``), validated here."""
        started = time.perf_counter()
        return answer(self._score([transaction], started, ctx, batch=False)[0])

    @bentoml.api(route="/score_batch")
    def score_batch(
        self, transactions: Annotated[list[Body], Field(min_length=1)], /, ctx: bentoml.Context
    ) -> list[dict[str, Any]]:
        """Score up to ``FRAUDOPS_MAX_BATCH_ROWS`` transactions, in order (time order expected);
        reason codes for the alerts (for every row with ``?explain=true``)."""
        started = time.perf_counter()
        if len(transactions) > self.settings.max_batch_rows:
            raise BatchTooLarge(
                f"transactions: {len(transactions)} rows, at most {self.settings.max_batch_rows}"
            )
        return answer(self._score(transactions, started, ctx, batch=True))

    @bentoml.api(route="/feedback")
    def feedback(self, labels: Annotated[list[Body], Field(min_length=1)], /) -> FeedbackOut:
        """Confirmed labels, up to ``FRAUDOPS_MAX_FEEDBACK_ROWS``; they count in label-rate
        features once older than the label delay."""
        if len(labels) > self.settings.max_feedback_rows:
            raise BatchTooLarge(
                f"labels: {len(labels)} rows, at most {self.settings.max_feedback_rows}"
            )
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        id_field = self.api.id_field
        rows: list[Any] = validated(self.api.label, labels, "labels")
        records = [
            LabelRecord(
                getattr(row, id_field),
                int(row.is_fraud),
                row.label_time or now,
                external=row.external,
                correction=row.correction,
                source=row.source,
                labelled_by=row.labelled_by,
            )
            for row in rows
        ]
        try:
            applied = self.scorer.feedback(records)
        except StateUnavailable as exc:
            raise StateDown(tell(f"{exc}; no label was logged, retry later")) from None
        except LabelRefused as exc:  # nothing of the request was recorded
            self.metrics["labels_refused"].labels(reason=exc.reason).inc(len(records))
            field = id_field if exc.reason == UNKNOWN else "is_fraud"
            raise Refused(f"labels[{exc.index}].{field}: {exc}") from None
        accepted = applied.held + applied.external
        self.metrics["feedback"].inc(accepted)
        if applied.external:
            self.metrics["external_labels"].inc(applied.external)
        corrections = sum(1 for r in records if r.correction)
        if corrections:
            self.metrics["corrections"].inc(corrections)
        return FeedbackOut(accepted=accepted, external=applied.external)

    @info_app.get("/model")
    def model(self) -> JSONResponse:
        """The served model: version, alias, training window, holdout metrics, load time."""
        return JSONResponse(self.scorer.model_info())

    @info_app.get("/docs", include_in_schema=False)
    def docs(self) -> HTMLResponse:
        """Swagger UI on ``/docs.json``, titled fraudops: BentoML's own page at ``/`` is titled
        "BentoML Prediction Service", hides the API's title and loads Google Tag Manager."""
        return HTMLResponse(SWAGGER_PAGE)

    @info_app.get("/docs.json", include_in_schema=False)
    def openapi_document(self) -> JSONResponse:
        """The OpenAPI document (served instead of BentoML's: mounted routes come first)."""
        if self._openapi is None:  # built once, from BentoML's spec and the dataset spec's
            generated = FraudService.openapi_spec.asdict()  # type: ignore[attr-defined]
            self._openapi = document(generated, self.api)
        return JSONResponse(self._openapi)

    @bentoml.on_shutdown
    def shutdown(self) -> None:
        """Flush the prediction and label logs: nothing scored is lost on a clean stop."""
        self._stop.set()
        self.scorer.close()
        if self._cases is not None:
            self._cases.close()


FraudService.add_asgi_middleware(GuardMiddleware)  # type: ignore[attr-defined]
memoize_io_schemas(FraudService)
