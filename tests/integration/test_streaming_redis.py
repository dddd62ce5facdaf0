"""The Redis online state equals the offline engine exactly on random specs and streams.

Same generators and truth as ``tests/unit/test_streaming.py`` (the in-memory engine); needs
Redis on 127.0.0.1:6379. Each example uses its own key prefix and deletes it.
"""

from __future__ import annotations

import uuid
from collections.abc import Hashable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fraudops.offline.engine import compute_spec_features
from fraudops.serving.scorer import Scorer
from fraudops.settings import Settings
from fraudops.spec.model import DatasetSpec
from fraudops.streaming.redis_state import RedisOnlineState, tile_levels
from fraudops.streaming.state import StateUnavailable
from tests.spec_strategies import specs, streams
from tests.unit.test_streaming import _simulated, assert_equal_rows, offline_truth, replay

pytestmark = pytest.mark.integration

REDIS_URL = "redis://127.0.0.1:6379/0"
NO_EXPIRY = 10**9  # a skew this wide never trims: the state keeps every event


class OneByOne:
    """The engine interface the shared ``replay`` drives, over a :class:`RedisOnlineState`."""

    def __init__(self, state: RedisOnlineState, *, idle: bool = False) -> None:
        self.state = state
        self.idle = idle

    def observe(self, event: Mapping[str, Any]) -> dict[str, Any]:
        features = self.state.observe_many([event])[0]
        if self.idle:  # as if the watermark last moved long ago: the next event may be far ahead
            self.state._redis.hset(f"{self.state._prefix}:clock", "moved_at", 0)
        return features

    def feedback(self, labels: Mapping[Hashable, int]) -> int:
        return self.state.feedback(labels)

    def expire(self, watermark_seconds: int) -> None:
        """Nothing to do: the Redis state trims on each write, at the watermark minus skew."""


@contextmanager
def redis_state(spec: DatasetSpec, skew: int) -> Iterator[RedisOnlineState]:
    state = RedisOnlineState(spec, REDIS_URL, skew, prefix=f"test-{uuid.uuid4().hex[:8]}")
    try:
        yield state
    finally:
        state.clear()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_random_specs_and_streams_equal_the_offline_engine_exactly(data):
    spec = data.draw(specs())
    events, early = data.draw(streams(spec))
    with redis_state(spec, NO_EXPIRY) as state:
        got = replay(OneByOne(state), events, spec, early)
    assert_equal_rows(got, offline_truth(events, spec))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_trimming_at_every_write_keeps_in_order_events_exact(data):
    """Skew 0: each write trims what the watermark leaves behind (partly expired tiles too);
    the clock is made to look idle between events, so no event is refused as too far ahead."""
    spec = data.draw(specs())
    events, early = data.draw(streams(spec))
    events = events.sort_values(spec.event_time.column, kind="stable").reset_index(drop=True)
    with redis_state(spec, 0) as state:
        got = replay(OneByOne(state, idle=True), events, spec, early)
        assert state.size()["ids"] <= len(events)
    assert_equal_rows(got, offline_truth(events, spec))


@pytest.mark.parametrize("spec_name", ["handbook", "cards"])
def test_shipped_specs_warmed_in_redis_equal_the_offline_engine(spec_name):
    spec, events = _simulated(spec_name)
    half = len(events) // 2
    with redis_state(spec, 86_400) as state:
        assert state.warm_up(events.iloc[:half]) == half
        assert state.warm_up(events.iloc[:half]) == 0  # ids already held are skipped
        got = replay(OneByOne(state), events.iloc[half:], spec)
        assert state.size()["ids"] < len(events)  # the oldest ids were trimmed
    expected = compute_spec_features(events, spec).iloc[half:]
    pd.testing.assert_frame_equal(
        pd.DataFrame(got, index=expected.index), expected, check_exact=True
    )


def test_a_flushed_state_is_not_intact_until_warmed_again():
    spec, events = _simulated("cards")
    with redis_state(spec, 86_400) as state:
        assert state.intact()  # empty and never warmed: nothing to lose yet
        state.warm_up(events.iloc[:500])
        assert state.intact()
        state.clear()  # as FLUSHDB, or an eviction of the marker, would
        assert not state.intact()
        state.warm_up(events.iloc[:500])
        assert state.intact()


def test_tile_levels_follow_the_shortest_window():
    spec, _ = _simulated("cards")  # windows from 1 h
    assert tile_levels(spec) == [60, 300, 900, 3_600, 86_400]
    handbook, _ = _simulated("handbook")  # windows from 1 d
    assert tile_levels(handbook) == [300, 900, 3_600, 86_400]


def test_a_tile_that_still_holds_live_events_is_never_trimmed():
    """Window 1 h: the second write trims at ``cut = 3600k - 1``, so the tiles of every level
    that start at ``3600k`` (holding the first event) must stay."""
    spec = DatasetSpec.model_validate(
        {
            "name": "edge",
            "event_id": {"column": "id"},
            "event_time": {"column": "ts"},
            "label": {"column": "y"},
            "entities": [{"name": "card", "column": "card"}],
            "numeric": [{"column": "amt"}],
            "aggregations": [
                {"entity": "card", "windows": ["1h"], "features": [{"name": "n", "kind": "count"}]}
            ],
        }
    )
    hour = pd.Timestamp("2024-03-01 05:00:00")
    seconds = [10, 3_599, 3_599]
    events = pd.DataFrame(
        {
            "id": [1, 2, 3],
            "ts": [hour + pd.Timedelta(seconds=s) for s in seconds],
            "card": [7, 7, 7],
            "amt": [1.0, 2.0, 3.0],
            "y": [0, 0, 0],
        }
    )
    with redis_state(spec, 0) as state:
        got = replay(OneByOne(state, idle=True), events, spec)
    assert [row["n"] for row in got] == [1.0, 2.0, 3.0]


def test_the_service_serves_any_spec_from_redis(tmp_path):
    settings = Settings(home=tmp_path, dataset_spec="cards", feature_store=f"{REDIS_URL}")
    scorer = Scorer.start(settings, warm_up=False, poll=False)
    try:
        assert isinstance(scorer.online, RedisOnlineState)
        assert scorer.online.intact() and scorer.api.id_field == "tx_id"
    finally:
        scorer.close()


def test_an_unreachable_redis_raises_state_unavailable_and_is_not_intact():
    spec, events = _simulated("cards")
    state = RedisOnlineState(spec, "redis://127.0.0.1:1/0", 86_400, prefix="never-written")
    first = events.iloc[:1][spec.raw_columns()].to_dict("records")
    with pytest.raises(StateUnavailable, match="Redis online state is unavailable"):
        state.observe_many(first)
    with pytest.raises(StateUnavailable):
        state.feedback({first[0][spec.event_id.column]: 1})
    assert not state.intact()
