"""The log records: columns derived from the spec, PII entities only as keyed hashes."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from fraudops.logs.predlog import IdHasher
from fraudops.logs.records import (
    LabelRecord,
    PredictionRecord,
    logged_entities,
    prediction_log_columns,
)
from fraudops.spec import load_spec

pytestmark = pytest.mark.unit

WHEN = dt.datetime(2024, 3, 1, 12, 30)


def test_a_prediction_row_has_the_spec_derived_columns_and_hashes_pii_entities():
    spec = load_spec("cards")
    hasher = IdHasher(b"k" * 32)
    event = {"card_token": "tok_4111", "merchant_id": "m_17", "device": "dev_9"}
    features = {"amount": 12.5, "card_tx_1h": 2.0}
    record = PredictionRecord(
        request_id="r" * 32,
        event_id="tx-1",
        event_time=WHEN,
        entities=logged_entities(spec, event, hasher),
        features=features,
        score=0.25,
        decision="pass",
        model_version="3",
        latency_ms=1.5,
        scored_at=WHEN,
    )
    row = record.row()
    assert tuple(row) == prediction_log_columns(spec, tuple(features))
    assert row["card_hash"] == hasher("tok_4111") and row["device_hash"] == hasher("dev_9")
    assert row["merchant"] == "m_17"  # pii: false in the spec
    assert "tok_4111" not in row.values() and "dev_9" not in row.values()
    assert row["reason_codes"] == ""  # none computed


def test_a_prediction_row_logs_its_reason_codes_as_names_and_contributions():
    record = PredictionRecord(
        request_id="r" * 32,
        event_id=7,
        event_time=WHEN,
        entities={"customer_hash": "ab"},
        features={"TX_AMOUNT": 12.5},
        score=0.9,
        decision="alert",
        model_version="3",
        latency_ms=1.5,
        scored_at=WHEN,
        reasons=(("TERMINAL_ID_RISK_7DAY_WINDOW", 2.4123456789), ("TX_AMOUNT", 0.5)),
    )
    assert json.loads(record.row()["reason_codes"]) == [
        ["TERMINAL_ID_RISK_7DAY_WINDOW", 2.412346],
        ["TX_AMOUNT", 0.5],
    ]


def test_the_handbook_log_keeps_its_column_names():
    columns = prediction_log_columns(load_spec("handbook"), ("TX_AMOUNT",))
    assert columns[:5] == (
        "request_id",
        "transaction_id",
        "tx_datetime",
        "customer_hash",
        "terminal_hash",
    )
    assert columns[-7:] == (
        "score",
        "decision",
        "model_version",
        "model_role",
        "latency_ms",
        "scored_at",
        "reason_codes",
    )


def test_a_label_row_says_whether_it_is_external_or_a_correction_and_where_it_came_from():
    assert LabelRecord("tx-1", 1, WHEN).row() == {
        "transaction_id": "tx-1",
        "is_fraud": 1,
        "label_time": WHEN,
        "external": False,
        "correction": False,
        "source": "chargeback",
        "labelled_by": "",
    }
    corrected = LabelRecord("tx-1", 0, WHEN, correction=True).row()
    assert corrected["correction"] is True and corrected["external"] is False
    decided = LabelRecord("tx-1", 1, WHEN, source="analyst", labelled_by="ann").row()
    assert (decided["source"], decided["labelled_by"]) == ("analyst", "ann")
