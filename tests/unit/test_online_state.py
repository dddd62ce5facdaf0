"""The service's online state of any spec: exact features behind the clock and the id rules.

Each behaviour is checked on both stores: in process (:class:`OnlineState`) and in Redis
(:class:`RedisOnlineState`, integration tier: Redis on 127.0.0.1:6379, one key prefix per test,
deleted afterwards).
"""

from __future__ import annotations

import datetime as dt
import gc
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest

from fraudops.data.card_simulator import CardSimulationConfig, simulate_card_payments
from fraudops.data.simulator import SimulationConfig, simulate_transactions
from fraudops.logs.records import LabelRecord
from fraudops.offline.engine import compute_spec_features
from fraudops.spec import load_spec
from fraudops.spec.data import prepare_events
from fraudops.spec.model import DatasetSpec
from fraudops.streaming.clock import AHEAD, CONFLICT, TOO_OLD, EventRefused
from fraudops.streaming.labels import DOWNGRADE, UNKNOWN, LabelRefused, LabelsApplied
from fraudops.streaming.redis_state import RedisOnlineState
from fraudops.streaming.state import OnlineState, shortest_reach

DAY = 86_400
#: a database of its own: these tests compare the database's key count (``size()["keys"]``),
#: which Redis tests of other files, run beside them on the other xdist worker, would change
REDIS_URL = "redis://127.0.0.1:6379/14"
State = OnlineState | RedisOnlineState


@pytest.fixture(
    params=[
        pytest.param("memory", marks=pytest.mark.unit),
        pytest.param("redis", marks=pytest.mark.integration),
    ]
)
def make_state(request) -> Iterator[Callable[[DatasetSpec, int], State]]:
    """A factory of fresh, empty states of one store kind (Redis keys deleted afterwards)."""
    made: list[RedisOnlineState] = []

    def make(spec: DatasetSpec, skew: int) -> State:
        if request.param == "memory":
            return OnlineState(spec, skew)
        state = RedisOnlineState(spec, REDIS_URL, skew, prefix=f"test-{uuid.uuid4().hex[:8]}")
        made.append(state)
        return state

    yield make
    for state in made:
        state.clear()


def simulated(spec_name: str, days: int = 60) -> tuple[DatasetSpec, pd.DataFrame]:
    spec = load_spec(spec_name)
    if spec_name == "handbook":
        raw = simulate_transactions(
            SimulationConfig(days=days, n_customers=150, n_terminals=200, seed=7)
        )
    else:
        raw = simulate_card_payments(
            CardSimulationConfig(days=days, n_cards=250, n_merchants=80, seed=7)
        )
    return spec, prepare_events(raw, spec)


def events_of(frame: pd.DataFrame, spec: DatasetSpec) -> list[dict[str, Any]]:
    """Rows as the API hands them to the state: raw columns, Python values, no label."""
    columns = spec.raw_columns()
    out = frame[columns].to_dict("records")
    for row in out:
        row[spec.event_time.column] = row[spec.event_time.column].to_pydatetime()
    return out


def feed(state: State, frame: pd.DataFrame, spec: DatasetSpec, batch: int) -> pd.DataFrame:
    """Score ``frame`` in requests of ``batch`` rows, labels fed after each request."""
    got: list[dict[str, Any]] = []
    label, ident = spec.label.column, spec.event_id.column
    for start in range(0, len(frame), batch):
        part = frame.iloc[start : start + batch]
        got += state.observe_many(events_of(part, spec))
        state.feedback(dict(zip(part[ident], part[label].astype(int), strict=True)))
    return pd.DataFrame(got, index=frame.index)


@pytest.mark.parametrize(("spec_name", "batch"), [("handbook", 1), ("cards", 37)])
def test_warmed_then_scored_events_equal_the_offline_features(spec_name, batch, make_state):
    spec, events = simulated(spec_name)
    cut = events[spec.event_time.column].min() + pd.Timedelta(days=45)
    history = events[events[spec.event_time.column] < cut]
    live = events.iloc[len(history) : len(history) + 1500]
    state = make_state(spec, DAY)
    assert state.warm_up(history) == len(history)
    got = feed(state, live, spec, batch)
    expected = compute_spec_features(events, spec).iloc[len(history) : len(history) + len(live)]
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    if spec_name == "cards":
        assert isinstance(got["mcc"].iloc[0], str)
        assert isinstance(live[spec.event_id.column].iloc[0], str)  # text ids


def test_one_request_dated_two_months_ahead_is_refused_and_changes_no_later_feature(make_state):
    spec, events = simulated("handbook")
    half = len(events) // 2
    state = make_state(spec, DAY)
    state.warm_up(events.iloc[:half])
    future = events_of(events.iloc[[half]], spec)[0]
    future = {**future, "TRANSACTION_ID": 10**9, "TX_DATETIME": future["TX_DATETIME"]}
    future["TX_DATETIME"] += pd.Timedelta(days=61)
    with pytest.raises(EventRefused, match=r"tx_datetime .* ahead of") as refused:
        state.observe_many([future])
    assert refused.value.reason == AHEAD
    live = events.iloc[half : half + 2000]
    got = feed(state, live, spec, 50)
    expected = compute_spec_features(events, spec).iloc[half : half + 2000]
    pd.testing.assert_frame_equal(got, expected, check_exact=True)


def test_a_retry_is_counted_once_and_gets_the_originals_features(make_state):
    spec, events = simulated("cards", days=20)
    state = make_state(spec, DAY)
    state.warm_up(events.iloc[:3000])
    first = events_of(events.iloc[3000:3001], spec)
    original = state.observe_many(first)
    size = state.size()
    assert state.observe_many(first) == original
    assert state.size() == size
    next_row = events_of(events.iloc[3001:3002], spec)
    truth = compute_spec_features(events, spec).iloc[3001].to_dict()
    assert state.observe_many(next_row)[0] == truth


def test_a_retry_after_a_same_second_event_still_gets_the_originals_features(make_state):
    spec, events = simulated("cards", days=20)
    state = make_state(spec, DAY)
    state.warm_up(events.iloc[:3000])
    first = events_of(events.iloc[3000:3001], spec)[0]
    same_second = {**first, "tx_id": "same-second", "amount": 2.5}  # same card, same time
    original = state.observe_many([first])[0]
    assert state.observe_many([same_second])[0]["card_tx_1h"] == original["card_tx_1h"] + 1
    assert state.observe_many([first]) == [original]


@pytest.mark.unit
def test_a_retry_sent_while_its_original_request_is_computed_waits_for_it():
    spec, events = simulated("cards", days=20)
    state = OnlineState(spec, DAY)
    state.warm_up(events.iloc[:3000])
    request = events_of(events.iloc[3000:3003], spec)
    observe_many = state.engine.observe_many
    computing, go_on = threading.Event(), threading.Event()

    def slow_observe_many(batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        computing.set()
        go_on.wait(30)
        return observe_many(batch)

    state.engine.observe_many = slow_observe_many  # type: ignore[method-assign]
    answers: dict[str, list[dict[str, Any]]] = {}
    original = threading.Thread(target=lambda: answers.update(original=state.observe_many(request)))
    retry = threading.Thread(target=lambda: answers.update(retry=state.observe_many(request[1:2])))
    original.start()
    assert computing.wait(30)
    retry.start()
    retry.join(0.5)
    assert retry.is_alive()  # the retry waits: its id is not computed yet
    go_on.set()
    original.join(30)
    retry.join(30)
    assert answers["retry"] == answers["original"][1:2]


@pytest.mark.unit
def test_a_retry_of_an_id_its_failed_request_never_computed_is_observed_without_waiting(
    monkeypatch,
):
    import fraudops.streaming.state as state_module

    monkeypatch.setattr(state_module, "RETRY_WAIT_SECONDS", 600.0)
    spec, events = simulated("cards", days=20)
    state = OnlineState(spec, DAY)
    state.warm_up(events.iloc[:3000])
    request = events_of(events.iloc[3000:3003], spec)
    observe_many = state.engine.observe_many

    def failing_observe_many(batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        observe_many(batch[:1])
        raise RuntimeError("the store failed mid-request")

    state.engine.observe_many = failing_observe_many  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="mid-request"):
        state.observe_many(request)
    state.engine.observe_many = observe_many  # type: ignore[method-assign]
    outcome: list[Any] = []
    retrying = threading.Thread(
        target=lambda: outcome.append(state.observe_many(request[1:3])), daemon=True
    )
    retrying.start()
    retrying.join(30)
    assert not retrying.is_alive() and len(outcome) == 1
    ident = spec.event_id.column
    assert all(state.engine.holds(event[ident]) for event in request)
    expected = compute_spec_features(events.iloc[:3003], spec).iloc[3001:3003]
    got = pd.DataFrame(outcome[0], index=expected.index)
    pd.testing.assert_frame_equal(got, expected, check_exact=True)


def test_an_id_reused_with_other_values_refuses_the_whole_request_naming_the_fields(make_state):
    spec, events = simulated("cards", days=20)
    state = make_state(spec, DAY)
    state.warm_up(events.iloc[:3000])
    before = state.size()
    rows = events_of(events.iloc[3000:3003], spec)
    reused = {**rows[2], "tx_id": events["tx_id"].iloc[10], "amount": 1.0}
    with pytest.raises(EventRefused) as refused:
        state.observe_many([rows[0], rows[1], reused])
    assert refused.value.reason == CONFLICT and refused.value.index == 2
    assert refused.value.field == "tx_id"
    assert "amount" in refused.value.differs and "tx_time" in refused.value.differs
    assert state.size() == before  # rows 0 and 1 did not go in either
    expected = compute_spec_features(events, spec).iloc[3000:3003]
    got = pd.DataFrame(state.observe_many(rows), index=expected.index)
    pd.testing.assert_frame_equal(got, expected, check_exact=True)


def test_an_event_older_than_the_shortest_reach_is_refused(make_state):
    spec, events = simulated("handbook", days=40)
    state = make_state(spec, DAY)
    state.warm_up(events)
    assert state.rule.retention == shortest_reach(spec) == 30 * DAY
    old = events_of(events.iloc[[0]], spec)[0]
    newest = events["TX_DATETIME"].max()
    old.update(TRANSACTION_ID=-1, TX_DATETIME=(newest - pd.Timedelta(days=31, hours=1)))
    with pytest.raises(EventRefused, match="older than the online state's retention") as refused:
        state.observe_many([old])
    assert refused.value.reason == TOO_OLD


def test_expiry_bounds_the_state_to_the_reach(make_state):
    spec, events = simulated("handbook", days=120)
    state = make_state(spec, DAY)
    state.warm_up(events.iloc[: len(events) // 4])
    feed(state, events.iloc[len(events) // 4 :], spec, 500)
    newest = events["TX_DATETIME"].max()
    reach = pd.Timedelta(seconds=spec.longest_reach() + 3 * DAY)  # + skew + lazy compaction
    held = (events["TX_DATETIME"] > newest - reach).sum()
    assert state.size()["ids"] <= held < len(events) / 2


def test_concurrent_requests_on_other_entities_get_exact_features(make_state):
    spec, events = simulated("handbook", days=20)
    state = make_state(spec, DAY)
    half = len(events) // 2
    state.warm_up(events.iloc[:half])
    live = events.iloc[half : half + 1200]
    cards = live["CUSTOMER_ID"].unique()
    groups = [live[live["CUSTOMER_ID"].isin(cards[i::4])] for i in range(4)]
    # terminal windows end one label delay back: every thread sees the same terminal state
    results: dict[int, list[dict[str, Any]]] = {}

    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            results[i] = [
                state.observe_many(events_of(groups[i].iloc[[j]], spec))[0]
                for j in range(len(groups[i]))
            ]
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    truth = compute_spec_features(events, spec)
    for i, group in enumerate(groups):
        got = pd.DataFrame(results[i], index=group.index)
        card_columns = [c for c in got if c.startswith("CUSTOMER")]
        np.testing.assert_array_equal(got[card_columns], truth.loc[group.index, card_columns])


@pytest.mark.unit
def test_size_and_expiry_walk_the_state_while_another_thread_adds_entities():
    spec, events = simulated("cards", days=20)
    state = OnlineState(spec, skew=DAY)
    rows = events_of(events.iloc[:6000], spec)
    failures: list[BaseException] = []
    done = threading.Event()

    def gauges() -> None:  # as the service's gauge thread reads it, and a request expires
        while not done.is_set():
            try:
                state.size()
                state.engine.expire(0)  # walks every entity and id, drops nothing
            except BaseException as exc:
                failures.append(exc)
                return

    reader = threading.Thread(target=gauges)
    reader.start()
    try:
        for row in rows:
            state.observe_many([row])
    finally:
        done.set()
        reader.join()
    assert failures == []
    assert state.size()["ids"] == len(rows)


@pytest.mark.unit
def test_expiry_looks_up_only_the_forgotten_ids_while_it_holds_the_admission_lock():
    """Every request's admission takes the state's lock: an expiry must not hold it for a
    pass over every id held (hundreds of thousands in a service), only for those it forgets."""
    spec, events = simulated("handbook", days=90)
    state = OnlineState(spec, skew=DAY)
    first = len(events) // 2
    state.warm_up(events.iloc[:first])
    lookups_locked = 0
    holds = state.engine.holds

    def counting(event_id: Any) -> bool:
        nonlocal lookups_locked
        lookups_locked += state._lock.locked()
        return holds(event_id)

    state.engine.holds = counting  # type: ignore[method-assign]
    before = len(state._prints)
    feed(state, events.iloc[first:], spec, 1000)
    forgotten = before + (len(events) - first) - len(state._prints)
    assert forgotten > 0
    assert lookups_locked <= forgotten


@pytest.mark.unit
def test_an_id_the_engine_forgot_while_its_request_ran_is_forgotten_at_a_later_expiry():
    spec, events = simulated("handbook", days=90)
    state = OnlineState(spec, skew=DAY)
    third = len(events) // 3
    state.warm_up(events.iloc[:third])
    oldest = events.iloc[0][spec.event_id.column]
    state._done[oldest] = threading.Event()  # as if its request were still being observed
    feed(state, events.iloc[third : 2 * third], spec, 1000)
    assert not state.engine.holds(oldest) and oldest in state._prints  # kept while it runs
    del state._done[oldest]  # the request ended
    feed(state, events.iloc[2 * third :], spec, 1000)
    assert oldest not in state._prints


@pytest.mark.unit
def test_a_label_of_an_event_still_being_observed_is_recorded_at_every_entity():
    spec, events = simulated("handbook", days=20)
    state = OnlineState(spec, skew=DAY)
    half = len(events) // 2
    state.warm_up(events.iloc[:half])
    event = events_of(events.iloc[[half]], spec)[0]
    event_id = event[spec.event_id.column]
    started, release = threading.Event(), threading.Event()
    observe = state.engine.observe_many

    def slow(batch: Any) -> Any:  # the request is admitted, its entities not inserted yet
        started.set()
        release.wait(5)
        return observe(batch)

    state.engine.observe_many = slow  # type: ignore[method-assign]
    request = threading.Thread(target=state.observe_many, args=([event],))
    request.start()
    started.wait(5)
    label = LabelRecord(event_id, 1, dt.datetime(2030, 1, 1))
    feedback = threading.Thread(target=state.apply_labels, args=([label],))
    feedback.start()
    threading.Timer(0.3, release.set).start()
    request.join(10)
    feedback.join(10)
    held = state.engine._events[event_id]
    assert len(held) == len(spec.entities)
    labelled = [
        (name, state.engine._states[name][key], event_key)
        for name, key, event_key in held
        if state.engine._states[name][key].frauds is not None  # entities with a label rate
    ]
    assert labelled
    for name, entity, event_key in labelled:
        assert entity.labels[entity.position(event_key)] == 1, name


@pytest.mark.unit
def test_the_ids_held_leave_the_garbage_collectors_tracking():
    """A full collection walks every tracked object (a second-long pause with a million): the
    per-id bookkeeping of warmed and observed events must not be among them."""
    spec, events = simulated("cards", days=20)
    state = OnlineState(spec, skew=DAY)
    half = len(events) // 2
    state.warm_up(events.iloc[:half])
    state.observe_many(events_of(events.iloc[half : half + 300], spec))
    gc.collect()
    gc.collect()  # a tuple is untracked once its items are: nested ones take two passes
    held = list(state.engine._events.values())
    assert len(held) > 300
    assert not any(gc.is_tracked(entry) for entry in held)


# --- the label rules of /feedback (fraudops.streaming.labels), on both stores ---------------


def labelled_state(make_state) -> tuple[State, DatasetSpec, pd.DataFrame]:
    """A state warmed with 20 days of history, then 30 events scored."""
    spec, frame = simulated("handbook", days=21)
    times = frame[spec.event_time.column]
    cut = times.min() + pd.Timedelta(days=20)
    state = make_state(spec, DAY)
    state.warm_up(frame[times < cut])
    live = frame[times >= cut].head(30)
    state.observe_many(events_of(live, spec))
    return state, spec, live


def label(event_id: Any, is_fraud: int, **flags: bool) -> LabelRecord:
    return LabelRecord(event_id, is_fraud, dt.datetime(2018, 6, 1), **flags)


def test_labels_of_scored_or_warmed_ids_are_recorded_and_unknown_ids_refused_whole(make_state):
    state, spec, live = labelled_state(make_state)
    scored = [int(i) for i in live[spec.event_id.column]]
    with pytest.raises(LabelRefused) as refused:
        state.apply_labels([label(scored[0], 1), label(999_999_999, 1)])
    assert (refused.value.index, refused.value.reason) == (1, UNKNOWN)
    # nothing of the refused request counted: the fraud of scored[0] can still be cleared
    state.apply_labels([label(scored[0], 0)])
    applied = state.apply_labels([label(scored[1], 1), label(999_999_999, 1, external=True)])
    assert applied == LabelsApplied(held=1, external=1)


def test_a_confirmed_fraud_is_downgraded_only_with_a_correction(make_state):
    state, spec, live = labelled_state(make_state)
    event = int(live[spec.event_id.column].iloc[3])
    state.apply_labels([label(event, 1)])
    with pytest.raises(LabelRefused) as refused:
        state.apply_labels([label(event, 0)])
    assert refused.value.reason == DOWNGRADE and "confirmed fraud" in str(refused.value)
    with pytest.raises(LabelRefused):  # a fraud and a clear for one id in one request
        state.apply_labels([label(event, 1), label(event, 0)])
    assert state.apply_labels([label(event, 0, correction=True)]) == LabelsApplied(1, 0)
    assert state.apply_labels([label(event, 0)]) == LabelsApplied(1, 0)


def test_a_fraud_of_the_warm_up_history_is_confirmed_too(make_state):
    spec, frame = simulated("handbook", days=21)
    state = make_state(spec, DAY)
    state.warm_up(frame)
    fraud = int(frame.loc[frame[spec.label.column] == 1, spec.event_id.column].iloc[-1])
    with pytest.raises(LabelRefused, match="confirmed fraud"):
        state.apply_labels([label(fraud, 0)])


def test_labels_by_arrival_count_from_their_arrival_after_a_warm_up(make_state):
    """A fraud label known after the warm-up history ends is left out of the warmed state and
    counts from the moment the label feed brings it, as offline with ``label.known_at``."""
    handbook = load_spec("handbook").model_dump()
    handbook["label"]["known_at"] = "KNOWN_AT"
    for block in handbook["aggregations"]:
        if any(f["kind"] == "label_rate" for f in block["features"]):
            block["lag"] = "label_arrival"
    spec = DatasetSpec.model_validate(handbook)
    _, events = simulated("handbook")
    rng = np.random.default_rng(3)
    times = events[spec.event_time.column]
    analyst = (events[spec.label.column] == 1) & (rng.random(len(events)) < 0.5)
    events["KNOWN_AT"] = times.where(analyst) + pd.Timedelta(hours=2)
    cut = times.min() + pd.Timedelta(days=45)
    history = events[times < cut]
    live = events.iloc[len(history) : len(history) + 1500]
    state = make_state(spec, DAY)
    state.warm_up(history)
    frauds = events[events[spec.label.column] == 1]
    known = frauds["KNOWN_AT"].fillna(frauds[spec.event_time.column] + pd.Timedelta(days=7))
    waiting = sorted(
        (k, i) for k, i in zip(known, frauds[spec.event_id.column], strict=True) if k >= cut
    )
    got = []
    for event in events_of(live, spec):
        arrived = [i for k, i in waiting if k <= event[spec.event_time.column]]
        if arrived:
            state.feedback(dict.fromkeys(arrived, 1))
            waiting = waiting[len(arrived) :]
        got += state.observe_many([event])
    expected = compute_spec_features(events, spec).iloc[len(history) : len(history) + len(live)]
    got = pd.DataFrame(got, index=live.index)
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    risk = got.filter(like="RISK_1DAY")
    assert (risk.to_numpy() > 0).any()  # the analysts' labels reached the one-day windows
