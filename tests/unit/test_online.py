import numpy as np
import pandas as pd
import pytest

from fraudops.data import contract as c
from fraudops.offline.handbook import compute_features
from fraudops.streaming.handbook_state import (
    MemoryStore,
    OnlineFeatures,
    RedisStore,
    Transaction,
    to_seconds,
)

pytestmark = pytest.mark.unit


def stream_through(online: OnlineFeatures, frame: pd.DataFrame) -> pd.DataFrame:
    """Score each row in order, then feed its label back at once (it counts after the delay)."""
    rows = []
    for r in frame.itertuples(index=False):
        tx = Transaction(r.TRANSACTION_ID, r.TX_DATETIME, r.CUSTOMER_ID, r.TERMINAL_ID, r.TX_AMOUNT)
        rows.append(online.observe(tx))
        online.feedback({int(r.TRANSACTION_ID): int(r.TX_FRAUD)})
    return pd.DataFrame(rows, index=frame.index)[list(c.FEATURES)]


def split_history(history: pd.DataFrame, day: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    before = history[c.TX_DATETIME] < day
    return history[before], history[~before]


def test_online_features_equal_offline_features_on_the_same_stream(small_history):
    frame = small_history[small_history[c.TX_DATETIME] < "2018-06-01"]
    warm, stream = split_history(frame, "2018-05-10")
    online = OnlineFeatures(MemoryStore(), label_delay_days=7)
    assert online.warm_up(warm) == len(warm)
    got = stream_through(online, stream)
    expected = compute_features(frame, label_delay_days=7).loc[stream.index]
    np.testing.assert_allclose(got.to_numpy(), expected.to_numpy(), rtol=0, atol=0)


def test_labels_inside_the_delay_do_not_count_until_they_are_older():
    online = OnlineFeatures(MemoryStore(), 7, max_event_skew_seconds=10 * 86_400)  # sparse stream
    t0 = pd.Timestamp("2018-05-01 10:00")
    online.observe(Transaction(1, t0, 1, 9, 10.0))
    online.feedback({1: 1})
    soon = online.observe(Transaction(2, t0 + pd.Timedelta(days=3), 2, 9, 10.0))
    later = online.observe(Transaction(3, t0 + pd.Timedelta(days=8), 3, 9, 10.0))
    assert soon[c.terminal_risk_feature(30)] == 0.0
    assert later[c.terminal_risk_feature(30)] == pytest.approx(1.0)
    assert later[c.terminal_count_feature(1)] == 0.0  # (t-8d, t-7d] is empty


def test_state_memory_is_bounded_by_the_windows(small_history):
    online = OnlineFeatures(MemoryStore(), label_delay_days=7)
    online.warm_up(small_history)  # 80 days
    last = small_history[c.TX_DATETIME].max()
    recent = (small_history[c.TX_DATETIME] > last - pd.Timedelta(days=38)).sum()
    assert online.store.size()["events"] <= 2 * recent
    assert online.store.size()["events"] < 2 * len(small_history) * 0.6


@pytest.mark.integration
def test_redis_store_gives_the_same_features_as_the_memory_store(small_history):
    redis = pytest.importorskip("redis")
    try:
        store = RedisStore("redis://127.0.0.1:6379/0", 7, prefix="fraudops-test-parity")
        store.ping()
    except redis.exceptions.ConnectionError:
        pytest.fail("Redis on 127.0.0.1:6379 is required for this test (see README)")
    store.clear()
    frame = small_history[small_history[c.TX_DATETIME] < "2018-05-12"]
    warm, stream = split_history(frame, "2018-05-10")
    memory = OnlineFeatures(MemoryStore(), 7)
    shared = OnlineFeatures(store, 7)
    memory.warm_up(warm)
    shared.warm_up(warm)
    try:
        np.testing.assert_allclose(
            stream_through(shared, stream).to_numpy(),
            stream_through(memory, stream).to_numpy(),
            rtol=0,
            atol=1e-9,
        )
    finally:
        store.clear()


def test_time_zone_aware_timestamps_are_read_as_utc():
    aware = pd.Timestamp("2018-05-05 01:30", tz="Europe/Brussels")  # 23:30 UTC the day before
    naive_utc = pd.Timestamp("2018-05-04 23:30")
    a = OnlineFeatures(MemoryStore()).observe(Transaction(1, aware, 1, 1, 5.0))
    b = OnlineFeatures(MemoryStore()).observe(Transaction(1, naive_utc, 1, 1, 5.0))
    assert a == b and a[c.TX_DURING_NIGHT] == 0.0 and a[c.TX_DURING_WEEKEND] == 0.0


def test_an_empty_card_window_gives_mean_0_and_ratio_1_as_offline():
    """Defensive: a state lacking the transaction's own event does not divide by zero."""
    online = OnlineFeatures(MemoryStore())
    tx = Transaction(1, pd.Timestamp("2018-05-01 10:00"), 1, 1, 25.0)
    features = online._features(tx, to_seconds(tx.tx_datetime), 25.0)  # tx was not inserted
    for window in c.WINDOWS_DAYS:
        assert features[c.customer_count_feature(window)] == 0.0
        assert features[c.customer_mean_amount_feature(window)] == 0.0
        assert features[c.amount_ratio_feature(window)] == 1.0
