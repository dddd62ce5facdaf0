"""Request and response models of the scoring API, derived from the one contract.

JSON field names are the contract's raw column names in lower case (``TX_AMOUNT`` →
``tx_amount``); a test checks that they stay in step with :data:`contract.RAW_COLUMNS`.
"""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from fraudops import contract as c
from fraudops.online import Transaction

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

    transaction_id: int = Field(description="Unique id of the transaction.")
    tx_datetime: dt.datetime = Field(description="Time of the transaction, ISO 8601.")
    customer_id: int = Field(description="Card (customer) id; logged only as a keyed hash.")
    terminal_id: int = Field(description="Terminal (point of sale) id; logged only as a hash.")
    tx_amount: float = Field(ge=0, allow_inf_nan=False, description="Amount, currency units.")

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

    transaction_id: int
    is_fraud: bool
    label_time: dt.datetime | None = Field(None, description="When the label was confirmed.")


class FeedbackOut(BaseModel):
    accepted: int
