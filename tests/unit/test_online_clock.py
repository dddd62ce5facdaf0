"""The online state's clock and idempotency, in both stores (see the
``fraudops.streaming.clock`` docstring).

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

from fraudops.data import contract as c
from fraudops.offline.handbook import SECONDS_PER_DAY, compute_features
from fraudops.streaming.clock import AHEAD, CONFLICT, TOO_OLD, EventRefused
from fraudops.streaming.handbook_state import (
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
    return Transaction(
        int(r.TRANSACTION_ID),
        r.TX_DATETIME,
        int(r.CUSTOMER_ID),
        int(r.TERMINAL_ID),
        float(r.TX_AMOUNT),
    )


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
        if i % 11 == 0 and i >= 5:  # retried later, same body: scored, not recorded again
            online.observe(as_tx(rows[i - 5]))
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


def conflicting(online: OnlineFeatures, tx: Transaction, differs: list[str]) -> None:
    """``tx`` is refused as a reuse of its id with other values, naming ``differs``."""
    with pytest.raises(EventRefused, match=r"transaction_id .* already scored") as refused:
        online.observe(tx)
    assert refused.value.reason == CONFLICT and refused.value.index == 0
    assert refused.value.transaction_id == tx.transaction_id
    assert refused.value.differs == differs


def test_a_reused_id_with_other_values_is_refused_and_changes_nothing(store, scene):
    frame, warm, stream = scene
    online = OnlineFeatures(store, 7)
    online.warm_up(warm)
    first, rest = stream.iloc[:300], stream.iloc[300:]
    got = replay(online, first)
    mark, last = store.watermark(), first.iloc[-1]
    when = last[c.TX_DATETIME] - pd.Timedelta(hours=20)  # late, inside the retention
    # the fuzz test's 500: a new card and terminal, amount 0, an id the state holds (another
    # card, another time): its own event would have been missing from its window (count 0)
    held = as_tx(warm.iloc[-1])
    fresh_card, fresh_terminal = 99_560, 99_170_707
    reused = Transaction(held.transaction_id, when, fresh_card, fresh_terminal, 0.0)
    conflicting(online, reused, ["customer_id", "terminal_id", "tx_datetime", "tx_amount"])
    # an id scored minutes ago, only the amount changed; then only the second
    recent = as_tx(last)
    conflicting(
        online, dataclasses.replace(recent, tx_amount=recent.tx_amount + 1.0), ["tx_amount"]
    )
    moved = recent.tx_datetime + pd.Timedelta(seconds=1)
    conflicting(online, dataclasses.replace(recent, tx_datetime=moved), ["tx_datetime"])
    # a batch: valid rows, then a reuse of a held id; and a reuse of an id earlier in the batch
    card = int(last[c.CUSTOMER_ID])
    before = store.card_events(card, 0)
    new = Transaction(99_000_010, when, card, int(last[c.TERMINAL_ID]), 12.0)
    for batch, index in (
        ([new, dataclasses.replace(reused, customer_id=card)], 1),
        ([new, as_tx(last), dataclasses.replace(new, tx_amount=13.0)], 2),
    ):
        with pytest.raises(EventRefused) as refused:
            online.observe_many(batch)
        assert refused.value.reason == CONFLICT and refused.value.index == index
    assert store.watermark() == mark
    assert store.card_events(card, 0) == before
    assert store.card_events(fresh_card, 0) == ([], [])
    assert store.terminal_events(fresh_terminal, 0, 2**40) == []
    # nothing of the refused requests entered the state: every later feature is the offline
    # features' of the stream without them, and their new id is still free
    got += replay(online, rest)
    expected = compute_features(frame, label_delay_days=7).loc[stream.index]
    np.testing.assert_array_equal(as_matrix(got), expected.to_numpy())
    assert store.admit([online._event(new)], online.skew, "checked").inserted == [True]


def test_an_identical_retry_is_not_a_conflict_and_gets_the_originals_features(store, scene):
    _, warm, stream = scene
    online = OnlineFeatures(store, 7)
    online.warm_up(warm)
    rows = [as_tx(r) for r in stream.head(40).itertuples(index=False)]
    original = online.observe_many(rows[:20])
    online.observe_many(rows[20:])
    # retried later, alone and as a batch (the time as an aware timestamp: the same second)
    assert online.observe(rows[5]) == original[5]
    aware = dataclasses.replace(rows[7], tx_datetime=pd.Timestamp(rows[7].tx_datetime, tz="UTC"))
    assert online.observe_many([rows[3], aware]) == [original[3], original[7]]
    # a batch holding the same transaction twice: the second one is a retry
    twice = Transaction(99_000_020, rows[-1].tx_datetime, 5, 6, 7.5)
    once, again = online.observe_many([twice, twice])
    assert once == again and once[c.customer_count_feature(1)] >= 1.0
    # a row of the warm-up history, retried: not refused, not recorded again
    card = int(warm[c.CUSTOMER_ID].iloc[-1])
    held = store.card_events(card, 0)
    online.observe(as_tx(warm.iloc[-1]))
    assert store.card_events(card, 0) == held


@pytest.mark.integration
def test_redis_trims_fingerprints_with_the_seen_ids_and_reads_a_state_without_them():
    store = redis_store()
    try:
        online = OnlineFeatures(store, 7)
        t0 = pd.Timestamp("2018-05-01 00:00")
        online.observe(Transaction(1, t0, 1, 1, 5.0))
        fingerprints = f"{store._prefix}:fingerprint"
        assert (
            store._redis.hget(fingerprints, "1") == b"1:1:" + str(to_seconds(t0)).encode() + b":5.0"
        )
        # an id recorded before fingerprints existed counts as a retry, without dividing by 0
        store._redis.hdel(fingerprints, "1")
        features = online.observe(Transaction(1, t0, 9, 9, 0.0))
        assert features[c.customer_count_feature(1)] == 0.0
        assert features[c.customer_mean_amount_feature(1)] == 0.0
        assert features[c.amount_ratio_feature(1)] == 1.0
        # ids leave ``seen`` and their fingerprints at the terminal cut, 37 days + skew later
        step = t0
        for i in range(2, 46):
            step += pd.Timedelta(days=1)
            online.observe(Transaction(i, step, 1, 1, 5.0))
        assert store._redis.zscore(f"{store._prefix}:seen", "2") is None
        assert store._redis.hget(fingerprints, "2") is None
        assert store._redis.hget(fingerprints, "45") is not None
        assert store._redis.hlen(fingerprints) == store._redis.zcard(f"{store._prefix}:seen")
    finally:
        store.clear()
