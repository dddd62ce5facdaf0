"""Request and response models of the scoring API, derived from the one contract.

JSON field names are the contract's raw column names in lower case (``TX_AMOUNT`` →
``tx_amount``); a test checks that they stay in step with :data:`contract.RAW_COLUMNS`.

Input is validated at the edge, so that nothing a client sends can fail later (a 500, a log
write that fails forever, an online state emptied by one request): ids fit the contract's
int64, amounts are finite and at most :data:`contract.MAX_AMOUNT`, and times are made naive
UTC (as the training data is) and must lie between :data:`EARLIEST_TIME` and one day from now
(:data:`FUTURE_SLACK`). The online state then checks the time against its own clock (the
watermark, see :mod:`fraudops.online`): one too far ahead of it, or older than its retention,
gets a 422 naming ``tx_datetime`` from the service, so no request can move the state's expiry.

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
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

from fraudops import contract as c
from fraudops.online import Transaction

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

EXAMPLE_TRANSACTION: dict[str, JsonValue] = {
    "transaction_id": 1754155,
    "tx_datetime": "2018-10-01T10:15:00",
    "customer_id": 1234,
    "terminal_id": 5678,
    "tx_amount": 57.16,
}


class TransactionIn(BaseModel):
    """One raw transaction, as the payment system has it."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": EXAMPLE_TRANSACTION})

    transaction_id: Id = Field(description="Unique id of the transaction: a JSON integer.")
    tx_datetime: Time = Field(
        description="Time of the transaction, an ISO 8601 date and time string; a time-zone "
        "offset is converted to UTC. "
        "From 1970-01-01 to one day from now, and at most FRAUDOPS_MAX_EVENT_SKEW_SECONDS (one "
        "day) plus the wall time since it moved ahead of the newest accepted transaction time."
    )
    customer_id: Id = Field(description="Card (customer) id; logged only as a keyed hash.")
    terminal_id: Id = Field(description="Terminal (point of sale) id; logged only as a hash.")
    tx_amount: Amount = Field(description="Amount, currency units: a JSON number.")

    def to_transaction(self) -> Transaction:
        return Transaction(
            self.transaction_id,
            self.tx_datetime,
            self.customer_id,
            self.terminal_id,
            self.tx_amount,
        )


#: Contract column → API field: the API is the contract's raw columns in lower case.
API_FIELDS = {column: column.lower() for column in c.RAW_COLUMNS}


EXAMPLE_SCORE: dict[str, JsonValue] = {
    "transaction_id": 1754155,
    "fraud_probability": 0.0011,
    "decision": "pass",
    "threshold": 0.0342,
    "model_name": "fraud-detector",
    "model_version": "1",
    "features": {  # an excerpt: every feature of the served model is listed
        "TX_AMOUNT": 57.16,
        "TX_DURING_WEEKEND": 0.0,
        "TX_DURING_NIGHT": 0.0,
        "CUSTOMER_ID_NB_TX_1DAY_WINDOW": 3.0,
        "TERMINAL_ID_RISK_30DAY_WINDOW": 0.0,
    },
    "latency_ms": 0.6,
}
EXAMPLE_LABEL: dict[str, JsonValue] = {
    "transaction_id": 1754155,
    "is_fraud": True,
    "label_time": "2018-10-09T08:00:00",
}


class ScoreOut(BaseModel):
    """The score of one transaction."""

    model_config = ConfigDict(json_schema_extra={"example": EXAMPLE_SCORE})

    transaction_id: int
    fraud_probability: float = Field(ge=0, le=1)
    decision: str = Field(description="'alert' when fraud_probability >= threshold, else 'pass'.")
    threshold: float = Field(description="The champion's threshold for the alert budget.")
    model_name: str
    model_version: str
    features: dict[str, float] = Field(description="The feature values the model used.")
    latency_ms: float = Field(description="Time spent in the service for this request.")


class LabelIn(BaseModel):
    """A confirmed label, arriving after the label delay."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": EXAMPLE_LABEL})

    transaction_id: Id
    is_fraud: Label = Field(description="Whether it was fraud: true or false (or 1 or 0).")
    label_time: Time | None = Field(
        None, description="When the label was confirmed (UTC; default: when it is received)."
    )


class FeedbackOut(BaseModel):
    """How many labels were recorded."""

    model_config = ConfigDict(json_schema_extra={"example": {"accepted": 1}})

    accepted: int


class ErrorOut(BaseModel):
    """The body of every error answer (4xx, 5xx) of the service."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {"error": "tx_amount: Input should be a JSON number, not a string"}
        }
    )

    error: str = Field(min_length=1, description="What was wrong, naming the field if one was.")
