"""The online engine of any spec equals the offline engine exactly, row by row (``==`` floats).

The offline truth for the i-th observed event is ``compute_spec_features`` of the events
observed so far (rows 0..i of the stream) at row i; where no later row is earlier in time, that
is the row of the whole stream's frame. Labels are fed as the service receives them: each
before any event at least one label delay later is observed (see the engine's docstring).
"""

from __future__ import annotations

import datetime as dt
from array import array
from itertools import pairwise
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fraudops.data.card_simulator import CardSimulationConfig, simulate_card_payments
from fraudops.data.simulator import SimulationConfig, simulate_transactions
from fraudops.offline.engine import compute_spec_features
from fraudops.spec import load_spec
from fraudops.spec.data import prepare_events
from fraudops.spec.model import DatasetSpec
from fraudops.streaming import SpecOnlineEngine, event_second
from fraudops.streaming.structures import DistinctFrontier, Fenwick, MaxTree
from tests.spec_strategies import START, specs, streams

pytestmark = pytest.mark.unit


def replay(
    engine: SpecOnlineEngine,
    events: pd.DataFrame,
    spec: DatasetSpec,
    early: list[bool] | None = None,
    expire_every: int | None = None,
    watermarks: np.ndarray | None = None,
) -> list[dict[str, Any]]:
    """Observe the rows in order; feed each label before the first event one delay later.

    ``expire_every``: expire at the event's time every so many seconds; ``watermarks``: expire
    at ``watermarks[i]`` before the i-th event.
    """
    delay, label = spec.label.delay, spec.label.column
    id_column, time_column = spec.event_id.column, spec.event_time.column
    pending: list[tuple[int, Any, int]] = []  # (second, id, label) not fed yet
    records = events.to_dict("records")
    out, last_expiry = [], None
    for i, record in enumerate(records):
        second = event_second(record[time_column])[0]
        due = [p for p in pending if p[0] + delay <= second]
        if due:
            engine.feedback({event_id: y for _, event_id, y in due})
            pending = [p for p in pending if p[0] + delay > second]
        if expire_every and (last_expiry is None or second - last_expiry >= expire_every):
            engine.expire(second)
            last_expiry = second
        if watermarks is not None:
            engine.expire(int(watermarks[i]))
        raw = {k: v for k, v in record.items() if k not in (label, spec.label.known_at)}
        if i % 2:  # both time types the engine accepts
            raw[time_column] = raw[time_column].to_pydatetime()
        out.append(engine.observe(raw))
        if early is not None and early[i]:
            engine.feedback({record[id_column]: int(record[label])})
        else:
            pending.append((second, record[id_column], int(record[label])))
    return out


def offline_truth(events: pd.DataFrame, spec: DatasetSpec) -> list[dict[str, Any]]:
    """Row i of ``compute_spec_features`` over rows 0..i (the whole frame where that is equal)."""
    whole = compute_spec_features(events, spec)
    seconds = event_seconds_of(events, spec)
    later_min = np.minimum.accumulate(seconds[::-1])[::-1]  # earliest time from row i on
    rows = whole.to_dict("records")
    for i in range(len(events) - 1):
        if later_min[i + 1] < seconds[i]:  # a later arrival is earlier: the prefix differs
            rows[i] = compute_spec_features(events.iloc[: i + 1], spec).iloc[i].to_dict()
    return rows


def event_seconds_of(events: pd.DataFrame, spec: DatasetSpec) -> np.ndarray:
    times = pd.DatetimeIndex(events[spec.event_time.column])
    return times.values.astype("datetime64[s]").astype(np.int64)


def assert_equal_rows(got: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    assert len(got) == len(expected)
    for i, (online, offline) in enumerate(zip(got, expected, strict=True)):
        assert list(online) == list(offline)
        differ = {k: (online[k], offline[k]) for k in online if online[k] != offline[k]}
        assert not differ, f"row {i}: online != offline: {differ}"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_random_specs_and_streams_equal_the_offline_engine_exactly(data):
    spec = data.draw(specs())
    events, early = data.draw(streams(spec))
    got = replay(SpecOnlineEngine(spec), events, spec, early)
    assert_equal_rows(got, offline_truth(events, spec))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_expiry_keeps_every_later_event_exact(data):
    """Expire before each event at the earliest time still to come (late events included)."""
    spec = data.draw(specs())
    events, early = data.draw(streams(spec))
    seconds = event_seconds_of(events, spec)
    earliest_to_come = np.minimum.accumulate(seconds[::-1])[::-1]
    engine = SpecOnlineEngine(spec)
    got = replay(engine, events, spec, early, watermarks=earliest_to_come)
    assert_equal_rows(got, offline_truth(events, spec))


def observe_in_requests(
    engine: SpecOnlineEngine,
    events: pd.DataFrame,
    spec: DatasetSpec,
    cuts: list[int],
    *,
    one_by_one: bool = False,
) -> list[dict[str, Any]]:
    """Observe the rows in requests split at ``cuts`` (one request when empty), each with
    one ``observe_many`` (or one ``observe`` per event); after each request, the labels of
    its events are fed."""
    label, ident = spec.label.column, spec.event_id.column
    raw = events.drop(columns=[c for c in (label, spec.label.known_at) if c in events])
    records = raw.to_dict("records")
    out: list[dict[str, Any]] = []
    bounds = [0, *sorted(set(cuts)), len(records)]
    for start, end in pairwise(bounds):
        if start == end:
            continue
        if one_by_one:
            out += [engine.observe(record) for record in records[start:end]]
        else:
            out += engine.observe_many(records[start:end])
        part = events.iloc[start:end]
        engine.feedback(dict(zip(part[ident], part[label].astype(int), strict=True)))
    return out


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_a_request_of_many_events_equals_observing_them_one_by_one(data):
    """Same ids, same-second ties and late events inside one request: the batch path gives
    each event what one-at-a-time observation gives, and leaves the same state behind."""
    spec = data.draw(specs())
    events, _ = data.draw(streams(spec))
    cuts = data.draw(st.lists(st.integers(1, max(len(events) - 1, 1)), max_size=4))
    one_by_one, batched = SpecOnlineEngine(spec), SpecOnlineEngine(spec)
    expected = observe_in_requests(one_by_one, events, spec, cuts, one_by_one=True)
    got = observe_in_requests(batched, events, spec, cuts)
    assert_equal_rows(got, expected)
    assert batched.size() == one_by_one.size()
    later = events.copy()
    ids = range(10**6, 10**6 + len(events))
    later[spec.event_id.column] = [i if spec.event_id.type == "int" else f"later-{i}" for i in ids]
    later[spec.event_time.column] += pd.Timedelta(hours=1)
    assert_equal_rows(
        observe_in_requests(batched, later, spec, []),
        observe_in_requests(one_by_one, later, spec, [], one_by_one=True),
    )


def test_a_request_with_a_held_or_repeated_id_records_none_of_its_events():
    spec, events = _simulated("cards")
    engine = SpecOnlineEngine(spec)
    records = events.drop(columns=[spec.label.column]).head(6).to_dict("records")
    engine.observe_many(records[:2])
    before = engine.size()
    for request in (records[2:5] + records[1:2], records[2:5] + records[3:4]):
        with pytest.raises(ValueError, match="already in the online state"):
            engine.observe_many(request)
        assert engine.size() == before
    assert len(engine.observe_many(records[2:6])) == 4


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [("TX_AMOUNT", float("nan"), ValueError), ("TRANSACTION_ID", "7", TypeError)],
)
def test_a_request_with_a_value_the_state_cannot_hold_records_none_of_its_events(
    field, value, error
):
    """A non-finite summed value, or a text id where the spec's ids are ints, is refused
    before the request's first event is held: its other ids stay free for a retry."""
    spec, events = _simulated("handbook")
    engine = SpecOnlineEngine(spec)
    records = events.drop(columns=[spec.label.column]).head(3).to_dict("records")
    bad = [records[0], records[1], {**records[2], field: value}]
    with pytest.raises(error):
        engine.observe_many(bad)
    assert engine.size() == {"customer": 0, "terminal": 0, "ids": 0}
    assert len(engine.observe_many(records)) == 3


def test_running_sums_beyond_int64_stay_exact_while_each_window_fits():
    """The state keeps int64 arrays (the cycle collector does not walk them); an entity whose
    running sum of micro-units leaves int64 (12 events of 10^12) keeps exact Python ints."""
    spec = DatasetSpec.model_validate(
        {
            "name": "big",
            "event_id": {"column": "id"},
            "event_time": {"column": "ts"},
            "label": {"column": "y", "delay": 0},
            "entities": [{"name": "card", "column": "card"}],
            "numeric": [{"column": "amt", "min": 0}],
            "aggregations": [
                {
                    "entity": "card",
                    "windows": [60],
                    "features": [
                        {"name": "sum_{window}", "kind": "sum", "of": "amt"},
                        {"name": "ratio_{window}", "kind": "ratio_to_mean", "of": "amt"},
                    ],
                }
            ],
        }
    )
    n = 12
    events = pd.DataFrame(
        {
            "id": range(n),
            "ts": START + pd.to_timedelta(np.arange(n) * 61, unit="s"),
            "amt": [1e12 + i for i in range(n)],
            "y": 0,
            "card": 1,
        }
    )
    engine = SpecOnlineEngine(spec)
    got = observe_in_requests(engine, events, spec, [5])
    assert_equal_rows(got, offline_truth(events, spec))
    assert isinstance(engine._states["card"][1].sums["amt"], list)  # left int64: Python ints
    assert isinstance(engine._states["card"][1].seconds, array)


def test_a_late_event_gets_its_exact_features_and_later_events_count_it():
    spec = DatasetSpec.model_validate(
        {
            "name": "late",
            "event_id": {"column": "id"},
            "event_time": {"column": "ts"},
            "label": {"column": "y", "delay": "1h"},
            "entities": [{"name": "card", "column": "card"}],
            "numeric": [{"column": "amt"}],
            "categorical": [{"column": "cat"}],
            "aggregations": [
                {
                    "entity": "card",
                    "windows": ["1d"],
                    "features": [
                        {"name": "n", "kind": "count"},
                        {"name": "top", "kind": "max", "of": "amt"},
                        {"name": "cats", "kind": "distinct_count", "of": "cat"},
                    ],
                }
            ],
            "time_since_previous": [{"name": "gap", "entity": "card"}],
        }
    )
    events = pd.DataFrame(
        {
            "id": [1, 2, 3, 4],
            "ts": START + pd.to_timedelta([0, 600, 300, 900], unit="s"),  # event 3 is late
            "card": ["x"] * 4,
            "amt": [1.0, 2.0, 9.0, 3.0],
            "cat": ["a", "b", "c", "b"],
            "y": [0, 0, 0, 0],
        }
    )
    got = replay(SpecOnlineEngine(spec), events, spec)
    assert [(r["n"], r["top"], r["cats"], r["gap"]) for r in got] == [
        (1.0, 1.0, 1.0, -1.0),
        (2.0, 2.0, 2.0, 600.0),
        (2.0, 9.0, 2.0, 300.0),  # the late one: events at 0 and itself
        (4.0, 9.0, 3.0, 300.0),
    ]
    assert_equal_rows(got, offline_truth(events, spec))


def test_labels_count_only_for_held_events_and_a_repeated_id_is_refused():
    spec = load_spec("handbook")
    engine = SpecOnlineEngine(spec)
    event = {
        "TRANSACTION_ID": 7,
        "TX_DATETIME": START,
        "CUSTOMER_ID": 1,
        "TERMINAL_ID": 2,
        "TX_AMOUNT": 10.0,
    }
    assert engine.feedback({8: 1}) == 0  # not held: dropped
    engine.observe(event)
    assert engine.feedback({7: 1}) == 1
    with pytest.raises(ValueError, match="already"):
        engine.observe(event)
    with pytest.raises(ValueError, match="0 or 1"):
        engine.feedback({7: 2})
    later = {**event, "TRANSACTION_ID": 9, "TX_DATETIME": START + pd.Timedelta(days=7)}
    assert engine.observe(later)["TERMINAL_ID_RISK_1DAY_WINDOW"] == 1.0


def _simulated(spec_name: str) -> tuple[DatasetSpec, pd.DataFrame]:
    spec = load_spec(spec_name)
    if spec_name == "handbook":
        raw = simulate_transactions(
            SimulationConfig(days=45, n_customers=150, n_terminals=200, seed=4)
        )
    else:
        config = CardSimulationConfig(days=45, n_cards=250, n_merchants=80, seed=4)
        raw = simulate_card_payments(config)
    return spec, prepare_events(raw, spec)


@pytest.mark.parametrize("spec_name", ["handbook", "cards"])
def test_shipped_specs_on_a_simulated_stream_equal_the_offline_engine(spec_name):
    spec, events = _simulated(spec_name)
    assert len(events) > 5_000
    engine = SpecOnlineEngine(spec)
    got = pd.DataFrame(replay(engine, events, spec, expire_every=86_400))
    expected = compute_spec_features(events, spec)
    assert (expected.filter(like="RISK").to_numpy() > 0).any() or spec_name == "cards"
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    # expiry kept the state to the reach: nothing older than 37 days is held after compaction
    engine.expire(event_second(events[spec.event_time.column].iloc[-1])[0] + 38 * 86_400)
    sizes = engine.size()
    assert all(held == 0 for name, held in sizes.items() if name != "ids")
    assert sizes["ids"] == 0


def test_event_times_as_datetimes_timestamps_and_aware_times():
    naive = dt.datetime(2024, 3, 1, 12, 0, 5)
    assert event_second(naive)[0] == event_second(pd.Timestamp(naive) + pd.Timedelta("0.9s"))[0]
    aware = pd.Timestamp("2024-03-01 13:00:05", tz="Europe/Paris")
    assert event_second(aware)[0] == event_second(naive)[0]


@given(
    st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2200, 1, 1)),
    st.integers(0, 999),
    st.sampled_from([None, "UTC", "Europe/Paris", "America/Caracas"]),
)
def test_an_event_second_is_its_nanoseconds_since_1970_floored(moment, nanos, zone):
    stamps = [moment, pd.Timestamp(moment) + pd.Timedelta(nanoseconds=nanos)]
    if zone is not None:
        stamps = [
            pd.Timestamp(s).tz_localize(zone, ambiguous=True, nonexistent="shift_forward")
            for s in stamps
        ]
    for stamp in stamps:
        nanoseconds = pd.Timestamp(stamp).value  # since 1970 in UTC, for aware ones too
        assert event_second(stamp)[0] == nanoseconds // 10**9


@given(
    st.lists(st.integers(-50, 50), min_size=1, max_size=80),
    st.lists(st.tuples(st.integers(0, 79), st.integers(0, 80)), max_size=30),
)
def test_structures_equal_the_plain_definitions(values, ranges):
    fenwick, tree = Fenwick(values[:3]), MaxTree([float(v) for v in values[:3]])
    for v in values[3:]:
        fenwick.append(v)
        tree.append(float(v))
    frontier = DistinctFrontier(values)
    for a, b in sorted(ranges, key=lambda r: r[1]):
        start, end = min(a, b, len(values)), min(max(a, b), len(values))
        assert fenwick.prefix(end) - fenwick.prefix(start) == sum(values[start:end])
        assert tree.query(start, end) == max(map(float, values[start:end]), default=-np.inf)
        assert frontier.count(start, end) == len(set(values[start:end]))
