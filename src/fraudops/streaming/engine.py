"""The online engine of any dataset spec: :func:`compute_spec_features`, one event at a time.

:class:`SpecOnlineEngine` keeps, per entity key (card, merchant, device...), that entity's
events in (time, arrival) order with pre-aggregated state, so a request costs O(log n) in the
entity's volume n, not O(n):

- **count**: two bisections on the entity's seconds;
- **sum / mean / ratio_to_mean**: exact running prefix sums of int64 micro-units (Python ints,
  :func:`fraudops.offline.engine.units`' rounding), a window sum is one subtraction;
- **max**: a segment tree over positions (:class:`~fraudops.streaming.structures.MaxTree`),
  O(log n) per append and per window (lagged windows end in the past, so a monotonic deque is
  not enough);
- **label_rate**: a Fenwick tree of the labels over positions: a label arriving after its
  event is one O(log n) update, a window one O(log n) range sum;
- **distinct_count**: per (lag, column) a frontier of last occurrences in a Fenwick tree
  (:class:`~fraudops.streaming.structures.DistinctFrontier`), O(log n) amortised per event;
- **time_since_previous**: the entity's event just before this one.

Features equal :func:`fraudops.offline.engine.compute_spec_features` of the events observed so
far, bit for bit (same float operations on the same exact integers): for the row just
observed, its windows ``(t - lag - w, t - lag]`` hold the entity's earlier-observed events (and
with lag 0 the event itself and earlier arrivals of the same second).

**Labels** (:meth:`SpecOnlineEngine.feedback`) count in ``label_rate`` only for events already
in the state; a label for an unknown (or expired) event id is dropped. Offline, the label
column is the truth for every row and the lag lets only rows at least one label delay old
count. So the online features equal the offline ones when the label of each event is fed
before any event at least one label delay later than it is observed (with a delay of 0: right
after its own event), which is how the service receives them; a label fed later than that is
simply missing from the windows it should have been in, as it would be for any live system.

**Late events** (earlier than the entity's newest event) are exact too: the event is inserted
at its place, which rebuilds that entity's structures, O(n) for that entity (rare). Events of
the same second keep their arrival order. Windows of events observed *before* a late one do
not change (they were scored already).

**Expiry**: :meth:`SpecOnlineEngine.expire` drops, per entity, events at or before
``watermark - reach`` (reach: the longest window + lag of that entity's blocks); features stay
exact for every event at or after the watermark (and for late events whose windows reach no
expired event). Expired events are cut lazily: an entity's lists are compacted (an O(n)
rebuild) once at least half of them is expired, so compaction is amortised O(1) per event. An
entity used by ``time_since_previous`` keeps the second of its last dropped event, so its gap
survives expiry. ``expire`` walks every entity and held id: call it periodically (e.g. once per
hour of event time), not per event.

**Thread safety**: no global lock. Each entity key's state has its own lock; ``observe``
takes the locks of the event's entities one at a time (never two at once: no deadlock), and
``feedback`` / ``expire`` likewise. Keys are added to or removed from the engine's dicts (ids,
entity states) under one short registry lock, never held together with an entity's lock, and
``expire`` / ``size`` copy a dict under it before iterating (CPython may switch threads inside
``list(d.items())``: seen as "dictionary changed size during iteration"). Two concurrent events
of one entity are ordered by that entity's lock (arrival order is the order in which they got
it).

**Redis**: :mod:`fraudops.streaming.redis_state` keeps the same state in Redis as tiles (per
entity and tile: count, exact sums, max, label count, distinct-value sets) plus the events of
each entity in a sorted set for the windows' edges; its features equal this engine's.
"""

from __future__ import annotations

import calendar
import datetime as dt
import threading
from bisect import bisect_left, bisect_right
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from fraudops.offline.engine import UNITS_PER_VALUE
from fraudops.spec.model import DatasetSpec, WindowFeature
from fraudops.streaming.labels import binary_label
from fraudops.streaming.structures import DistinctFrontier, Fenwick, MaxTree, running_sums

#: Events of one entity are keyed ``second * _SEQ + sequence`` (arrival order within a second).
_SEQ = 2**40


def event_second(value: Any) -> tuple[int, dt.datetime]:
    """(whole seconds since 1970, naive time) of an event time; sub-seconds are floored away.

    Naive datetimes and pandas Timestamps as they are; aware ones converted to UTC first.
    """
    stamp = value if isinstance(value, dt.datetime) else pd.Timestamp(value)
    if stamp.tzinfo is not None:
        stamp = pd.Timestamp(stamp).tz_convert("UTC").tz_localize(None)
    return calendar.timegm(stamp.timetuple()), stamp


def micro_units(value: float) -> int:
    """``value`` in exact micro-units, rounded half to even as :func:`~.offline.engine.units`."""
    return round(value * UNITS_PER_VALUE)


def pointwise_features(spec: DatasetSpec, event: Mapping[str, Any], stamp: dt.datetime) -> dict:
    """The features of ``event`` that need no state: numeric (as float) and categorical
    passthrough, then the calendar features of ``stamp`` (its naive time)."""
    out: dict[str, Any] = {}
    for numeric in spec.numeric:
        if numeric.feature:
            out[numeric.column] = float(event[numeric.column])
    for categorical in spec.categorical:
        if categorical.feature:
            out[categorical.column] = event[categorical.column]
    for feature in spec.calendar:
        hour = stamp.hour
        if feature.kind == "hour":
            out[feature.name] = float(hour)
        elif feature.kind == "weekend":
            out[feature.name] = float(stamp.weekday() >= 5)
        else:
            first, last = feature.hours
            night = first <= hour <= last if first <= last else hour >= first or hour <= last
            out[feature.name] = float(night)
    return out


def from_sum(kind: str, n: int, total_units: int, own: float) -> float:
    """``sum``, ``mean`` or ``ratio_to_mean`` of a window of ``n`` events whose values add up
    to ``total_units`` micro-units; ``own``: the event's value (for the ratio). An empty
    window has mean 0 and ratio 1.0, as offline."""
    total = float(total_units) / UNITS_PER_VALUE
    if kind == "sum":
        return total
    mean = total / float(n) if n else 0.0
    if kind == "mean":
        return mean
    return own / mean if mean > 0 else 1.0  # ratio_to_mean


@dataclass(frozen=True)
class _Block:
    lag: int
    #: (window seconds, ((feature name, feature), ...)) per window of the block.
    windows: tuple[tuple[int, tuple[tuple[str, WindowFeature], ...]], ...]


@dataclass(frozen=True)
class EntityPlan:
    """What one entity's states keep, from the spec's blocks and gaps on that entity
    (:func:`entity_plan`); shared by the in-process and the Redis state."""

    blocks: tuple[_Block, ...]
    sums: tuple[str, ...]
    maxes: tuple[str, ...]
    distinct: tuple[tuple[int, str], ...]
    values: tuple[str, ...]
    labels: bool
    gaps: tuple[str, ...]
    reach: int


def entity_plan(spec: DatasetSpec, entity: str) -> EntityPlan:
    """The :class:`EntityPlan` of ``entity`` (a name in ``spec.entities``)."""
    blocks, sums, maxes, distinct = [], set(), set(), set()
    labels, reach = False, 0
    for agg in spec.aggregations:
        if agg.entity != entity:
            continue
        lag = agg.lag_seconds(spec.label.delay)
        reach = max(reach, max(agg.windows) + lag)
        by_window: dict[int, list[tuple[str, WindowFeature]]] = {}
        for name, width, feature in agg.names():
            by_window.setdefault(width, []).append((name, feature))
            if feature.kind in {"sum", "mean", "ratio_to_mean"}:
                sums.add(feature.of or "")
            elif feature.kind == "max":
                maxes.add(feature.of or "")
            elif feature.kind == "distinct_count":
                distinct.add((lag, feature.of or ""))
            elif feature.kind == "label_rate":
                labels = True
        blocks.append(_Block(lag, tuple((w, tuple(f)) for w, f in by_window.items())))
    gaps = tuple(t.name for t in spec.time_since_previous if t.entity == entity)
    values = sums | maxes | {column for _, column in distinct}
    return EntityPlan(
        tuple(blocks),
        tuple(sorted(sums)),
        tuple(sorted(maxes)),
        tuple(sorted(distinct)),
        tuple(sorted(values)),
        labels,
        gaps,
        reach,
    )


class _EntityState:
    """One entity key's events in (second, arrival) order and their structures."""

    __slots__ = (
        "dead",
        "dropped_last",
        "frauds",
        "frontiers",
        "ids",
        "keys",
        "labels",
        "lock",
        "maxes",
        "next_seq",
        "plan",
        "seconds",
        "sums",
        "values",
    )

    def __init__(self, plan: EntityPlan) -> None:
        self.plan = plan
        self.lock = threading.Lock()
        self.dead = False  # expired and removed from its dict: writers take a fresh state
        self.next_seq = 0
        self.dropped_last: int | None = None  # second of the newest expired event
        self.keys: list[int] = []
        self.seconds: list[int] = []
        self.ids: list[Hashable] = []
        self.labels: list[int] = []
        self.values: dict[str, list[Any]] = {column: [] for column in plan.values}
        self._rebuild()

    def _rebuild(self) -> None:
        plan, values = self.plan, self.values
        self.sums = {c: running_sums([micro_units(v) for v in values[c]]) for c in plan.sums}
        self.maxes = {c: MaxTree(values[c]) for c in plan.maxes}
        self.frauds = Fenwick(self.labels) if plan.labels else None
        self.frontiers = {(lag, c): DistinctFrontier(values[c]) for lag, c in plan.distinct}

    def insert(self, second: int, event_id: Hashable, row: Mapping[str, Any]) -> tuple[int, int]:
        """Insert an event; (its position, its key). O(log n), O(n) when late."""
        key = second * _SEQ + self.next_seq
        self.next_seq += 1
        if not self.seconds or second >= self.seconds[-1]:
            self.keys.append(key)
            self.seconds.append(second)
            self.ids.append(event_id)
            for column, held in self.values.items():
                held.append(row[column])
            for column, sums in self.sums.items():
                sums.append(sums[-1] + micro_units(row[column]))
            for column, tree in self.maxes.items():
                tree.append(row[column])
            if self.frauds is not None:
                self.labels.append(0)
                self.frauds.append(0)
            return len(self.keys) - 1, key
        position = bisect_right(self.seconds, second)  # after its second's earlier arrivals
        self.keys.insert(position, key)
        self.seconds.insert(position, second)
        self.ids.insert(position, event_id)
        for column, held in self.values.items():
            held.insert(position, row[column])
        if self.plan.labels:
            self.labels.insert(position, 0)
        self._rebuild()
        return position, key

    def set_label(self, key: int, label: int) -> bool:
        """Record the label of the event keyed ``key``; False if it is not held."""
        position = bisect_left(self.keys, key)
        if self.frauds is None or position == len(self.keys) or self.keys[position] != key:
            return False
        self.frauds.add(position, label - self.labels[position])
        self.labels[position] = label
        return True

    def features(self, position: int, second: int, row: Mapping[str, Any], out: dict) -> None:
        """Window and gap features of the event at ``position`` into ``out``."""
        seconds = self.seconds
        for block in self.plan.blocks:
            lag = block.lag
            end = position + 1 if lag == 0 else bisect_right(seconds, second - lag)
            for width, features in block.windows:
                start = min(bisect_right(seconds, second - lag - width), end)
                n = end - start
                for name, feature in features:
                    out[name] = self._aggregate(feature, lag, start, end, n, row)
        for name in self.plan.gaps:
            previous = seconds[position - 1] if position else self.dropped_last
            out[name] = -1.0 if previous is None else float(second - previous)

    def _aggregate(
        self, feature: WindowFeature, lag: int, start: int, end: int, n: int, row: Mapping
    ) -> float:
        kind, column = feature.kind, feature.of or ""
        if kind == "count":
            return float(n)
        if kind == "max":
            return self.maxes[column].query(start, end) if n else 0.0
        if kind == "distinct_count":
            return float(self.frontiers[lag, column].count(start, end))
        if kind == "label_rate":
            assert self.frauds is not None
            frauds = self.frauds.prefix(end) - self.frauds.prefix(start)
            return float(frauds) / float(n) if n else 0.0
        sums = self.sums[column]
        return from_sum(kind, n, sums[end] - sums[start], row[column])

    def expire(self, cut: int) -> list[Hashable]:
        """Forget events at or before ``cut`` (lazily, see the module docstring); their ids."""
        k = bisect_right(self.seconds, cut)
        if k == 0 or 2 * k < len(self.seconds):  # k == n (all expired) passes
            return []
        dropped = self.ids[:k]
        self.dropped_last = self.seconds[k - 1]
        del self.keys[:k], self.seconds[:k], self.ids[:k], self.labels[:k]
        for held in self.values.values():
            del held[:k]
        self._rebuild()
        return dropped


class SpecOnlineEngine:
    """In-memory online features of ``spec``; see the module docstring.

    Args:
        spec: the dataset spec; its feature names are the output's keys, in order.
    """

    def __init__(self, spec: DatasetSpec) -> None:
        self.spec = spec
        self._names = spec.feature_names()
        used = [agg.entity for agg in spec.aggregations]
        used += [t.entity for t in spec.time_since_previous]
        self._plans = {name: entity_plan(spec, name) for name in dict.fromkeys(used)}
        self._columns = {name: spec.entity(name).column for name in self._plans}
        self._numeric = {n.column for n in spec.numeric}
        self._states: dict[str, dict[Hashable, _EntityState]] = {e: {} for e in self._plans}
        #: event id -> (entity, entity key, event key) of each state holding it; a tuple once
        #: observed: a tuple of atoms leaves the garbage collector's tracking, a list does not,
        #: and these are most of a long-lived state's objects (each full collection walks them)
        self._events: dict[Hashable, Sequence[tuple[str, Hashable, int]]] = {}
        self._seconds: dict[Hashable, int] = {}
        #: Guards the dicts' structure (new or removed keys) against readers that iterate them
        #: (expire, size): CPython may switch threads inside ``list(d.items())``.
        self._registry = threading.Lock()
        self._longest = spec.longest_reach()

    def observe(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """Features of ``event`` (the spec's raw columns), then record it in the state.

        Returns:
            ``spec.feature_names()`` → value: floats, categorical columns passed through.

        Raises:
            KeyError: a spec column is missing (nothing is recorded).
            ValueError: the event id is already held (nothing is recorded).
        """
        return self._features(event, insert=True)

    def replay(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """Features of an event already held (a retry), at its place; nothing is recorded.

        Equal to what :meth:`observe` returned for it, unless a late event was inserted
        before it since.

        Raises:
            KeyError: its id is not held (or a spec column is missing).
        """
        return self._features(event, insert=False)

    def holds(self, event_id: Hashable) -> bool:
        """Whether the event id is in the state (observed and not expired)."""
        return event_id in self._events

    def _features(self, event: Mapping[str, Any], *, insert: bool) -> dict[str, Any]:
        spec = self.spec
        event_id = event[spec.event_id.column]
        second, stamp = event_second(event[spec.event_time.column])
        row = {
            column: float(event[column]) if column in self._numeric else event[column]
            for plan in self._plans.values()
            for column in plan.values
        }
        keys = {name: event[column] for name, column in self._columns.items()}
        out = pointwise_features(spec, event, stamp)
        if not insert:
            for name, key, event_key in self._events[event_id]:
                state = self._states[name][key]
                with state.lock:
                    position = bisect_left(state.keys, event_key)
                    state.features(position, second, row, out)
            return {name: out[name] for name in self._names}
        held: list[tuple[str, Hashable, int]] = []
        with self._registry:
            if self._events.setdefault(event_id, held) is not held:
                raise ValueError(f"event id {event_id!r} is already in the online state")
            self._seconds[event_id] = second
        for name, plan in self._plans.items():
            key, states = keys[name], self._states[name]
            while True:
                state = states.get(key) or self._add_state(states, key, plan)
                with state.lock:
                    if state.dead:
                        continue
                    position, event_key = state.insert(second, event_id, row)
                    state.features(position, second, row, out)
                    break
            held.append((name, key, event_key))
        with self._registry:
            if self._events.get(event_id) is held:  # not expired meanwhile
                self._events[event_id] = tuple(held)
        return {name: out[name] for name in self._names}

    def load(self, events: pd.DataFrame) -> int:
        """Bulk-load a history into an empty engine: as :meth:`observe` row by row (then
        :meth:`feedback` of the label column, when present) but without computing features,
        O(n log n) in all.

        Args:
            events: prepared events (:func:`fraudops.spec.data.prepare_events`): the spec's
                raw columns, unique ids, sorted by time then id.

        Returns:
            Rows loaded.

        Raises:
            ValueError: the engine already holds events.
        """
        if self._events:
            raise ValueError("load needs an empty engine; observe events one by one instead")
        spec = self.spec
        id_array = events[spec.event_id.column].to_numpy()
        ids = id_array.tolist()
        stamps = pd.to_datetime(events[spec.event_time.column]).to_numpy()
        second_array = stamps.astype("datetime64[s]").astype("int64")
        label = spec.label.column
        label_array = (
            events[label].to_numpy(dtype="int64") if label in events else np.zeros(len(ids), int)
        )
        held: dict[Hashable, list[tuple[str, Hashable, int]]] = {i: [] for i in ids}
        for name, plan in self._plans.items():
            columns = {
                c: events[c].to_numpy(dtype=float if c in self._numeric else object)
                for c in plan.values
            }
            states = self._states[name]
            for raw_key, rows in events.groupby(self._columns[name], sort=False).indices.items():
                key = raw_key.item() if hasattr(raw_key, "item") else raw_key
                state = states.setdefault(key, _EntityState(plan))
                state.seconds = second_array[rows].tolist()
                state.keys = [second * _SEQ + n for n, second in enumerate(state.seconds)]
                state.next_seq = len(rows)
                state.ids = id_array[rows].tolist()
                state.labels = label_array[rows].tolist() if plan.labels else []
                state.values = {c: v[rows].tolist() for c, v in columns.items()}
                state._rebuild()
                for event_id, event_key in zip(state.ids, state.keys, strict=True):
                    held[event_id].append((name, key, event_key))
        self._events.update((event_id, tuple(states)) for event_id, states in held.items())
        self._seconds.update(zip(ids, second_array.tolist(), strict=True))
        return len(ids)

    def _add_state(
        self, states: dict[Hashable, _EntityState], key: Hashable, plan: EntityPlan
    ) -> _EntityState:
        with self._registry:
            return states.setdefault(key, _EntityState(plan))

    def feedback(self, labels: Mapping[Hashable, int]) -> int:
        """Record labels (event id → 0/1) of events in the state; returns how many were held.

        A label counts in ``label_rate`` once its event is inside a (lagged) window; a label
        of an event not (or no longer) held is dropped. See the module docstring for when
        labels must arrive for the features to equal the offline ones.
        """
        applied = 0
        for event_id, label in labels.items():
            binary_label(event_id, label)
            held = self._events.get(event_id)
            if held is None:
                continue
            applied += 1
            for name, key, event_key in held:
                state = self._states[name].get(key)
                if state is not None:
                    with state.lock:
                        state.set_label(event_key, int(label))
        return applied

    def expire(self, watermark_seconds: int) -> int:
        """Drop what no event at or after ``watermark_seconds`` needs; returns ids forgotten."""
        for name, plan in self._plans.items():
            states = self._states[name]
            cut = watermark_seconds - plan.reach
            with self._registry:
                held_states = list(states.items())
            for key, state in held_states:
                with state.lock:
                    state.expire(cut)
                    if not state.seconds and not plan.gaps:
                        state.dead = True
                        with self._registry:
                            states.pop(key, None)
        cut = watermark_seconds - self._longest
        with self._registry:  # every new id takes this lock: held for a copy of the ids
            held = list(self._seconds)
        second_of = self._seconds.get  # one lookup is atomic; a pass over the dict is not
        old = [i for i in held if (second := second_of(i)) is not None and second <= cut]
        with self._registry:
            for event_id in old:
                self._seconds.pop(event_id, None)
                self._events.pop(event_id, None)
        return len(old)

    def size(self) -> dict[str, int]:
        """Events held per entity (expired ones not yet compacted included) and ids held.

        Safe while other threads observe (each dict is copied under the registry lock)."""
        sizes = {}
        for name, states in self._states.items():
            with self._registry:
                held = list(states.values())
            sizes[name] = sum(len(s.seconds) for s in held)
        return {**sizes, "ids": len(self._events)}
