"""Scoring core of the service: champion holder, hot reload, online features, logs.

Free of BentoML, so it is testable in-process; ``services/service.py`` exposes it over HTTP.
A request reads the current champion once and finishes on it, even if a reload swaps in a
new one meanwhile (the swap is a single reference assignment). The poller loads and warms a
new ``@champion`` in a background thread before swapping; a failed load keeps the old model.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import operator
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
from mlflow import MlflowClient

from fraudops import registry
from fraudops.cases.intake import CaseIntake
from fraudops.cases.store import CaseStore, NewCase
from fraudops.data.history import load
from fraudops.logs.predlog import IdHasher, LogWriter, load_or_create_key
from fraudops.logs.records import (
    CHALLENGER_ROLE,
    CHAMPION_ROLE,
    LABEL_TIME,
    LOG_TIME,
    LabelRecord,
    PredictionRecord,
    logged_entities,
)
from fraudops.model.explain import Explainer, ReasonCode, Unexplainable
from fraudops.model.fastpredict import fast_estimator
from fraudops.offline.handbook import handbook_spec
from fraudops.registry import stage as stages
from fraudops.registry.card import WINDOW_TAGS, ModelCard, ModelCardError
from fraudops.registry.integrity import IntegrityError, verify
from fraudops.serving.api_models import spec_api
from fraudops.serving.challenger import (
    Challenger,
    ChallengerCounters,
    GuardrailRule,
    Guardrails,
    ShadowJob,
    ShadowWorker,
    records,
    with_stage,
)
from fraudops.serving.heap import SettleAfterSwap
from fraudops.serving.routing import canary_rows, routing_column
from fraudops.settings import Settings
from fraudops.spec import spec_sha256
from fraudops.spec.data import prepare_events
from fraudops.spec.model import DatasetSpec
from fraudops.streaming.clock import naive
from fraudops.streaming.labels import LabelsApplied
from fraudops.streaming.redis_state import RedisOnlineState
from fraudops.streaming.state import OnlineState

logger = logging.getLogger(__name__)

ALERT = "alert"
PASS = "pass"
#: How often (at most) a request checks the canary's guardrails, seconds.
GUARDRAIL_CHECK_SECONDS = 0.2


@dataclass(frozen=True)
class ChampionModel:
    """A loaded registry version with what scoring needs from its tags.

    ``explainer`` gives its reason codes (None with ``explain_error`` saying why: a model kind
    without exact contributions, or reason codes turned off).
    """

    name: str
    version: str
    estimator: Any  # the pipeline's final estimator, or the whole pipeline with categories
    features: tuple[str, ...]
    categorical: bool  # the estimator is the pipeline: it takes a frame (categories encoded)
    threshold: float
    tags: dict[str, str]
    card: ModelCard
    loaded_at: dt.datetime
    load_seconds: float
    explainer: Explainer | None = None
    explain_error: str | None = None

    def inputs(self, rows: list[dict[str, Any]] | pd.DataFrame) -> np.ndarray | pd.DataFrame:
        """The model's input for n feature rows (dicts name → value, or a frame holding at
        least :attr:`features`): an n × m float matrix, or a frame when categories are encoded
        by the pipeline."""
        if isinstance(rows, pd.DataFrame):
            frame = rows[list(self.features)]
            return frame if self.categorical else frame.to_numpy(dtype=np.float64)
        if self.categorical:
            return pd.DataFrame.from_records(rows, columns=list(self.features))
        values = operator.itemgetter(*self.features)  # one C call per row, not m lookups
        return np.array([values(row) for row in rows], dtype=np.float64).reshape(
            len(rows), len(self.features)
        )

    def predict(self, rows: list[dict[str, Any]] | pd.DataFrame) -> np.ndarray:
        """Fraud probabilities (n values in [0, 1]) of n feature rows (see :meth:`inputs`)."""
        return self.predict_inputs(self.inputs(rows))

    def predict_inputs(self, inputs: np.ndarray | pd.DataFrame) -> np.ndarray:
        """Fraud probabilities (n values in [0, 1]) of :meth:`inputs`' output."""
        return np.asarray(self.estimator.predict_proba(inputs)[:, 1], dtype=np.float64)

    @property
    def metrics(self) -> dict[str, float]:
        """Holdout metrics recorded on the version."""
        return self.card.metrics


def load_champion(settings: Settings, client: MlflowClient) -> ChampionModel | None:
    """Load and warm the version ``@champion`` points to (None when there is none)."""
    version = registry.version_by_alias(client, settings.model_name, registry.CHAMPION)
    if version is None:
        return None
    return load_model_version(settings, str(version.version), dict(version.tags))


class ChampionRefused(ValueError):
    """A version the service will not serve; the message says why (spec, features, tags)."""


def servable_card(settings: Settings, version: str, tags: dict[str, str]) -> ModelCard:
    """The version's model card, if this service can serve it (checked before any download).

    Raises:
        ChampionRefused: unreadable tags (a missing or non-finite threshold...), a dataset
            spec other than the service's, or features the service does not compute.
    """
    try:
        card = ModelCard.from_tags(tags)
    except ModelCardError as exc:
        raise ChampionRefused(f"version {version}: {exc}") from None
    ours = spec_sha256(settings.spec)
    theirs = card.spec_sha256 or spec_sha256(handbook_spec(card.label_delay_days))
    if theirs != ours:
        raise ChampionRefused(
            f"version {version} was trained with dataset spec {card.spec_name!r} "
            f"(sha256 {theirs[:12]}, label delay {card.label_delay_days} d); this service runs "
            f"{settings.spec.name!r} ({ours[:12]}, label delay {settings.label_delay_days} d)"
        )
    unknown = sorted(set(card.features) - set(settings.spec.feature_names()))
    if unknown:
        raise ChampionRefused(f"version {version} needs features the service lacks: {unknown}")
    return card


def load_model_version(settings: Settings, version: str, tags: dict[str, str]) -> ChampionModel:
    """Check the version's card (:func:`servable_card`), load its pipeline, warm it.

    Raises:
        ChampionRefused: see :func:`servable_card` (then nothing is downloaded), or the
            model's files or card do not verify (:func:`fraudops.registry.load_verified`:
            nothing is unpickled).
    """
    began = time.perf_counter()
    servable_card(settings, version, tags)
    try:
        pipeline = registry.load_verified(settings, version, tags)
    except IntegrityError as exc:
        raise ChampionRefused(str(exc)) from None
    return _champion(settings, version, tags, pipeline, began)


def load_bundled_model(settings: Settings) -> ChampionModel:
    """The registry version bundled in a bento (``settings.bundled_model``, a BentoML model tag).

    ``fraudops build-bento`` imports the version with its registry tags as metadata, so the
    bundled model scores exactly like the registry's.

    Raises:
        ValueError: no bundled model is configured.
        ChampionRefused: its card is not servable, or its files or card do not verify
            against the registry tags it was bundled with (nothing is unpickled).
        bentoml.exceptions.NotFound: the tag is not in the BentoML model store.
    """
    import bentoml
    import mlflow.sklearn

    if not settings.bundled_model:
        raise ValueError("FRAUDOPS_BUNDLED_MODEL is not set")
    began = time.perf_counter()
    stored = bentoml.models.get(settings.bundled_model)
    tags = {str(k): str(v) for k, v in stored.info.metadata.items()}
    if "registry_version" not in tags:
        raise ValueError(f"{settings.bundled_model} was not made by `fraudops build-bento`")
    version, local = tags["registry_version"], Path(stored.path_of("mlflow_model"))
    servable_card(settings, version, tags)
    try:
        verify(settings.model_name, version, local, tags, settings.signing_key)
    except IntegrityError as exc:
        raise ChampionRefused(f"bundled model {settings.bundled_model}: {exc}") from None
    pipeline = mlflow.sklearn.load_model(str(local))
    return _champion(settings, version, tags, pipeline, began)


def _champion(
    settings: Settings, version: str, tags: dict[str, str], pipeline: Any, began: float
) -> ChampionModel:
    card = servable_card(settings, version, tags)
    features = card.features
    categorical = bool(set(features) & set(settings.spec.categorical_features()))
    explainer: Explainer | None = None
    explain_error: str | None = "reason codes are off (FRAUDOPS_REASON_CODES=0)"
    if settings.reason_codes:
        try:
            explainer = Explainer(pipeline, features, settings.spec, card.feature_means)
            explain_error = None
        except Unexplainable as exc:
            explain_error = str(exc)
            logger.warning("version %s gives no reason codes: %s", version, exc)
    model = ChampionModel(
        name=settings.model_name,
        version=version,
        estimator=pipeline if categorical else fast_estimator(pipeline.named_steps["model"]),
        features=features,
        categorical=categorical,
        threshold=card.threshold,
        tags=tags,
        card=card,
        loaded_at=dt.datetime.now(dt.UTC),
        load_seconds=0.0,
        explainer=explainer,
        explain_error=explain_error,
    )
    blank = [_blank_row(settings.spec, features)]
    model.predict(blank)  # warm: first calls allocate
    if explainer is not None:
        explainer.reasons(model.inputs(blank), blank, 1)
    return ChampionModel(**{**model.__dict__, "load_seconds": time.perf_counter() - began})


def _blank_row(spec: DatasetSpec, features: tuple[str, ...]) -> dict[str, Any]:
    categories = set(spec.categorical_features())
    return {f: "other" if f in categories else 0.0 for f in features}


class OnlineStore(Protocol):
    """What the scorer needs of an online state (in process, or in Redis)."""

    def observe_many(self, events: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]: ...
    def apply_labels(self, labels: Sequence[LabelRecord]) -> LabelsApplied: ...
    def warm_up(self, history: pd.DataFrame) -> int: ...
    def intact(self) -> bool: ...
    def size(self) -> dict[str, int]: ...


def make_online(settings: Settings) -> OnlineStore:
    """The online state of the settings' spec: in this process, or in Redis (shared by
    replicas) when ``feature_store`` is a ``redis://`` URL; both compute the same features."""
    spec, skew = settings.spec, settings.max_event_skew_seconds
    if settings.feature_store.startswith(("redis://", "rediss://", "unix://")):
        return RedisOnlineState(spec, settings.feature_store, skew)
    return OnlineState(spec, skew)


def history_for_warm_up(settings: Settings) -> pd.DataFrame:
    """The last ``spec.longest_reach()`` seconds of the configured history (up to
    ``online_history_end``), read and checked as training reads it.

    Returns:
        Labelled events × the spec's columns (:func:`prepare_events`); empty if none.
    """
    spec = settings.spec
    history = prepare_events(load(settings), spec, require_label=True)
    times = history[spec.event_time.column]
    end = (
        pd.Timestamp(settings.online_history_end) + pd.Timedelta(days=1)
        if settings.online_history_end
        else times.max() + pd.Timedelta(seconds=1)
    )
    start = end - pd.Timedelta(seconds=spec.longest_reach())
    return history[(times >= start) & (times < end)]


@dataclass
class Counters:
    """Champion reloads of this process (the service exports the failures to ``/metrics``)."""

    reloads: int = 0
    reload_failures: int = 0
    last_reload_error: str | None = None


def _case_intake(settings: Settings) -> CaseIntake:
    """The intake of alerts into cases, its store opened (and migrated) here, in the starting
    thread: migrations must not run in a background thread beside MLflow's own (Alembic's
    environment is module-global). A store that cannot be opened now is opened by the
    intake's thread later."""
    url = settings.resolved_case_store_url
    try:
        store = CaseStore.open(url)
    except Exception as exc:  # the service scores without it; alerts wait in memory
        logger.warning("case store not reachable at start (%s); alerts wait for it", exc)
        return CaseIntake(functools.partial(CaseStore.open, url))
    return CaseIntake(lambda: store)


@dataclass(frozen=True)
class CanaryAnswer:
    """The challenger's answer for the routed events of one request.

    Attributes:
        model: the challenger's loaded version.
        routed: n booleans, the events it decides for.
        scores: n scores, the challenger's at the routed positions (others unused).
        took_ms: its scoring time, milliseconds.
    """

    model: ChampionModel
    routed: np.ndarray
    scores: np.ndarray
    took_ms: float

    def reasons(
        self, scorer: Scorer, rows: list[dict[str, Any]], explain: bool
    ) -> dict[int, tuple[ReasonCode, ...]]:
        """The challenger's reason codes of its routed events, by row index of the request."""
        where = np.flatnonzero(self.routed)
        mine = [rows[i] for i in where]
        codes = scorer._reasons(
            self.model, self.model.inputs(mine), mine, self.scores[where], explain
        )
        return {int(where[k]): v for k, v in codes.items()}


class Scorer:
    """Everything one service process needs to answer requests.

    Create with :meth:`start`; call :meth:`close` on shutdown (flushes the logs).
    """

    def __init__(
        self,
        settings: Settings,
        online: OnlineStore,
        champion: ChampionModel | None,
        predictions: LogWriter,
        labels: LogWriter,
        hasher: IdHasher,
        cases: CaseIntake | None = None,
        challenger_log: LogWriter | None = None,
    ) -> None:
        self.settings = settings
        self.cases = cases
        self.online = online
        self.champion = champion
        self.predictions = predictions
        self.labels = labels
        self.hasher = hasher
        self.counters = Counters()
        self.warmed_rows = 0
        self.api = spec_api(settings.spec)
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None
        # the challenger: scored beside the champion while it is in shadow or canary
        self.challenger: Challenger | None = None
        self.challenger_log = challenger_log
        self.challenger_counters = ChallengerCounters()
        self.shadow = (
            None
            if challenger_log is None
            else ShadowWorker(challenger_log.append_many, self.challenger_counters)
        )
        self.guardrail_rule = GuardrailRule(
            min_requests=settings.guardrail_min_requests,
            alert_rate_ratio=settings.guardrail_alert_rate_ratio,
            alert_budget=settings.alert_rate,
            error_rate=settings.guardrail_error_rate,
            p99_ratio=settings.guardrail_p99_ratio,
        )
        self.guardrails = Guardrails(self.guardrail_rule)
        self._routing_column = routing_column(settings.spec)
        self._guard_checked = 0.0
        self._stopped: tuple[str, dt.datetime] | None = None  # (version, stage start) rolled back
        self._rollback_pending: tuple[str, str] | None = None  # (version, reason) to record
        self._challenger_lock = threading.Lock()

    @classmethod
    def start(
        cls,
        settings: Settings,
        *,
        warm_up: bool = True,
        poll: bool = True,
        settle: Callable[[], object] | None = None,
    ) -> Scorer:
        """Load the champion, build the online state from history, start the log writers.

        Args:
            settle: called once all is loaded, and at the poll after each model swap
                (:func:`fraudops.serving.heap.settle_heap` in the service process).
        """
        online = make_online(settings)
        champion = cls._first_champion(settings)
        home = settings.ensure_home()
        scorer = cls(
            settings,
            online,
            champion,
            LogWriter(
                settings.prediction_log_dir,
                LOG_TIME,
                flush_seconds=settings.log_flush_seconds,
                max_buffered_rows=settings.log_max_buffered_rows,
            ),
            LogWriter(settings.label_log_dir, LABEL_TIME, flush_seconds=settings.log_flush_seconds),
            IdHasher(
                settings.hash_secret.get_secret_value().encode()
                if settings.hash_secret
                else load_or_create_key(home / "secrets" / "id-hash.key")
            ),
            cases=_case_intake(settings) if settings.open_cases else None,
            # evidence, not decisions (those are in the journaled prediction log): no journal
            challenger_log=LogWriter(
                settings.challenger_log_dir,
                LOG_TIME,
                flush_seconds=settings.log_flush_seconds,
                max_buffered_rows=settings.log_max_buffered_rows,
                journal=False,
            ),
        )
        scorer.poll_challenger()
        if champion is None:
            logger.warning(
                "no @champion of %s in the registry yet: waiting for one (checked every %s s); "
                "/score answers 503 until then",
                settings.model_name,
                settings.poll_interval_seconds,
            )
        if warm_up:
            scorer.warmed_rows = online.warm_up(history_for_warm_up(settings))
        if settle is not None:
            settle()
        if poll:
            scorer.start_polling(settle)
        return scorer

    @staticmethod
    def _first_champion(settings: Settings) -> ChampionModel | None:
        """The registry's ``@champion``; the bundled model when there is none or no registry."""
        try:
            registry.configure_mlflow(settings)
            champion = load_champion(settings, registry.client_for(settings))
        except Exception as exc:
            if not settings.bundled_model:
                raise
            logger.warning(
                "@champion not loaded from the registry (%s); serving the bundled model", exc
            )
            champion = None
        if champion is None and settings.bundled_model:
            champion = load_bundled_model(settings)
        return champion

    @property
    def ready(self) -> bool:
        """A champion is loaded (checked on every request: no I/O)."""
        return self.champion is not None

    def state_ready(self) -> bool:
        """The online state's store answers and holds what warm-up loaded (``/readyz``; one
        Redis round trip with the Redis store): a flushed or unreachable Redis is not ready,
        rather than serving features computed from nothing."""
        return self.online.intact()  # no lock: a probe must not wait behind requests

    def score(
        self,
        events: Sequence[Mapping[str, Any]],
        started: float | None = None,
        *,
        explain: bool = False,
    ) -> list[dict[str, Any]]:
        """Score events in order: features from the online state, champion, decision, reason
        codes of the alerts, log.

        Args:
            events: the spec's raw columns per event (:meth:`SpecApi.event`), time order.
            explain: reason codes for every event, not only the alerts.

        Returns:
            One dict per event, the fields of the spec's ``ScoreOut`` (:func:`spec_api`).

        Raises:
            RuntimeError: no champion is loaded yet.
            EventRefused: an event breaks the online clock's rule (too far ahead of the
                watermark or older than the retention) or reuses an event id the state holds
                with other values (not a retry); nothing of the request entered the state or
                the log.
        """
        started = time.perf_counter() if started is None else started
        model = self.champion  # read once: a concurrent reload does not affect this request
        challenger = self.challenger  # likewise
        if model is None:
            raise RuntimeError("no @champion model is loaded yet")
        rows = self.online.observe_many(events)
        inputs = model.inputs(rows)
        scores = model.predict_inputs(inputs)
        routed, canary = self._canary(challenger, events, rows)
        reasons = self._reasons(model, inputs, rows, scores, explain, keep=~routed)
        if canary is not None:
            reasons.update(canary.reasons(self, rows, explain))
        latency_ms = (time.perf_counter() - started) * 1000
        request_id = uuid.uuid4().hex
        scored_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        spec, id_field = self.settings.spec, self.api.id_field
        id_column, time_column = spec.event_id.column, spec.event_time.column
        out, logged, alerts, entities = [], [], [], []
        for i, (event, features) in enumerate(zip(events, rows, strict=True)):
            decider = model if canary is None or not routed[i] else canary.model
            score = scores[i] if decider is model else canary.scores[i]  # type: ignore[union-attr]
            role = CHAMPION_ROLE if decider is model else CHALLENGER_ROLE
            decision = ALERT if score >= decider.threshold else PASS
            codes = reasons.get(i)
            out.append(
                {
                    id_field: event[id_column],
                    "fraud_probability": float(score),
                    "decision": decision,
                    "threshold": decider.threshold,
                    "model_name": decider.name,
                    "model_version": decider.version,
                    "model_role": role,
                    "features": features,
                    "reasons": None if codes is None else [code.as_dict() for code in codes],
                    "latency_ms": latency_ms,
                }
            )
            record = PredictionRecord(
                request_id=request_id,
                event_id=event[id_column],
                event_time=naive(event[time_column]),
                entities=logged_entities(spec, event, self.hasher),
                features=features,
                score=float(score),
                decision=decision,
                model_version=decider.version,
                latency_ms=latency_ms,
                scored_at=scored_at,
                reasons=tuple((code.feature, code.contribution) for code in codes or ()),
                model_role=role,
            )
            logged.append(record.row())
            entities.append((record.event_id, record.event_time, record.entities))
            if decision == ALERT and self.cases is not None:
                alerts.append(self._new_case(event, record, codes or (), decider.threshold))
        self.predictions.append_many(logged)  # journaled before the response is sent
        if alerts:
            self.cases.submit(alerts)  # type: ignore[union-attr]
        if challenger is not None:
            self._beside(challenger, model, rows, scores, entities, routed, canary, out, latency_ms)
        return out

    def _canary(
        self,
        challenger: Challenger | None,
        events: Sequence[Mapping[str, Any]],
        rows: list[dict[str, Any]],
    ) -> tuple[np.ndarray, CanaryAnswer | None]:
        """(the events a canary decides for, its answer); a failing canary routes none (the
        champion answers, the failure is counted)."""
        none = np.zeros(len(rows), dtype=bool)
        if challenger is None or challenger.stage.stage != stages.CANARY:
            return none, None
        routed = canary_rows(
            events, self._routing_column, challenger.stage.share, challenger.version
        )
        if not routed.any():
            return none, None
        began = time.perf_counter()
        scores = np.zeros(len(rows), dtype=np.float64)
        try:
            scores[routed] = challenger.model.predict([rows[i] for i in np.flatnonzero(routed)])
        except Exception as exc:
            self.guardrails.attempted(int(routed.sum()), failed=True)
            self.challenger_counters.failures += int(routed.sum())
            self.challenger_counters.last_error = f"{type(exc).__name__}: {exc}"
            logger.warning("canary failed, the champion answers: %s", exc)
            return none, None
        self.guardrails.attempted(int(routed.sum()), failed=False)
        took = (time.perf_counter() - began) * 1000
        return routed, CanaryAnswer(challenger.model, routed, scores, took)

    def _beside(
        self,
        challenger: Challenger,
        champion: ChampionModel,
        rows: list[dict[str, Any]],
        scores: np.ndarray,
        entities: list[tuple[Any, dt.datetime, Mapping[str, Any]]],
        routed: np.ndarray,
        canary: CanaryAnswer | None,
        out: list[dict[str, Any]],
        latency_ms: float,
    ) -> None:
        """The challenger's part after the answer: the canary's evidence written, the rest
        queued for shadow scoring, the guardrails fed and checked."""
        if self.shadow is None or self.challenger_log is None:
            return
        rest = np.flatnonzero(~routed)
        if len(rest):
            self.shadow.submit(
                ShadowJob(
                    challenger,
                    champion.version,
                    [rows[i] for i in rest],
                    scores[rest],
                    [entities[i] for i in rest],
                )
            )
        if challenger.stage.stage != stages.CANARY:
            return
        if canary is not None:
            where = np.flatnonzero(routed)
            job = ShadowJob(
                challenger,
                champion.version,
                [rows[i] for i in where],
                scores[where],
                [entities[i] for i in where],
                decided_by=CHALLENGER_ROLE,
            )
            self.challenger_counters.scored += len(where)
            self.challenger_counters.decided += len(where)
            self.challenger_log.append_many(records(job, canary.scores[where], canary.took_ms))
            answered = sum(1 for i in where if out[i]["decision"] == ALERT)
            self.guardrails.observe(CHALLENGER_ROLE, len(where), answered, latency_ms)
        if len(rest):
            answered = sum(1 for i in rest if out[i]["decision"] == ALERT)
            self.guardrails.observe(CHAMPION_ROLE, len(rest), answered, latency_ms)
        now = time.monotonic()
        if now - self._guard_checked >= GUARDRAIL_CHECK_SECONDS:
            self._guard_checked = now
            breach = self.guardrails.breach()
            if breach is not None:
                self.roll_back(challenger, f"guardrail: {breach}")

    def roll_back(self, challenger: Challenger, reason: str) -> None:
        """Stop the canary now in this process; record the rollback in the registry from a
        background thread (other replicas follow at their next poll)."""
        with self._challenger_lock:
            if self.challenger is None or self.challenger.version != challenger.version:
                return  # another request stopped it first
            self.challenger = None
            self._stopped = (challenger.version, challenger.stage.since)
            self._rollback_pending = (challenger.version, reason)
            self.challenger_counters.rollbacks += 1
        logger.error("canary v%s rolled back: %s", challenger.version, reason)
        threading.Thread(target=self._record_rollback, name="rollback", daemon=True).start()

    def _record_rollback(self) -> None:
        """Write a pending rollback to the registry; kept pending (retried at the next poll)
        when the registry cannot be reached."""
        pending = self._rollback_pending
        if pending is None:
            return
        version, reason = pending
        try:
            client = registry.client_for(self.settings)
            stages.conclude(
                client, self.settings.model_name, version, stages.ROLLED_BACK, reason=reason
            )
        except stages.StageError:
            pass  # no longer live: someone concluded it meanwhile
        except Exception as exc:
            logger.error(
                "rollback of v%s not recorded yet (%s); retried at next poll", version, exc
            )
            return
        self._rollback_pending = None

    def poll_challenger(self) -> None:
        """Follow ``@challenger``: load a version that entered shadow or canary (verified as a
        champion is), follow its stage (a mode change needs no reload), drop it when its
        stage ends. A failure is counted; the champion is never affected."""
        try:
            if self._rollback_pending is not None:
                self._record_rollback()
            client = registry.client_for(self.settings)
            found = registry.version_by_alias(client, self.settings.model_name, registry.CHALLENGER)
            stage = None if found is None else stages.Stage.from_tags(dict(found.tags))
            champion = self.champion
            if (
                found is None
                or stage is None
                or not stage.live
                or (str(found.version), stage.since) == self._stopped
                or (champion is not None and str(found.version) == champion.version)
            ):
                if self.challenger is not None:
                    logger.info(
                        "challenger v%s no longer in shadow or canary", self.challenger.version
                    )
                self.challenger = None
                return
            current = self.challenger
            if current is not None and current.version == str(found.version):
                if current.stage != stage:
                    self.challenger = with_stage(current, stage)
                return
            model = load_model_version(self.settings, str(found.version), dict(found.tags))
        except Exception as exc:
            self.challenger_counters.load_failures += 1
            self.challenger_counters.last_error = f"{type(exc).__name__}: {exc}"
            logger.error("challenger not loaded: %s", exc)
            return
        self.guardrails = Guardrails(self.guardrail_rule)
        self.challenger = Challenger(model, stage)
        logger.info("challenger v%s in %s", model.version, stage.stage)

    def _new_case(
        self,
        event: Mapping[str, Any],
        record: PredictionRecord,
        codes: Sequence[ReasonCode],
        threshold: float,
    ) -> NewCase:
        """The case an alert opens: the log record's figures, the entities in clear."""
        return NewCase(
            event_id=record.event_id,
            event_time=record.event_time,
            score=record.score,
            threshold=threshold,
            model_version=record.model_version,
            reasons=tuple((c.feature, c.contribution, c.phrase) for c in codes),
            entities={e.name: event[e.column] for e in self.settings.spec.entities},
            entity_hashes=dict(record.entities),
        )

    def _reasons(
        self,
        model: ChampionModel,
        inputs: np.ndarray | pd.DataFrame,
        rows: list[dict[str, Any]],
        scores: np.ndarray,
        explain: bool,
        keep: np.ndarray | None = None,
    ) -> dict[int, tuple[ReasonCode, ...]]:
        """Reason codes by row index: of the alerts, or of every row with ``explain`` (only
        rows where ``keep``, when given); none when the model has no explainer."""
        if model.explainer is None:
            return {}
        chosen = np.arange(len(rows)) if explain else np.flatnonzero(scores >= model.threshold)
        if keep is not None:
            chosen = chosen[keep[chosen]]
        if not len(chosen):
            return {}
        codes = model.explainer.reasons(
            inputs.iloc[chosen] if isinstance(inputs, pd.DataFrame) else inputs[chosen],
            [rows[i] for i in chosen],
            self.settings.reason_codes,
        )
        return dict(zip(chosen.tolist(), codes, strict=True))

    def feedback(self, labels: Sequence[LabelRecord]) -> LabelsApplied:
        """Check labels by the rules of :mod:`fraudops.streaming.labels`, record them in the
        online state, then in the label log (external ones there only).

        Raises:
            LabelRefused: an unknown id not flagged external, or a fraud downgraded without
                ``correction``; nothing is recorded in the state or the log.
            StateUnavailable: the state's store cannot be reached; nothing is logged.
        """
        applied = self.online.apply_labels(labels)
        self.labels.append_many([label.row() for label in labels])
        return applied

    def challenger_info(self) -> dict[str, Any] | None:
        """The challenger in shadow or canary (version, stage, share, since), or None."""
        challenger = self.challenger
        if challenger is None:
            return None
        return {
            "version": challenger.version,
            "stage": challenger.stage.stage,
            "share": challenger.stage.share,
            "since": challenger.stage.since.isoformat(),
            "champion_version": challenger.stage.champion_version,
        }

    def model_info(self) -> dict[str, Any]:
        model = self.champion
        if model is None:
            return {
                "model_name": self.settings.model_name,
                "alias": registry.CHAMPION,
                "version": None,
                "challenger": self.challenger_info(),
            }
        return {
            "model_name": model.name,
            "alias": registry.CHAMPION,
            "version": model.version,
            "model_kind": model.card.model_kind or None,
            "training_window": {k: model.card.windows.get(k) for k in WINDOW_TAGS},
            "threshold": model.threshold,
            "metrics": model.metrics,
            "features": list(model.features),
            "spec_name": model.card.spec_name,
            "reason_codes": model.explain_error or f"top {self.settings.reason_codes} for alerts",
            "last_reload_error": self.counters.last_reload_error,
            "loaded_at": model.loaded_at.isoformat(),
            "load_seconds": round(model.load_seconds, 4),
            "challenger": self.challenger_info(),
        }

    def poll_once(self) -> bool:
        """Swap in the registry's ``@champion`` if it moved (True if a new model was swapped
        in), then follow ``@challenger`` (:meth:`poll_challenger`).

        A failure (registry down, broken model) keeps the current model and is logged.
        """
        swapped = self._poll_champion()
        self.poll_challenger()
        return swapped

    def _poll_champion(self) -> bool:
        try:
            client = registry.client_for(self.settings)
            version = registry.version_by_alias(client, self.settings.model_name, registry.CHAMPION)
            if version is None or (self.champion and str(version.version) == self.champion.version):
                return False
            fresh = load_model_version(self.settings, str(version.version), dict(version.tags))
        except Exception as exc:
            self.counters.reload_failures += 1
            self.counters.last_reload_error = f"{type(exc).__name__}: {exc}"
            logger.error("champion reload failed, keeping the current model: %s", exc)
            return False
        old = self.champion
        self.champion = fresh
        self.counters.reloads += 1
        logger.info("champion %s -> %s", old.version if old else None, fresh.version)
        return True

    def loaded_models(self) -> tuple[int, int]:
        """Identity of the champion and challenger objects loaded now (changes on a swap)."""
        challenger = self.challenger
        return id(self.champion), id(None if challenger is None else challenger.model)

    def start_polling(self, settle: Callable[[], object] | None = None) -> None:
        """Poll the registry every ``poll_interval_seconds`` in a thread; with ``settle``
        (:func:`fraudops.serving.heap.settle_heap`), call it at the poll after a model swap."""
        after_swap = None if settle is None else SettleAfterSwap(settle, self.loaded_models())

        def loop() -> None:
            while not self._stop.wait(self.settings.poll_interval_seconds):
                if after_swap is not None:
                    after_swap.before_poll()
                self.poll_once()
                if after_swap is not None:
                    after_swap.after_poll(self.loaded_models())

        self._poller = threading.Thread(target=loop, name="champion-poller", daemon=True)
        self._poller.start()

    def close(self) -> None:
        """Stop polling and flush both logs (nothing queued is lost on a clean stop)."""
        self._stop.set()
        self.predictions.close()
        self.labels.close()
        if self.shadow is not None:
            self.shadow.close()
        if self.challenger_log is not None:
            self.challenger_log.close()
        if self.cases is not None:
            self.cases.close()
