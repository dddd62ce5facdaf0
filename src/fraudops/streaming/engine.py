"""The online engine of any dataset spec: :func:`compute_spec_features`, event by event.

:class:`SpecOnlineEngine` keeps, per entity key (card, merchant, device...), that entity's
events in (time, arrival) order with pre-aggregated state, so a request costs O(log n) in the
entity's volume n, not O(n):

- **count**: two bisections on the entity's seconds;
- **sum / mean / ratio_to_mean**: exact running prefix sums of micro-units
  (:func:`fraudops.offline.engine.units`' rounding; int64, Python ints once a running sum
  leaves int64), a window sum is one subtraction;
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
expired event). Expired events are cut lazily: an entity's arrays are compacted (an O(n)
rebuild) once at least half of them is expired, so compaction is amortised O(1) per event. An
entity used by ``time_since_previous`` keeps the second of its last dropped event, so its gap
survives expiry. Event ids are filed by day of event time, so forgetting them costs what is
forgotten (plus one day's ids), not every id held; ``expire`` still walks every entity key:
call it periodically (e.g. once per day of event time), not per event.

**Requests of many events** (:meth:`SpecOnlineEngine.observe_many`) give what observing them
one by one gives: each entity key's events of the request are inserted under one acquisition
of its lock, each event's raw window aggregates gathered right after its own insertion, and
the features written from them after the locks are released (:mod:`fraudops.streaming.entity`).

**Thread safety**: no global lock. Each entity key's state has its own lock; ``observe_many``
takes the locks of the request's entity keys one at a time (never two at once: no deadlock), and
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

import datetime as dt
import threading
from array import array
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from fraudops.spec.model import DatasetSpec
from fraudops.streaming.clock import naive, to_seconds
from fraudops.streaming.entity import (
    SEQ,
    EntityState,
    entity_plan,
    layout_of,
    micro_units,
    new_ids,
    new_values,
    write_features,
)
from fraudops.streaming.labels import binary_label
from fraudops.streaming.structures import Ints, appended

#: Ids are filed by day of event time, so expiry visits only the days it drops.
_DAY = 86_400
#: (event id, second, values the states keep, pointwise features, entity keys) of an event.
_Prepared = tuple[Hashable, int, dict[str, Any], dict[str, Any], tuple[Hashable, ...]]


def event_second(value: Any) -> tuple[int, dt.datetime]:
    """(whole seconds since 1970, naive time) of an event time; sub-seconds are floored away.

    Naive datetimes and pandas Timestamps as they are; aware ones converted to UTC first.
    """
    stamp = naive(value)
    return to_seconds(stamp), stamp


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
        self._layouts = {name: layout_of(plan) for name, plan in self._plans.items()}
        self._columns = {name: spec.entity(name).column for name in self._plans}
        self._key_columns = tuple(self._columns.values())  # in ``_states`` order
        self._id, self._time = spec.event_id.column, spec.event_time.column
        self._numeric = {n.column for n in spec.numeric}
        self._values = tuple(dict.fromkeys(c for p in self._plans.values() for c in p.values))
        self._summed = tuple(dict.fromkeys(c for p in self._plans.values() for c in p.sums))
        self._states: dict[str, dict[Hashable, EntityState]] = {e: {} for e in self._plans}
        #: event id -> (entity, entity key, event key) of each state holding it; a tuple once
        #: observed: a tuple of atoms leaves the garbage collector's tracking, a list does not,
        #: and these are most of a long-lived state's objects (each full collection walks them)
        self._events: dict[Hashable, Sequence[tuple[str, Hashable, int]]] = {}
        self._seconds: dict[Hashable, int] = {}
        #: day of event time -> ids of that day (expiry drops whole days, filters one)
        self._days: dict[int, Ints | list[Hashable]] = {}
        self._int_ids = spec.event_id.type == "int"
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
        return self.observe_many([event])[0]

    def observe_many(self, events: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Features of each event, recorded in order: equal to :meth:`observe` of each in
        turn (each counts the events before it), computed per entity key under one lock
        acquisition.

        Returns:
            Per event, ``spec.feature_names()`` → value.

        Raises:
            KeyError: a spec column is missing in an event (nothing is recorded).
            ValueError: an event id is already held, or twice in ``events``, or a numeric
                value is not finite (nothing is recorded).
            TypeError: an event id is not an int where the spec's ids are (nothing is
                recorded).
        """
        prepared = [self._prepare(event) for event in events]
        ids = [p[0] for p in prepared]
        # an id the held containers cannot take raises here, before any change
        new_ids(self._int_ids, ids)
        held: list[list[tuple[str, Hashable, int]]] = [[] for _ in events]
        with self._registry:
            seen: set[Hashable] = set()
            for event_id in ids:
                if event_id in seen or event_id in self._events:
                    raise ValueError(f"event id {event_id!r} is already in the online state")
                seen.add(event_id)
            for (event_id, second, *_), mine in zip(prepared, held, strict=True):
                self._events[event_id] = mine
                self._seconds[event_id] = second
                day = second // _DAY
                filed = self._days.get(day)
                self._days[day] = appended(
                    new_ids(self._int_ids) if filed is None else filed, event_id
                )
        raws: dict[str, list[Any]] = {}
        for entity, (name, states) in enumerate(self._states.items()):
            groups: dict[Hashable, list[int]] = {}
            for i, p in enumerate(prepared):
                groups.setdefault(p[4][entity], []).append(i)
            rows: list[Any] = [None] * len(events)
            for key, indices in groups.items():
                while True:
                    state = states.get(key) or self._add_state(name, key)
                    with state.lock:
                        if state.dead:
                            continue
                        for i in indices:
                            event_id, second, row, *_ = prepared[i]
                            position, event_key = state.insert(second, event_id, row)
                            rows[i] = state.gather(position, second)
                            held[i].append((name, key, event_key))
                        break
            raws[name] = rows
        with self._registry:
            for event_id, mine in zip(ids, held, strict=True):
                if self._events.get(event_id) is mine:  # not expired meanwhile
                    self._events[event_id] = tuple(mine)
        return self._finish(prepared, raws)

    def replay(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """Features of an event already held (a retry), at its place; nothing is recorded.

        Equal to what :meth:`observe` returned for it, unless a late event was inserted
        before it since.

        Raises:
            KeyError: its id is not held (or a spec column is missing).
        """
        prepared = self._prepare(event)
        event_id, second, *_ = prepared
        raws: dict[str, list[Any]] = {}
        for name, key, event_key in self._events[event_id]:
            state = self._states[name][key]
            with state.lock:
                raws[name] = [state.gather(state.position(event_key), second)]
        return self._finish([prepared], raws)[0]

    def _prepare(self, event: Mapping[str, Any]) -> _Prepared:
        """An event's id, second, the values the states keep, its pointwise features and its
        entity keys (in ``_states`` order); raises KeyError for a missing column."""
        second, stamp = event_second(event[self._time])
        row = {
            column: float(event[column]) if column in self._numeric else event[column]
            for column in self._values
        }
        for column in self._summed:  # NaN or infinity raises here, before anything is held
            micro_units(row[column])
        keys = tuple([event[column] for column in self._key_columns])
        pointwise = pointwise_features(self.spec, event, stamp)
        return event[self._id], second, row, pointwise, keys

    def _finish(
        self, prepared: Sequence[_Prepared], raws: dict[str, list[Any]]
    ) -> list[dict[str, Any]]:
        """Feature dicts (in ``spec.feature_names()`` order) from the events' pointwise
        features and each entity's raw rows."""
        out = []
        entities = [(self._layouts[name], rows) for name, rows in raws.items()]
        for i, (_, _, row, features, _) in enumerate(prepared):
            for layout, rows in entities:
                write_features(layout, rows[i], row, features)
            out.append({name: features[name] for name in self._names})
        return out

    def holds(self, event_id: Hashable) -> bool:
        """Whether the event id is in the state (observed and not expired)."""
        return event_id in self._events

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
                state = states.setdefault(key, EntityState(plan, self._layouts[name]))
                state.seconds = array("q", second_array[rows].tolist())
                state.seqs = array("q", range(len(rows)))
                state.next_seq = len(rows)
                state.ids = new_ids(plan.int_ids, id_array[rows].tolist())
                state.labels = array("q", label_array[rows].tolist() if plan.labels else [])
                state.values = {
                    c: new_values(plan, c, v[rows].tolist()) for c, v in columns.items()
                }
                state.rebuild()
                for n, (event_id, second) in enumerate(zip(state.ids, state.seconds, strict=True)):
                    held[event_id].append((name, key, second * SEQ + n))
        self._events.update((event_id, tuple(states)) for event_id, states in held.items())
        seconds = second_array.tolist()
        self._seconds.update(zip(ids, seconds, strict=True))
        for day, day_ids in pd.Series(ids).groupby(second_array // _DAY, sort=False):
            self._days[int(day)] = new_ids(self._int_ids, day_ids.tolist())
        return len(ids)

    def _add_state(self, name: str, key: Hashable) -> EntityState:
        """The state of ``key`` of entity ``name``, added if absent (under the registry)."""
        state = EntityState(self._plans[name], self._layouts[name])
        with self._registry:
            return self._states[name].setdefault(key, state)

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

    def expire(self, watermark_seconds: int) -> list[Hashable]:
        """Drop what no event at or after ``watermark_seconds`` needs; returns the ids
        forgotten (those at or before ``watermark_seconds - spec.longest_reach()``).

        Ids are filed by day: the days wholly before the cut are dropped whole and only the
        cut's own day is filtered, so the cost follows what is forgotten, not what is held."""
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
        with self._registry:
            days = [d for d in self._days if d <= cut // _DAY]
            filed = {d: self._days.pop(d) for d in days}
        old: list[Hashable] = []
        second_of = self._seconds.get  # one lookup is atomic; a pass over the dict is not
        for day, ids in filed.items():
            if (day + 1) * _DAY - 1 <= cut:
                old += ids
                continue
            kept: list[Hashable] = []
            for event_id in ids:
                second = second_of(event_id)
                (kept if second is not None and second > cut else old).append(event_id)
            if kept:
                with self._registry:
                    self._days[day] = new_ids(self._int_ids, [*self._days.get(day, ()), *kept])
        with self._registry:
            for event_id in old:
                self._seconds.pop(event_id, None)
                self._events.pop(event_id, None)
        return old

    def size(self) -> dict[str, int]:
        """Events held per entity (expired ones not yet compacted included) and ids held.

        Safe while other threads observe (each dict is copied under the registry lock)."""
        sizes = {}
        for name, states in self._states.items():
            with self._registry:
                held = list(states.values())
            sizes[name] = sum(len(s.seconds) for s in held)
        return {**sizes, "ids": len(self._events)}
