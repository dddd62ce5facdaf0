"""The records the service writes to its logs: one typed row per prediction and per label.

The prediction log's columns derive from the dataset spec and the champion's features
(:func:`prediction_log_columns`); the service builds a :class:`PredictionRecord` per scored
event and the monitoring reads the same names back. Fixed names (``transaction_id``,
``tx_datetime``, ``score``...) are the log's own, whatever the spec calls its id and time
columns, so monitoring reads every spec's log the same way.

No personal data: a PII entity (``pii: true`` in the spec) appears only as
``<entity>_hash``, a keyed hash (:class:`fraudops.logs.predlog.IdHasher`); other entities as
``<entity>`` with their raw value.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fraudops.spec.model import DatasetSpec, Entity

#: The prediction log's event id, event time and score columns (any spec).
LOG_ID, LOG_TIME, LOG_SCORE = "transaction_id", "tx_datetime", "score"
#: The label log's columns (any spec).
LABEL_ID, LABEL_VALUE, LABEL_TIME = "transaction_id", "is_fraud", "label_time"
LABEL_EXTERNAL, LABEL_CORRECTION = "external", "correction"
#: The label log's provenance columns: where a label came from and who gave it.
LABEL_SOURCE, LABEL_BY = "source", "labelled_by"
#: Label sources: a chargeback (or the bank's confirmation) and an analyst's case decision.
CHARGEBACK, ANALYST = "chargeback", "analyst"
LABEL_SOURCES = (CHARGEBACK, ANALYST)
#: Which model decided an event: the champion, or the challenger (a canary's entity).
MODEL_ROLE = "model_role"
CHAMPION_ROLE, CHALLENGER_ROLE = "champion", "challenger"
#: The prediction log's reason codes: JSON ``[[feature, contribution], ...]``, "" when none.
REASON_CODES = "reason_codes"


def entity_log_column(entity: Entity) -> str:
    """``<entity>_hash`` for a PII entity, ``<entity>`` otherwise."""
    return f"{entity.name}_hash" if entity.pii else entity.name


def prediction_log_columns(spec: DatasetSpec, features: Sequence[str]) -> tuple[str, ...]:
    """Every column of a prediction-log row, in order, for a champion with ``features``."""
    return (
        "request_id",
        LOG_ID,
        LOG_TIME,
        *(entity_log_column(e) for e in spec.entities),
        *features,
        LOG_SCORE,
        "decision",
        "model_version",
        MODEL_ROLE,
        "latency_ms",
        "scored_at",
        REASON_CODES,
    )


def logged_entities(
    spec: DatasetSpec, event: Mapping[str, Any], hasher: Callable[[Any], str]
) -> dict[str, Any]:
    """The entity columns of an event's log row (PII ones hashed with ``hasher``)."""
    return {
        entity_log_column(e): hasher(event[e.column]) if e.pii else event[e.column]
        for e in spec.entities
    }


@dataclass(frozen=True, slots=True)
class PredictionRecord:
    """One scored event as the prediction log holds it.

    Attributes:
        request_id: the request's id (32 hex digits), shared by the rows of one batch.
        event_id: the spec's event id (int or str).
        event_time: the event's time, naive UTC.
        entities: :func:`logged_entities` of the event.
        features: the champion's features, name → value.
        score: fraud probability in [0, 1].
        decision: ``alert`` or ``pass``.
        model_version: the registry version that decided (``score`` is its score).
        model_role: :data:`CHAMPION_ROLE`, or :data:`CHALLENGER_ROLE` in a canary.
        latency_ms: time in the service for its request, milliseconds.
        scored_at: when it was scored, naive UTC.
        reasons: the reason codes given, as (feature, contribution in log-odds), largest
            first; empty when none were computed (a pass not asked about).
    """

    request_id: str
    event_id: Hashable
    event_time: dt.datetime
    entities: Mapping[str, Any]
    features: Mapping[str, Any]
    score: float
    decision: str
    model_version: str
    latency_ms: float
    scored_at: dt.datetime
    reasons: tuple[tuple[str, float], ...] = ()
    model_role: str = CHAMPION_ROLE

    def row(self) -> dict[str, Any]:
        """The log row: :func:`prediction_log_columns` → value."""
        return {
            "request_id": self.request_id,
            LOG_ID: self.event_id,
            LOG_TIME: self.event_time,
            **self.entities,
            **self.features,
            LOG_SCORE: self.score,
            "decision": self.decision,
            "model_version": self.model_version,
            MODEL_ROLE: self.model_role,
            "latency_ms": self.latency_ms,
            "scored_at": self.scored_at,
            REASON_CODES: json.dumps([[f, round(v, 6)] for f, v in self.reasons])
            if self.reasons
            else "",
        }


@dataclass(frozen=True, slots=True)
class LabelRecord:
    """One label received at ``/feedback``: the event id, 0/1, when it became known (naive
    UTC), whether it is external (a transaction the service did not score) and whether it
    corrects a confirmed fraud (see :mod:`fraudops.streaming.labels`); its provenance:
    ``source`` (:data:`LABEL_SOURCES`) and ``labelled_by`` (the analyst, or None)."""

    event_id: Hashable
    is_fraud: int
    label_time: dt.datetime
    external: bool = False
    correction: bool = False
    source: str = CHARGEBACK
    labelled_by: str | None = None

    def row(self) -> dict[str, Any]:
        """The label log row (:data:`LABEL_ID`, :data:`LABEL_VALUE`, :data:`LABEL_TIME`,
        :data:`LABEL_EXTERNAL`, :data:`LABEL_CORRECTION`, :data:`LABEL_SOURCE`,
        :data:`LABEL_BY`; the analyst is "" when none)."""
        return {
            LABEL_ID: self.event_id,
            LABEL_VALUE: self.is_fraud,
            LABEL_TIME: self.label_time,
            LABEL_EXTERNAL: self.external,
            LABEL_CORRECTION: self.correction,
            LABEL_SOURCE: self.source,
            LABEL_BY: self.labelled_by or "",
        }


#: The challenger log's columns besides the entities (see :class:`ChallengerRecord`).
CHAMPION_SCORE, CHALLENGER_SCORE = "champion_score", "challenger_score"


@dataclass(frozen=True, slots=True)
class ChallengerRecord:
    """One event scored by both models while a challenger is in shadow or canary: the online
    gate's paired evidence (:mod:`fraudops.model.online_gate`). No personal data, as in the
    prediction log.

    Attributes:
        event_id, event_time, entities: as in :class:`PredictionRecord`.
        stage: ``shadow`` or ``canary``; decided_by: the role whose decision was answered.
        champion_version, champion_score: the champion's version and score in [0, 1].
        challenger_version, challenger_score: the challenger's, and its decision at its own
            threshold (``alert``/``pass``).
        challenger_ms: time the challenger took on the event's batch, milliseconds.
        scored_at: when the challenger scored it, naive UTC.
    """

    event_id: Hashable
    event_time: dt.datetime
    entities: Mapping[str, Any]
    stage: str
    decided_by: str
    champion_version: str
    champion_score: float
    challenger_version: str
    challenger_score: float
    challenger_decision: str
    challenger_ms: float
    scored_at: dt.datetime

    def row(self) -> dict[str, Any]:
        """The challenger log row."""
        return {
            LOG_ID: self.event_id,
            LOG_TIME: self.event_time,
            **self.entities,
            "stage": self.stage,
            "decided_by": self.decided_by,
            "champion_version": self.champion_version,
            CHAMPION_SCORE: self.champion_score,
            "challenger_version": self.challenger_version,
            CHALLENGER_SCORE: self.challenger_score,
            "challenger_decision": self.challenger_decision,
            "challenger_ms": self.challenger_ms,
            "scored_at": self.scored_at,
        }
