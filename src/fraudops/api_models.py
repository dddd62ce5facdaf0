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
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, JsonValue

from fraudops import contract as c
from fraudops.online import Transaction

#: Bounds of the contract's int64 ids.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_AMOUNT = c.MAX_AMOUNT  # the contract's bound (exact window sums)
#: Earliest transaction or label time accepted (naive UTC).
EARLIEST_TIME = dt.datetime(1970, 1, 1)
#: How far past the server's clock a transaction or label time may be (clock skew).
FUTURE_SLACK = dt.timedelta(days=1)


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


Id = Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX)]
Time = Annotated[dt.datetime, AfterValidator(_naive_utc_in_range)]

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

    transaction_id: Id = Field(description="Unique id of the transaction.")
    tx_datetime: Time = Field(
        description="Time of the transaction, ISO 8601; a time-zone offset is converted to UTC. "
        "From 1970-01-01 to one day from now, and at most FRAUDOPS_MAX_EVENT_SKEW_SECONDS (one "
        "day) plus the wall time since it moved ahead of the newest accepted transaction time."
    )
    customer_id: Id = Field(description="Card (customer) id; logged only as a keyed hash.")
    terminal_id: Id = Field(description="Terminal (point of sale) id; logged only as a hash.")
    tx_amount: float = Field(
        ge=0, le=MAX_AMOUNT, allow_inf_nan=False, description="Amount, currency units."
    )

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


class ScoreOut(BaseModel):
    """The score of one transaction."""

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

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "example": {
                "transaction_id": 1754155,
                "is_fraud": True,
                "label_time": "2018-10-09T08:00:00",
            }
        },
    )

    transaction_id: Id
    is_fraud: bool
    label_time: Time | None = Field(
        None, description="When the label was confirmed (UTC; default: when it is received)."
    )


class FeedbackOut(BaseModel):
    accepted: int
