"""The online state's clock and idempotency, in both stores (see the ``fraudops.online`` docstring).

The Redis cases need Redis on 127.0.0.1:6379 (integration tier); each uses its own key prefix
and deletes its keys afterwards.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest

from fraudops import contract as c
from fraudops.features import SECONDS_PER_DAY, compute_features
from fraudops.online import (
    AHEAD,
    TOO_OLD,
    EventRefused,
    MemoryStore,
    OnlineFeatures,
    RedisStore,
    StateStore,
    Transaction,
    to_seconds,
)

REDIS_URL = "redis://127.0.0.1:6379/0"
HOUR = 3600


def redis_store() -> RedisStore:
    redis = pytest.importorskip("redis")
    store = RedisStore(REDIS_URL, 7, prefix=f"fraudops-test-clock-{uuid.uuid4().hex[:8]}")
    try:
        store.ping()
    except redis.exceptions.ConnectionError:
        pytest.fail("Redis on 127.0.0.1:6379 is required for this test (see README)")
    return store


@pytest.fixture(
    params=[
        pytest.param("memory", marks=pytest.mark.unit),
        pytest.param("redis", marks=pytest.mark.integration),
    ]
)
def store(request) -> Iterator[StateStore]:
    """A fresh, empty store of each kind."""
    if request.param == "memory":
        yield MemoryStore()
        return
    shared = redis_store()
    try:
        yield shared
    finally:
        shared.clear()


def as_tx(r) -> Transaction:
    return Transaction(r.TRANSACTION_ID, r.TX_DATETIME, r.CUSTOMER_ID, r.TERMINAL_ID, r.TX_AMOUNT)


def replay(online: OnlineFeatures, frame: pd.DataFrame) -> list[dict[str, float]]:
    """Score each row, then feed its label back at once (it counts after the delay)."""
    out = []
    for r in frame.itertuples(index=False):
        out.append(online.observe(as_tx(r)))
        online.feedback({int(r.TRANSACTION_ID): int(r.TX_FRAUD)})
    return out


def as_matrix(rows: list[dict[str, float]]) -> np.ndarray:
    return np.array([[row[f] for f in c.FEATURES] for row in rows])


@pytest.fixture(scope="module")
def scene(small_history) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(whole frame, warm-up history, replayed rows): 50 days of history, then 3 days."""
    frame = small_history[small_history[c.TX_DATETIME] < "2018-05-23"]
    warm = frame[frame[c.TX_DATETIME] < "2018-05-20"]
    return frame, warm, frame[frame[c.TX_DATETIME] >= "2018-05-20"]


def test_one_request_two_months_ahead_is_refused_and_changes_no_later_feature(store, scene):
    frame, warm, stream = scene
    online = OnlineFeatures(store, 7)
    online.warm_up(warm)
    assert store.watermark() == to_seconds(warm[c.TX_DATETIME].max())
    first, rest = stream.iloc[:300], stream.iloc[300:]
    got = replay(online, first)
    before = store.watermark()
    card, terminal = (int(v) for v in first.iloc[-1][[c.CUSTOMER_ID, c.TERMINAL_ID]])
    future = Transaction(
        99_000_001, first[c.TX_DATETIME].iloc[-1] + pd.Timedelta(days=61), card, terminal, 50.0
    )
    with pytest.raises(EventRefused, match=r"tx_datetime .* ahead of .* watermark") as refused:
        online.observe(future)
    assert refused.value.reason == AHEAD and refused.value.watermark == before
    assert store.watermark() == before
    got += replay(online, rest)
    expected = compute_features(frame, label_delay_days=7).loc[stream.index]
    np.testing.assert_array_equal(as_matrix(got), expected.to_numpy())
    # nothing of the refused request entered the state: its id is new at a valid time
    again = Transaction(99_000_001, stream[c.TX_DATETIME].iloc[-1], card, terminal, 50.0)
    assert store.admit([online._event(again)], online.skew, "checked").inserted == [True]


def test_a_batch_with_one_row_too_far_ahead_is_refused_whole(store, scene):
    _, warm, stream = scene
    online = OnlineFeatures(store, 7)
    online.warm_up(warm)
    rows = [as_tx(r) for r in stream.head(4).itertuples(index=False)]
    card_before = store.card_events(rows[0].customer_id, 0)
    mark = store.watermark()
    late = Transaction(99_000_002, rows[2].tx_datetime + pd.Timedelta(days=2), 1, 1, 5.0)
    with pytest.raises(EventRefused) as refused:
        online.observe_many([*rows[:3], late, rows[3]])
    assert refused.value.index == 3
    assert store.watermark() == mark
    assert store.card_events(rows[0].customer_id, 0) == card_before
    assert len(online.observe_many(rows)) == 4


def test_a_fast_replay_advances_row_by_row_within_a_batch(store):
    online = OnlineFeatures(store, 7, max_event_skew_seconds=HOUR)
    t0 = pd.Timestamp("2018-05-01 00:00")
    online.observe(Transaction(1, t0, 1, 1, 5.0))
    steps = [
        Transaction(2 + i, t0 + pd.Timedelta(minutes=50 * (i + 1)), 1, 1, 5.0) for i in range(5)
    ]
    assert len(online.observe_many(steps)) == 5  # each row 50 min after the previous one
    assert store.watermark() == to_seconds(t0 + pd.Timedelta(minutes=250))
    with pytest.raises(EventRefused):  # 61 min after the newest accepted time
        online.observe(Transaction(9, t0 + pd.Timedelta(minutes=311), 1, 1, 5.0))


def test_an_event_older_than_the_retention_is_refused_a_late_one_is_exact(store):
    online = OnlineFeatures(store, 7, max_event_skew_seconds=HOUR)
    t0 = pd.Timestamp("2018-05-01 00:00")
    online.observe(Transaction(1, t0 - pd.Timedelta(minutes=30), 5, 6, 40.0))
    online.observe(Transaction(2, t0, 1, 1, 5.0))
    late = online.observe(Transaction(3, t0 - pd.Timedelta(minutes=20), 5, 6, 20.0))
    assert late[c.customer_count_feature(1)] == 2.0
    assert late[c.customer_mean_amount_feature(1)] == 30.0
    cut = t0 - pd.Timedelta(days=30, hours=1)
    with pytest.raises(EventRefused) as refused:
        online.observe(Transaction(4, cut, 1, 1, 5.0))
    assert refused.value.reason == TOO_OLD
    online.observe(Transaction(5, cut + pd.Timedelta(seconds=1), 1, 1, 5.0))


def test_an_empty_state_takes_its_first_event_as_the_watermark(store):
    online = OnlineFeatures(store, 7)
    assert store.watermark() is None
    t0 = pd.Timestamp("2018-05-01 12:00")
    online.observe(Transaction(1, t0, 1, 1, 5.0))
    assert store.watermark() == to_seconds(t0)
    with pytest.raises(EventRefused):
        online.observe(Transaction(2, t0 + pd.Timedelta(days=60), 1, 1, 5.0))


@pytest.mark.unit
def test_a_quiet_night_does_not_lock_a_live_service_out():
    now = [1_000_000_000.0]
    store = MemoryStore(clock=lambda: now[0])
    online = OnlineFeatures(store, 7, max_event_skew_seconds=HOUR)
    t0 = pd.Timestamp("2018-05-01 22:00")
    online.observe(Transaction(1, t0, 1, 1, 5.0))
    morning = Transaction(2, t0 + pd.Timedelta(hours=9), 1, 1, 5.0)
    with pytest.raises(EventRefused):
        online.observe(morning)
    now[0] += 8 * HOUR + 1  # eight quiet hours of wall time: 8 h + the 1 h skew are allowed
    online.observe(morning)
    assert store.watermark() == to_seconds(morning.tx_datetime)


@pytest.mark.integration
def test_redis_quiet_night_and_the_watermark_shared_by_replicas_and_restarts(scene):
    _, warm, stream = scene
    store = redis_store()
    try:
        first = OnlineFeatures(store, 7, max_event_skew_seconds=HOUR)
        first.warm_up(warm)
        replay(first, stream.head(50))
        mark = store.watermark()
        # another replica (its own connection) shares the watermark: it refuses a jump ...
        other = OnlineFeatures(RedisStore(REDIS_URL, 7, prefix=store._prefix), 7, HOUR)
        jump = Transaction(
            99_000_003, stream[c.TX_DATETIME].iloc[49] + pd.Timedelta(hours=9), 1, 1, 5.0
        )
        with pytest.raises(EventRefused):
            other.observe(jump)
        # ... which eight quiet hours of wall time allow
        store._redis.hset(store.clock_key, "moved_at", int(store._redis.time()[0]) - 8 * HOUR - 1)
        other.observe(jump)
        assert store.watermark() == to_seconds(jump.tx_datetime) > mark
        # a restart warms up the same history again: no event twice, the watermark stays
        card = int(warm[c.CUSTOMER_ID].iloc[-1])
        held = store.card_events(card, 0)
        OnlineFeatures(RedisStore(REDIS_URL, 7, prefix=store._prefix), 7, HOUR).warm_up(warm)
        assert store.card_events(card, 0) == held
        assert store.watermark() == to_seconds(jump.tx_datetime)
        ttl = store._redis.ttl(store._key("card", card))
        assert 30 * SECONDS_PER_DAY < ttl <= 32 * SECONDS_PER_DAY  # an idle card's key goes
    finally:
        store.clear()


def test_a_retried_transaction_id_is_counted_once(store, scene):
    _, warm, stream = scene
    stream = stream.head(600)
    online = OnlineFeatures(store, 7)
    online.warm_up(warm)
    got, retries = [], []
    rows = list(stream.itertuples(index=False))
    for i, r in enumerate(rows):
        got.append(online.observe(as_tx(r)))
        online.feedback({int(r.TRANSACTION_ID): int(r.TX_FRAUD)})
        if i % 7 == 0:  # retried at once, same body
            retries.append((i, online.observe(as_tx(r))))
        if i % 11 == 0 and i >= 5:  # retried later, with another amount: the id is the key
            old = as_tx(rows[i - 5])
            online.observe(dataclasses.replace(old, tx_amount=old.tx_amount + 1.0))
    history = pd.concat([warm, stream])
    expected = compute_features(history, label_delay_days=7).loc[stream.index].to_numpy()
    np.testing.assert_array_equal(as_matrix(got), expected)
    for i, features in retries:  # an identical retry gets the original's features
        np.testing.assert_array_equal(as_matrix([features])[0], expected[i])


@pytest.mark.integration
def test_a_flushed_or_unreachable_redis_is_not_intact(scene):
    _, warm, _ = scene
    store = redis_store()
    try:
        empty = OnlineFeatures(store, 7)
        assert empty.intact()  # nothing loaded: Redis answering is enough
        online = OnlineFeatures(store, 7)
        online.warm_up(warm.tail(500))
        assert online.intact()
        store.clear()  # what FLUSHDB does to this state
        assert not online.intact()
    finally:
        store.clear()
    unreachable = OnlineFeatures(RedisStore("redis://127.0.0.1:1/0", 7), 7)
    assert not unreachable.intact()
