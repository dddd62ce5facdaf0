"""The demo's warehouse: label arrival times as the service gets them, rewritten atomically."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from fraudops.spec import load_spec
from fraudops.spec.data import prepare_events, read_events
from fraudops_cli.warehouse import DemoWarehouse

pytestmark = pytest.mark.unit


def rows(day: str, ids: list[int], frauds: list[int]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "TRANSACTION_ID": ids,
            "TX_DATETIME": pd.Timestamp(day) + pd.to_timedelta(range(len(ids)), unit="h"),
            "CUSTOMER_ID": [1] * len(ids),
            "TERMINAL_ID": [2] * len(ids),
            "TX_AMOUNT": [10.0] * len(ids),
            "TX_FRAUD": frauds,
        }
    )


def test_an_analyst_confirmation_rewrites_its_day_with_the_end_of_the_review_day(tmp_path):
    spec = load_spec("handbook-arrival")
    store = DemoWarehouse(tmp_path / "warehouse", spec)
    store.land_history(rows("2018-05-30", [1, 2], [1, 0]))
    first = store.land_day(dt.date(2018, 6, 1), rows("2018-06-01", [3, 4], [1, 0]))
    # a chargeback reaches the service at the end of the day one delay (7 d) later
    assert first["LABEL_KNOWN_AT"].tolist() == [pd.Timestamp("2018-06-08 23:59:59")] * 2
    store.land_day(dt.date(2018, 6, 2), rows("2018-06-02", [5], [1]))
    assert store.confirmed([3, 5, 1], dt.date(2018, 6, 2)) == 2  # history rows stay
    assert store.confirmed([3], dt.date(2018, 6, 3)) == 0  # known already, earlier
    events = prepare_events(read_events(store.folder, spec), spec).set_index("TRANSACTION_ID")
    known = events["LABEL_KNOWN_AT"]
    assert known[3] == known[5] == pd.Timestamp("2018-06-02 23:59:59")
    assert known[1] == pd.Timestamp("2018-06-06 23:59:59") and known[4] > known[3]
    assert not list(store.folder.glob("*.tmp"))


def test_history_days_are_fed_again_only_when_labels_count_by_arrival(tmp_path):
    history = rows("2018-05-30", [1, 2], [1, 0])
    by_delay = DemoWarehouse(tmp_path / "a", load_spec("handbook"))
    by_delay.land_history(history)
    assert by_delay.rows_of(dt.date(2018, 5, 30)) is None
    assert "LABEL_KNOWN_AT" not in pd.read_parquet(by_delay.folder)
    by_arrival = DemoWarehouse(tmp_path / "b", load_spec("handbook-arrival"))
    by_arrival.land_history(history)
    assert by_arrival.rows_of(dt.date(2018, 5, 30))["TRANSACTION_ID"].tolist() == [1, 2]
