"""The online state of any dataset spec in Redis, shared by service replicas.

:class:`RedisOnlineState` answers as :class:`fraudops.streaming.state.OnlineState` does (same
features, bit for bit; same clock and id rules, same refusals), but its state lives in Redis,
so several replicas score against one state. Each request is one Lua script call
(:mod:`fraudops.streaming.redis_lua`, which documents the keys): the rules are checked for the
whole request first, then every event is inserted and its windows read, atomically, so two
replicas never interleave inside a request and a refused request writes nothing.

Cost per event does not grow with an entity's volume: windows are read from pre-aggregated
**tiles** (as Feast and Chronon tile their windows) at up to five levels (the finest from the
spec's shortest window, up to one day: :func:`tile_levels`), and only the events at the window's two
edges (less than one finest tile each) are read one by one. Distinct counts read each whole
tile's set of values, so they cost the distinct values of the window, not its events.

Expiry: each write trims the entities it touched at the watermark ``W`` minus the clock's skew
minus the entity's reach, and the ids older than the longest reach; an entity not written for
its reach plus the skew plus a day (wall time) disappears by TTL. A flushed Redis (or one that
evicted keys) is detected by the warm-up marker: :meth:`RedisOnlineState.intact` is then False
and the service reports not ready rather than serving zeros.

Not for Redis Cluster: the script builds its keys from the prefix (one Redis primary).
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from fraudops.logs.records import LabelRecord
from fraudops.spec import spec_sha256
from fraudops.spec.model import DatasetSpec, WindowFeature
from fraudops.streaming.clock import CONFLICT
from fraudops.streaming.engine import event_second, pointwise_features
from fraudops.streaming.entity import entity_plan, from_sum, micro_units
from fraudops.streaming.labels import LabelRefused, LabelsApplied, binary_label
from fraudops.streaming.redis_lua import SCRIPT
from fraudops.streaming.state import (
    SECONDS_PER_DAY,
    StateUnavailable,
    clock_rule,
    labels_known,
)

#: Tile widths, seconds: the finest level is one of the first three, chosen from the spec.
_LEVELS = (60, 300, 900, 3_600, SECONDS_PER_DAY)


def tile_levels(spec: DatasetSpec) -> list[int]:
    """Tile widths, seconds, finest first: the finest is the widest of 60, 300 and 900 s at
    most 1/288 of the shortest window (5 minutes for a day), then every wider one of
    :data:`_LEVELS`. A window then reads at most about 14 tiles per level per side and, one
    by one, the events of less than one finest tile at each edge (measured by
    ``benchmarks/hot_entity.py``: finer tiles cut a hot entity's edge reads)."""
    windows = [w for agg in spec.aggregations for w in agg.windows] or [SECONDS_PER_DAY]
    fine = max(f for f in _LEVELS[:3] if f <= max(min(windows) // 288, 60))
    return [level for level in _LEVELS if level >= fine]


@dataclass(frozen=True)
class _Lag:
    """An entity's windows of one lag, narrowest first (the script widens one window to the
    next), with their features and the distinct-count columns read at that lag."""

    lag: int
    windows: tuple[tuple[int, tuple[tuple[str, WindowFeature], ...]], ...]
    distinct: tuple[str, ...]


@dataclass(frozen=True)
class _Entity:
    name: str
    column: str
    sums: tuple[str, ...]
    maxes: tuple[str, ...]
    distinct: tuple[str, ...]
    labels: bool
    gaps: tuple[str, ...]
    reach: int
    lags: tuple[_Lag, ...]


def _entities(spec: DatasetSpec) -> list[_Entity]:
    used = [agg.entity for agg in spec.aggregations]
    used += [t.entity for t in spec.time_since_previous]
    out = []
    for name in dict.fromkeys(used):
        plan = entity_plan(spec, name)
        distinct = tuple(sorted({column for _, column in plan.distinct}))
        by_lag: dict[int, dict[int, list[tuple[str, WindowFeature]]]] = {}
        for block in plan.blocks:
            for width, features in block.windows:
                by_lag.setdefault(block.lag, {}).setdefault(width, []).extend(features)
        lags = [
            _Lag(
                lag,
                tuple((w, tuple(f)) for w, f in sorted(widths.items())),
                tuple(c for held_lag, c in plan.distinct if held_lag == lag),
            )
            for lag, widths in by_lag.items()
        ]
        out.append(
            _Entity(
                name,
                spec.entity(name).column,
                plan.sums,
                plan.maxes,
                distinct,
                plan.labels,
                plan.gaps,
                plan.reach,
                tuple(lags),
            )
        )
    return out


def _window_value(
    feature: WindowFeature,
    n: int,
    units: Mapping[str, int],
    tops: Mapping[str, bytes],
    frauds: int,
    distinct: Mapping[str, int],
    event: Mapping[str, Any],
) -> float:
    """One window feature from the script's aggregates (the in-memory engine's arithmetic)."""
    kind, column = feature.kind, feature.of or ""
    if kind == "count":
        return float(n)
    if kind == "max":
        return float(tops[column]) if n else 0.0
    if kind == "distinct_count":
        return float(distinct[column])
    if kind == "label_rate":
        return float(frauds) / float(n) if n else 0.0
    return from_sum(kind, n, units[column], float(event[column]))


def _plain(value: Any) -> Any:
    """A JSON-able Python scalar (numpy scalars unwrapped)."""
    return value.item() if hasattr(value, "item") else value


class RedisOnlineState:
    """Online features of ``spec`` in Redis; see the module docstring.

    Args:
        spec: the dataset spec (its raw columns are an event's keys).
        url: ``redis://host:port/db`` (or ``rediss://``, ``unix://``).
        skew: ``max_event_skew_seconds`` (>= 0).
        prefix: key prefix; one state per prefix. By default ``fraudops:<spec name>:<first 12
            hex digits of the spec's sha256>``: a changed spec starts from an empty state
            rather than misreading the old one.

    Raises:
        ValueError: ``skew`` is negative.
    """

    CHUNK = 2_000  #: events per script call at warm-up (the script blocks Redis meanwhile)

    def __init__(self, spec: DatasetSpec, url: str, skew: int, prefix: str | None = None) -> None:
        import redis

        self.spec = spec
        self._redis = redis.Redis.from_url(url)
        self._prefix = prefix or f"fraudops:{spec.name}:{spec_sha256(spec)[:12]}"
        self._time, self._id = spec.event_time.column, spec.event_id.column
        self._numeric = {n.column for n in spec.numeric}
        self.rule, self._print_columns = clock_rule(spec, skew)
        self._entities = _entities(spec)
        self._names = spec.feature_names()
        ttl_extra = int(skew) + SECONDS_PER_DAY
        self._config = json.dumps(
            {
                "p": self._prefix,
                "levels": tile_levels(spec),
                "skew": int(skew),
                "ret": self.rule.retention,
                "longest": spec.longest_reach(),
                "ents": [
                    {
                        "n": e.name,
                        "ns": len(e.sums),
                        "nm": len(e.maxes),
                        "nd": len(e.distinct),
                        "lab": int(e.labels),
                        "gap": int(bool(e.gaps)),
                        "reach": e.reach,
                        "ttl": e.reach + ttl_extra,
                        "q": [
                            [
                                g.lag,
                                [w for w, _ in g.windows],
                                [e.distinct.index(c) + 1 for c in g.distinct],
                            ]
                            for g in e.lags
                        ],
                    }
                    for e in self._entities
                ],
            }
        )
        self._script = self._redis.register_script(SCRIPT)
        self._loaded = False

    def _run(self, mode: str, payload: str) -> Any:
        """One script call; a Redis error becomes :class:`StateUnavailable` (the script is
        atomic: a call that failed wrote nothing)."""
        import redis

        try:
            return self._script(args=[self._config, mode, payload])
        except redis.RedisError as exc:
            raise StateUnavailable(f"the Redis online state is unavailable: {exc}") from None

    @property
    def watermark(self) -> int | None:
        """Newest accepted event time, seconds since 1970-01-01; None while empty."""
        value: Any = self._redis.hget(f"{self._prefix}:clock", "watermark")
        return None if value is None else int(value)

    def _fingerprint(self, event: Mapping[str, Any], second: int) -> tuple[Any, ...]:
        return tuple(second if c == self._time else _plain(event[c]) for c in self._print_columns)

    def _packed(self, event: Mapping[str, Any], entity: _Entity) -> str:
        values = [str(micro_units(float(event[c]))) for c in entity.sums]
        values += [repr(float(event[c])) for c in entity.maxes]
        for column in entity.distinct:
            value = _plain(event[column])
            # as the in-memory sets: 1.0 and -0.0 are the values 1.0 and 0.0
            values.append(repr(float(value) + 0.0) if column in self._numeric else str(value))
        return "\x1f".join(values)

    def _payload(self, event: Mapping[str, Any], second: int) -> list[Any]:
        return [
            str(_plain(event[self._id])),
            second,
            json.dumps(self._fingerprint(event, second)),
            [str(_plain(event[e.column])) for e in self._entities],
            [self._packed(event, e) for e in self._entities],
        ]

    def observe_many(self, events: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Admit a request's events and return their features: all of them, or none.

        As :meth:`fraudops.streaming.state.OnlineState.observe_many`, in one atomic script call.

        Raises:
            EventRefused: an event breaks the clock or id rule (``index`` says which); Redis is
                unchanged.
            StateUnavailable: Redis cannot be reached (nothing was written).
        """
        if not events:
            return []
        seconds = [event_second(e[self._time]) for e in events]
        payload = [self._payload(e, s) for e, (s, _) in zip(events, seconds, strict=True)]
        reply = self._run("score", json.dumps(payload))
        refused = int(reply[0])
        if refused:
            index = refused - 1
            reason, mark = reply[1].decode(), int(reply[2])
            event = events[index]
            kw: dict[str, Any] = {}
            if reason == CONFLICT:
                held = tuple(json.loads(reply[3]))
                kw = {
                    "transaction_id": event[self._id],
                    "differs": self.rule.differing(held, tuple(json.loads(payload[index][2]))),
                }
            raise self.rule.refuse(
                index, seconds[index][0], None if mark < 0 else mark, reason, **kw
            )
        values = iter(reply[3:])
        return [
            self._features(event, second, stamp, values)
            for event, (second, stamp) in zip(events, seconds, strict=True)
        ]

    def _features(
        self, event: Mapping[str, Any], second: int, stamp: Any, values: Any
    ) -> dict[str, Any]:
        out = pointwise_features(self.spec, event, stamp)
        for entity in self._entities:
            for group in entity.lags:
                for _, features in group.windows:
                    n = int(next(values))
                    units = {c: int(next(values)) for c in entity.sums}
                    tops = {c: next(values) for c in entity.maxes}
                    frauds = int(next(values)) if entity.labels else 0
                    distinct = {c: int(next(values)) for c in group.distinct}
                    for name, feature in features:
                        out[name] = _window_value(feature, n, units, tops, frauds, distinct, event)
            if entity.gaps:
                previous = next(values)
                gap = -1.0 if not previous else float(second - int(float(previous)))
                for name in entity.gaps:
                    out[name] = gap
        return {name: out[name] for name in self._names}

    def feedback(self, labels: Mapping[Hashable, int]) -> int:
        """Record labels (event id → 0/1) of events in the state; returns how many were held.

        Raises:
            ValueError: a label other than 0 or 1 (nothing is recorded).
            StateUnavailable: Redis cannot be reached (labels of earlier chunks of 10,000 may
                be recorded; recording a label again is harmless).
        """
        pairs = []
        for event_id, label in labels.items():
            pairs.append([str(_plain(event_id)), binary_label(event_id, label)])
        held = 0
        for start in range(0, len(pairs), 5 * self.CHUNK):
            chunk = json.dumps(pairs[start : start + 5 * self.CHUNK])
            reply = self._run("labels", chunk)
            held += int(reply[0])
        return held

    def apply_labels(self, labels: Sequence[LabelRecord]) -> LabelsApplied:
        """Check a ``/feedback`` request's labels by the rules of :mod:`fraudops.streaming.
        labels` and record those of held ids, in one script call per 10,000 labels (atomic
        across replicas; a request of several calls is checked whole first).

        Raises:
            LabelRefused: an unknown id not flagged external, or a fraud downgraded without
                ``correction``; nothing is recorded.
            ValueError: a label other than 0 or 1 (nothing is recorded).
            StateUnavailable: Redis cannot be reached.
        """
        rows = [
            [
                str(_plain(label.event_id)),
                binary_label(label.event_id, label.is_fraud),
                int(label.external),
                int(label.correction),
            ]
            for label in labels
        ]
        size = 5 * self.CHUNK
        chunks = [rows[start : start + size] for start in range(0, len(rows), size)]
        modes = ["check-labels", "rule-labels"] if len(chunks) > 1 else ["rule-labels"]
        held = external = 0
        for mode in modes:
            for number, chunk in enumerate(chunks):
                reply = self._run(mode, json.dumps(chunk))
                if int(reply[0]) < 0:
                    index = number * size + int(reply[1])
                    raise LabelRefused(index, labels[index].event_id, reply[2].decode())
                if mode == "rule-labels":
                    held, external = held + int(reply[0]), external + int(reply[1])
        return LabelsApplied(held=held, external=external)

    def warm_up(self, history: pd.DataFrame) -> int:
        """Feed a prepared, labelled history (any order) into the state, trusted (no clock
        check; ids already held are skipped), then mark the state loaded. A state already
        loaded (by another replica) up to the history's newest time is left as it is.

        Returns:
            Rows inserted (0 when another replica had loaded it).
        """
        ordered = labels_known(history, self.spec).sort_values(
            [self._time, self._id], kind="stable"
        )
        if len(ordered) and self._redis.exists(f"{self._prefix}:loaded"):
            newest, _ = event_second(ordered[self._time].iloc[-1])
            watermark = self.watermark
            if watermark is not None and watermark >= newest:  # another replica loaded it
                self._loaded = True
                return 0
        label = self.spec.label.column
        columns = [c for c in [*self.spec.raw_columns(), label] if c in ordered]
        inserted = 0
        records = ordered[columns].to_dict("records")
        for start in range(0, len(records), self.CHUNK):
            payload = []
            for record in records[start : start + self.CHUNK]:
                second, _ = event_second(record[self._time])
                payload.append([*self._payload(record, second), int(record.get(label, 0) == 1)])
            reply = self._run("load", json.dumps(payload))
            inserted += int(reply[3])
        if records:
            self._redis.set(f"{self._prefix}:loaded", 1)
            self._loaded = True
        return inserted

    def intact(self) -> bool:
        """Redis answers and, once warmed up, still holds the warm-up marker (False after a
        flush or an eviction of it, or while Redis is unreachable)."""
        import redis

        try:
            if self._loaded:
                return bool(self._redis.exists(f"{self._prefix}:loaded"))
            return bool(self._redis.ping())
        except redis.RedisError:
            return False

    def size(self) -> dict[str, int]:
        """Ids held (``ids``) and the Redis database's keys (``keys``)."""
        ids: Any = self._redis.hlen(f"{self._prefix}:ids")
        keys: Any = self._redis.dbsize()
        return {"ids": int(ids), "keys": int(keys)}

    def clear(self) -> None:
        """Delete every key under the prefix (tests, and re-initialising a shared state)."""
        keys = list(self._redis.scan_iter(f"{self._prefix}:*", count=10_000))
        for start in range(0, len(keys), 10_000):
            self._redis.delete(*keys[start : start + 10_000])
