"""Request and response models of the scoring API, derived from the one contract.

JSON field names are the contract's raw column names in lower case (``TX_AMOUNT`` →
``tx_amount``); a test checks that they stay in step with :data:`contract.RAW_COLUMNS`.

Input is validated at the edge, so that nothing a client sends can fail later (a 500, a log
write that fails forever, an online state emptied by one request): ids fit the contract's
int64, amounts are finite and at most :data:`contract.MAX_AMOUNT`, and times are made naive
UTC (as the training data is) and must lie between :data:`EARLIEST_TIME` and one day from now
(:data:`FUTURE_SLACK`). The online state then checks the time against its own clock (the
watermark, see :mod:`fraudops.streaming.clock`): one too far ahead of it, or older than its
retention, gets a 422 naming ``tx_datetime`` from the service, so no request can move the
state's expiry.

Types are strict: JSON values are not converted from one type to another (pydantic's lax mode
would read ``false`` as the id 0 and ``"123"`` as 123). BentoML validates a request with
``model_validate`` on the body ``json.loads`` parsed (Python mode), so each rule is a validator
that sees the parsed value:

- ids: a JSON integer. A whole number written with a fraction or an exponent (``7.0``,
  ``1e3``) is read as that integer up to 2**53, where a float still holds it exactly; a
  boolean, a string (``"123"``), a fraction (``1.5``) or null is refused.
- ``tx_amount``: a JSON number (integer or not); a string (``"12.5"``) or a boolean is refused.
- ``is_fraud``: ``true`` or ``false``, or the integers ``0`` and ``1`` (the label store's and
  the training data's own encoding, ``TX_FRAUD``); any other number, a string or null is refused.
- times: an ISO 8601 date and time string, ``YYYY-MM-DDTHH:MM[:SS[.ffffff]]`` with an optional
  ``Z`` or ``±HH:MM`` offset (a space may stand for the ``T``); a number (Unix time), a date
  alone or a string of digits is refused.

Every refusal is a 422 whose message names the field (see :mod:`services.openapi`).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    StrictBool,
    WithJsonSchema,
    create_model,
)
from pydantic_core import PydanticCustomError

from fraudops.data import contract as c
from fraudops.logs.records import LABEL_SOURCES
from fraudops.spec import format_duration, spec_sha256
from fraudops.spec.model import DatasetSpec, Numeric, api_field

#: Bounds of the contract's int64 ids.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_AMOUNT = c.MAX_AMOUNT  # the contract's bound (exact window sums)
#: Earliest transaction or label time accepted (naive UTC).
EARLIEST_TIME = dt.datetime(1970, 1, 1)
#: How far past the server's clock a transaction or label time may be (clock skew).
FUTURE_SLACK = dt.timedelta(days=1)
#: Largest whole number a JSON float holds exactly: an id written ``7.0`` is read up to this.
EXACT_FLOAT_INT = 2**53
#: The start of an ISO 8601 date and time: ``YYYY-MM-DDTHH:MM`` (``T``, ``t`` or a space).
ISO_DATE_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}")


def _json_kind(value: object) -> str:
    """What a parsed JSON value is, for error messages (a string is shown, cut at 40)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return f"the string {value[:40]!r}"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, int | float):
        return "a number"
    return type(value).__name__


def _strict_id(value: Any) -> Any:
    """A JSON integer (or a whole number up to 2**53) as an int; anything else is refused."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        if abs(value) > EXACT_FLOAT_INT:
            raise PydanticCustomError(
                "int_type",
                "Input should be an integer written without a fraction or exponent: a float "
                "past 2**53 does not hold every digit",
            )
        return int(value)
    kind = "a fraction" if isinstance(value, float) else _json_kind(value)
    raise PydanticCustomError(
        "int_type", "Input should be a JSON integer, not {kind}", {"kind": kind}
    )


def _strict_number(value: Any) -> Any:
    """A JSON number (int or float), unchanged; a string, boolean or other value is refused."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    raise PydanticCustomError(
        "float_type", "Input should be a JSON number, not {kind}", {"kind": _json_kind(value)}
    )


def _strict_label(value: Any) -> Any:
    """``true``/``false``, or the integers 0 and 1 (the label store's encoding) as a bool."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    shown = repr(value)[:40] if isinstance(value, int | float) else _json_kind(value)
    raise PydanticCustomError(
        "bool_type", "Input should be true or false (or 0 or 1), not {kind}", {"kind": shown}
    )


def _iso_date_time(value: Any) -> Any:
    """An ISO 8601 date-and-time string (or a datetime, from Python), unchanged; else refused."""
    if isinstance(value, dt.datetime) or (isinstance(value, str) and ISO_DATE_TIME.match(value)):
        return value
    raise PydanticCustomError(
        "datetime_type",
        "Input should be an ISO 8601 date and time string such as 2018-10-01T10:15:00, not {kind}",
        {"kind": _json_kind(value)},
    )


def _naive_utc_in_range(value: dt.datetime) -> dt.datetime:
    """``value`` as naive UTC; ValueError (a 422 naming the field) when out of range."""
    if value.tzinfo is not None:
        try:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        except (OverflowError, ValueError):
            raise ValueError("must lie between 1970-01-01 and one day from now (UTC)") from None
    latest = dt.datetime.now(dt.UTC).replace(tzinfo=None) + FUTURE_SLACK
    if not EARLIEST_TIME <= value <= latest:
        raise ValueError(
            f"must lie between 1970-01-01 and one day from now (UTC), got {value.isoformat()}"
        )
    return value


Id = Annotated[int, Field(strict=True, ge=INT64_MIN, le=INT64_MAX), BeforeValidator(_strict_id)]
Amount = Annotated[
    float,
    Field(strict=True, ge=0, le=MAX_AMOUNT, allow_inf_nan=False),
    BeforeValidator(_strict_number),
]
Label = Annotated[
    bool,
    Field(strict=True),
    BeforeValidator(_strict_label),
    WithJsonSchema({"anyOf": [{"type": "boolean"}, {"type": "integer", "enum": [0, 1]}]}),
]
Time = Annotated[dt.datetime, BeforeValidator(_iso_date_time), AfterValidator(_naive_utc_in_range)]

#: Longest text id, entity key or category accepted (characters).
MAX_TEXT = 256


def _strict_text(value: Any) -> Any:
    """A JSON string, unchanged; a number, boolean or other value is refused."""
    if isinstance(value, str):
        return value
    raise PydanticCustomError(
        "string_type", "Input should be a JSON string, not {kind}", {"kind": _json_kind(value)}
    )


def _category(value: Any) -> Any:
    """A JSON string, or an integer code read as its text (as the training data reads it)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return _strict_text(value)


Text = Annotated[
    str, Field(strict=True, min_length=1, max_length=MAX_TEXT), BeforeValidator(_strict_text)
]
Category = Annotated[
    str,
    Field(strict=True, max_length=MAX_TEXT),
    BeforeValidator(_category),
    WithJsonSchema({"anyOf": [{"type": "string", "maxLength": MAX_TEXT}, {"type": "integer"}]}),
]

EXAMPLE_TIME = "2018-10-01T10:15:00"
EXAMPLE_TRANSACTION: dict[str, JsonValue] = {
    "transaction_id": 1754155,
    "tx_datetime": EXAMPLE_TIME,
    "customer_id": 1234,
    "terminal_id": 5678,
    "tx_amount": 57.16,
}


def _key_type(kind: str) -> Any:
    return Id if kind == "int" else Text


def _number(numeric: Numeric) -> Any:
    """A strict, finite JSON number within the column's bounds (and the exact sums' bound)."""
    upper = MAX_AMOUNT if numeric.max is None else min(numeric.max, MAX_AMOUNT)
    lower = -MAX_AMOUNT if numeric.min is None else max(numeric.min, -MAX_AMOUNT)
    return Annotated[
        float,
        Field(strict=True, ge=lower, le=upper, allow_inf_nan=False),
        BeforeValidator(_strict_number),
    ]


def _steps(spec: DatasetSpec) -> Any:
    """A step index (JSON number >= 0) read as its time: origin + steps × unit, naive UTC."""
    origin = dt.datetime.fromisoformat(spec.event_time.origin)
    unit = dt.timedelta(seconds=spec.event_time.unit or 1)

    def to_time(value: Any) -> Any:
        steps = _strict_number(value)
        if not 0 <= steps <= 2**40 or steps != steps:
            raise PydanticCustomError("float_type", "Input should be a step index >= 0")
        return origin + unit * steps

    return Annotated[
        dt.datetime,
        BeforeValidator(to_time),
        AfterValidator(_naive_utc_in_range),
        WithJsonSchema({"type": "number", "minimum": 0}),
    ]


def _example(spec: DatasetSpec) -> dict[str, JsonValue]:
    """A request example of ``spec``: the handbook's own, or one built from the roles."""
    example: dict[str, JsonValue] = {
        api_field(spec.event_id.column): 1754155 if spec.event_id.type == "int" else "tx-1754155"
    }
    example[api_field(spec.event_time.column)] = 0 if spec.event_time.unit else EXAMPLE_TIME
    for i, entity in enumerate(spec.entities):
        example[api_field(entity.column)] = (
            1234 + i if entity.type == "int" else f"{entity.name}-{1234 + i}"
        )
    for numeric in spec.numeric:
        low = numeric.min if numeric.min is not None else 0.0
        high = numeric.max if numeric.max is not None else MAX_AMOUNT
        example[api_field(numeric.column)] = min(max(57.16, low), high)
    for categorical in spec.categorical:
        example[api_field(categorical.column)] = "example"
    names = list(example)
    return EXAMPLE_TRANSACTION if set(names) == set(EXAMPLE_TRANSACTION) else example


def _transaction_model(spec: DatasetSpec) -> type[BaseModel]:
    fields: dict[str, Any] = {}
    event_id = spec.event_id.column
    fields[api_field(event_id)] = (
        _key_type(spec.event_id.type),
        Field(description=f"Unique id of the event ({event_id}), for retries and labels."),
    )
    time = spec.event_time
    when = (
        f"Step index ({time.column}): steps of {format_duration(time.unit)} from {time.origin}."
        if time.unit
        else f"Time ({time.column}), an ISO 8601 date and time string; an offset is converted "
        "to UTC."
    )
    fields[api_field(time.column)] = (
        _steps(spec) if time.unit else Time,
        Field(
            description=when + " From 1970-01-01 to one day from now, and at most "
            "FRAUDOPS_MAX_EVENT_SKEW_SECONDS (one day) plus the wall time since it moved ahead "
            "of the newest accepted time."
        ),
    )
    for entity in spec.entities:
        logged = "logged only as a keyed hash" if entity.pii else "logged as is"
        fields.setdefault(
            api_field(entity.column),
            (
                _key_type(entity.type),
                Field(description=f"{entity.name} key ({entity.column}); {logged}."),
            ),
        )
    for numeric in spec.numeric:
        fields.setdefault(
            api_field(numeric.column),
            (_number(numeric), Field(description=f"{numeric.column}: a JSON number.")),
        )
    for categorical in spec.categorical:
        fields.setdefault(
            api_field(categorical.column),
            (
                Category,
                Field(
                    description=f"{categorical.column}: a category (text or integer code); "
                    "one unseen in training is scored as 'other'."
                ),
            ),
        )
    return create_model(
        "TransactionIn",
        __config__=ConfigDict(
            extra="forbid", json_schema_extra={"example": _example(spec)}, title="TransactionIn"
        ),
        __doc__=f"One event to score ({spec.name} dataset spec).",
        **fields,
    )


def _label_model(spec: DatasetSpec) -> type[BaseModel]:
    id_field = api_field(spec.event_id.column)
    example = {
        id_field: _example(spec)[id_field],
        "is_fraud": True,
        "label_time": "2018-10-09T08:00:00",
    }
    return create_model(  # type: ignore[call-overload]
        "LabelIn",
        __config__=ConfigDict(
            extra="forbid", json_schema_extra={"example": example}, title="LabelIn"
        ),
        __doc__="A confirmed label, arriving after the label delay.",
        **{
            id_field: (_key_type(spec.event_id.type), Field(description="The event's id.")),
            "is_fraud": (
                Label,
                Field(description="Whether it was fraud: true or false (or 1 or 0)."),
            ),
            "label_time": (
                Time | None,
                Field(
                    None,
                    description="When the label was confirmed (UTC; default: when it is received).",
                ),
            ),
            "external": (
                StrictBool,
                Field(
                    False,
                    description="A transaction this service did not score (e.g. a chargeback of "
                    "one scored elsewhere or long ago): logged as external, not refused.",
                ),
            ),
            "correction": (
                StrictBool,
                Field(
                    False,
                    description="Required to label a confirmed fraud false; logged as a "
                    "correction.",
                ),
            ),
            "source": (
                Literal[LABEL_SOURCES],
                Field(
                    "chargeback",
                    description="Where the label comes from: a chargeback (the default) or an "
                    "analyst's case decision (the console sends these). When both exist for "
                    "one event, the chargeback wins.",
                ),
            ),
            "labelled_by": (
                str | None,
                Field(
                    None,
                    max_length=64,
                    pattern=r"^[A-Za-z0-9_-]+$",
                    description="The analyst who decided (with source analyst).",
                ),
            ),
        },
    )


def _score_model(spec: DatasetSpec) -> type[BaseModel]:
    id_field = api_field(spec.event_id.column)
    example = {**EXAMPLE_SCORE, id_field: _example(spec)[id_field]}
    if id_field != "transaction_id":
        example.pop("transaction_id")
    categorical = bool(spec.categorical_features())
    value_type: Any = float | str if categorical else float
    return create_model(  # type: ignore[call-overload]
        "ScoreOut",
        __config__=ConfigDict(json_schema_extra={"example": example}, title="ScoreOut"),
        __doc__="The score of one event.",
        **{
            id_field: (_key_type(spec.event_id.type), ...),
            "fraud_probability": (float, Field(ge=0, le=1)),
            "decision": (
                str,
                Field(description="'alert' when fraud_probability >= threshold, else 'pass'."),
            ),
            "threshold": (float, Field(description="The deciding model's threshold.")),
            "model_name": (str, ...),
            "model_version": (str, Field(description="The version that decided.")),
            "model_role": (
                str,
                Field(
                    description="Which model decided: 'champion', or 'challenger' for an "
                    "entity in a canary."
                ),
            ),
            "features": (
                dict[str, value_type],
                Field(description="The feature values the model used (categories as text)."),
            ),
            "reasons": (
                list[ReasonOut] | None,
                Field(
                    description="Reason codes, largest contribution first: for an alert, and "
                    "for any event with ?explain=true; null otherwise or when the champion has "
                    "none (GET /model says why)."
                ),
            ),
            "latency_ms": (float, Field(description="Time spent in the service for it.")),
        },
    )


@dataclass(frozen=True)
class SpecApi:
    """The scoring API of one dataset spec: its models and how a request maps to the spec.

    Attributes:
        spec: the dataset spec.
        transaction: the request model of one event: the spec's raw columns in lower case
            (id, time, entities, numeric, categorical), strict types, extra fields forbidden.
        label: the ``/feedback`` row: the id field, ``is_fraud``, ``label_time``.
        score: the answer per event: the id field, probability, decision, model, features.
        id_field: the request field of the event id.
        time_field: the request field of the event time.
    """

    spec: DatasetSpec
    transaction: type[BaseModel]
    label: type[BaseModel]
    score: type[BaseModel]
    id_field: str
    time_field: str
    #: (raw column, request field) of each raw column, in the spec's order
    fields: tuple[tuple[str, str], ...]

    def event(self, request: BaseModel) -> dict[str, Any]:
        """A validated request as the spec's raw columns (column name → value, time naive)."""
        values = request.__dict__
        return {column: values[field] for column, field in self.fields}


_BUILT: dict[str, SpecApi] = {}


def spec_api(spec: DatasetSpec) -> SpecApi:
    """The API models of ``spec`` (built once per spec, by its hash).

    For the handbook spec they are today's API, field for field: ``transaction_id``,
    ``tx_datetime``, ``customer_id``, ``terminal_id``, ``tx_amount``.

    Raises:
        ValueError: the spec's origin (a step-index event time) is not ISO 8601.
    """
    key = spec_sha256(spec)
    if key not in _BUILT:
        _BUILT[key] = _build(spec)
    return _BUILT[key]


def _build(spec: DatasetSpec) -> SpecApi:
    return SpecApi(
        spec,
        _transaction_model(spec),
        _label_model(spec),
        _score_model(spec),
        api_field(spec.event_id.column),
        api_field(spec.event_time.column),
        tuple((column, api_field(column)) for column in spec.raw_columns()),
    )


EXAMPLE_SCORE: dict[str, JsonValue] = {
    "transaction_id": 1754155,
    "fraud_probability": 0.0011,
    "decision": "pass",
    "threshold": 0.0342,
    "model_name": "fraud-detector",
    "model_version": "1",
    "model_role": "champion",
    "features": {  # an excerpt: every feature of the served model is listed
        "TX_AMOUNT": 57.16,
        "TX_DURING_WEEKEND": 0.0,
        "TX_DURING_NIGHT": 0.0,
        "CUSTOMER_ID_NB_TX_1DAY_WINDOW": 3.0,
        "TERMINAL_ID_RISK_30DAY_WINDOW": 0.0,
    },
    "reasons": None,
    "latency_ms": 0.6,
}


class ReasonOut(BaseModel):
    """One feature pushing the score up (:class:`fraudops.model.explain.ReasonCode`)."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "feature": "TERMINAL_ID_RISK_7DAY_WINDOW",
                "value": 0.25,
                "contribution": 2.41,
                "phrase": "25% of this terminal's labelled events in the 7 days ending 7 days "
                "ago were fraud (usual: 0.41%)",
            }
        }
    )

    feature: str = Field(description="The model input (a feature of the dataset spec).")
    value: float | str = Field(description="Its value for this event.")
    contribution: float = Field(description="Its SHAP value in log-odds (> 0: towards fraud).")
    phrase: str = Field(description="The value in words, from the spec's feature definition.")


class FeedbackOut(BaseModel):
    """How many labels were recorded, and how many of them were external (label log only)."""

    model_config = ConfigDict(json_schema_extra={"example": {"accepted": 1, "external": 0}})

    accepted: int
    external: int = 0


class ErrorOut(BaseModel):
    """The body of every error answer (4xx, 5xx) of the service."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {"error": "tx_amount: Input should be a JSON number, not a string"}
        }
    )

    error: str = Field(min_length=1, description="What was wrong, naming the field if one was.")
