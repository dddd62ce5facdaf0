"""The online state of any dataset spec: :class:`SpecOnlineEngine` behind the clock and id rules.

:class:`OnlineState` is what the service holds (in one process): each request's events are
admitted by :class:`~fraudops.streaming.clock.ClockRule` (too far ahead of the watermark,
older than the retention, or an id reused with other values: the whole request is refused and
nothing enters the state), then observed by the engine. A retried event (same id, same
values) is not observed again: its features are recomputed at its place
(:meth:`SpecOnlineEngine.replay`).

Locking: one short lock admits a request (the rules, reserving its ids, moving the watermark:
O(rows) dictionary operations); the features are then computed outside it, under the
per-entity locks of the engine, so a batch or a hot entity does not stall other requests.
A retry that arrives while its original is still being observed waits for it (at most
:data:`RETRY_WAIT_SECONDS`).

Expiry follows the watermark ``W`` and keeps the clock's skew as a margin: once per day of
``W``, the engine forgets what no event at or after ``W - skew`` needs, so every event at most
``skew`` late gets exact features. The retention of the ``too_old`` rule is the shortest reach
of the spec's entities (window + lag): an older event's windows are already gone.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

import pandas as pd

from fraudops.logs.records import LabelRecord
from fraudops.offline.engine import event_seconds, known_seconds
from fraudops.spec.model import DatasetSpec, api_field
from fraudops.streaming.clock import ClockRule
from fraudops.streaming.engine import SpecOnlineEngine, event_second
from fraudops.streaming.labels import LabelsApplied, check_labels

SECONDS_PER_DAY = 86_400
#: Longest a retry waits for its original, still being observed by another request.
RETRY_WAIT_SECONDS = 5.0
#: How often a waiting retry checks whether its id is computed, before its request ends.
RETRY_POLL_SECONDS = 0.002


class StateUnavailable(RuntimeError):
    """The online state's store cannot be reached (Redis down, a timeout): nothing of the
    request was recorded; the service answers 503 and ``/readyz`` says not ready."""


def shortest_reach(spec: DatasetSpec) -> int:
    """Seconds of the shortest entity reach (longest window + lag of that entity), or the
    spec's longest reach when no entity is aggregated (then at least one day)."""
    reaches: dict[str, int] = {}
    for agg in spec.aggregations:
        lag = agg.lag_seconds(spec.label.delay)
        reaches[agg.entity] = max(reaches.get(agg.entity, 0), max(agg.windows) + lag)
    return min(reaches.values(), default=max(spec.longest_reach(), SECONDS_PER_DAY))


def labels_known(history: pd.DataFrame, spec: DatasetSpec) -> pd.DataFrame:
    """``history`` with the labels not yet known at its newest event cleared to 0, when the
    spec counts labels by their arrival (``lag: label_arrival``); otherwise as it is.

    A label known later (``label.known_at``, else event time + delay) must then come through
    the label feed (``/feedback``), as it would live: counting it at warm-up would let it into
    windows before its arrival, unlike the offline features."""
    label = spec.label.column
    if not spec.labels_by_arrival() or label not in history or history.empty:
        return history
    seconds = event_seconds(history[spec.event_time.column])
    known = known_seconds(history, spec, seconds)
    cleared = history.copy()
    cleared.loc[known > seconds.max(), label] = 0
    return cleared


def clock_rule(spec: DatasetSpec, skew: int) -> tuple[ClockRule, tuple[str, ...]]:
    """The clock and id rule of a state of ``spec`` and the columns of an event's fingerprint
    (every raw column but the id; the time as whole seconds).

    Raises:
        ValueError: ``skew`` is negative.
    """
    columns = tuple(
        c for c in spec.raw_columns() if c not in (spec.event_id.column, spec.label.column)
    )
    rule = ClockRule(
        int(skew),
        shortest_reach(spec),
        tuple(api_field(c) for c in columns),
        time_field=api_field(spec.event_time.column),
        id_field=api_field(spec.event_id.column),
    )
    return rule, columns


class OnlineState:
    """Online features of ``spec`` for one service process; see the module docstring.

    Args:
        spec: the dataset spec (its raw columns are an event's keys).
        skew: ``max_event_skew_seconds`` (>= 0).
        clock: wall-clock seconds (Unix time), for the rule's elapsed-time allowance.

    Raises:
        ValueError: ``skew`` is negative.
    """

    def __init__(
        self, spec: DatasetSpec, skew: int, clock: Callable[[], float] = time.time
    ) -> None:
        self.spec = spec
        self.engine = SpecOnlineEngine(spec)
        self._time = spec.event_time.column
        self._id = spec.event_id.column
        self.rule, self._print_columns = clock_rule(spec, skew)
        self._clock = clock
        self._lock = threading.Lock()
        #: Serialises label requests (check, then record): never held with ``_lock``.
        self._label_lock = threading.Lock()
        #: Held ids whose current label is fraud (the downgrade rule of ``streaming.labels``).
        self._frauds: set[Hashable] = set()
        self._prints: dict[Hashable, tuple[Any, ...]] = {}
        self._done: dict[Hashable, threading.Event] = {}
        #: Ids the engine forgot while their request still ran: looked at again next expiry.
        self._deferred: list[Hashable] = []
        self._watermark: int | None = None
        self._moved_at = 0
        self._last_expiry: int | None = None
        self._loaded = False

    @property
    def watermark(self) -> int | None:
        """Newest accepted event time, seconds since 1970-01-01; None while empty."""
        return self._watermark

    def _admission(self, event: Mapping[str, Any]) -> tuple[Hashable, int, tuple[Any, ...]]:
        second, _ = event_second(event[self._time])
        values = tuple(
            second if column == self._time else event[column] for column in self._print_columns
        )
        return event[self._id], second, values

    def observe_many(self, events: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Admit a request's events and return their features: all of them, or none.

        Args:
            events: the spec's raw columns per event (keys as the spec's column names; the
                time a naive datetime), in request order.

        Returns:
            Per event, ``spec.feature_names()`` → value; each counts the events before it.

        Raises:
            EventRefused: an event breaks the clock or id rule (``index`` says which); the
                state is unchanged.
        """
        admissions = [self._admission(event) for event in events]
        fresh: list[bool] = []
        # one event for the request's new ids (a retry of one of them waits for the request)
        computed = threading.Event()
        with self._lock:
            watermark, moved_at = self.rule.check(
                admissions, self._watermark, self._moved_at, int(self._clock()), self._prints.get
            )
            for event_id, _, values in admissions:
                new = event_id not in self._prints
                fresh.append(new)
                if new:
                    self._prints[event_id] = values
                    self._done[event_id] = computed
            self._watermark, self._moved_at = watermark, moved_at
        out: list[Any] = [None] * len(events)
        firsts = [i for i, is_new in enumerate(fresh) if is_new]
        try:
            if firsts:
                # all of the request's new events at once: retries below may be of them
                observed = self.engine.observe_many([events[i] for i in firsts])
                for i, features in zip(firsts, observed, strict=True):
                    out[i] = features
                    del self._done[admissions[i][0]]
            for i, is_new in enumerate(fresh):
                if not is_new:
                    self._wait_computed(admissions[i][0])
                    out[i] = self.engine.replay(events[i])
        except BaseException:
            self._release([admissions[i][0] for i in firsts])
            raise
        finally:
            computed.set()
        self._expire()
        return out

    def _release(self, event_ids: Sequence[Hashable]) -> None:
        """Forget the reservations of a failed request's new ids the engine does not hold,
        so that a retry of them is observed, not answered from a state that lacks them."""
        with self._lock:
            for event_id in event_ids:
                if not self.engine.holds(event_id):
                    self._prints.pop(event_id, None)
                    self._done.pop(event_id, None)

    def _wait_computed(self, event_id: Hashable) -> None:
        """Wait (at most :data:`RETRY_WAIT_SECONDS`) until a concurrent request has computed
        ``event_id``: its id leaves ``_done`` then. An id whose request has ended without
        computing it (the request failed before it) is not waited for."""
        deadline = time.monotonic() + RETRY_WAIT_SECONDS
        while (waiting := self._done.get(event_id)) is not None and not waiting.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            waiting.wait(min(left, RETRY_POLL_SECONDS))

    def _expire(self) -> None:
        """Forget what the watermark leaves behind, at most once per day of watermark time."""
        watermark = self._watermark
        if watermark is None:
            return
        with self._lock:
            last = self._last_expiry
            if last is not None and watermark - last < SECONDS_PER_DAY:
                return
            self._last_expiry = watermark
        # every request's admission takes this lock: it is held for the forgotten ids only
        gone = self.engine.expire(watermark - self.rule.skew)
        with self._lock:
            deferred, self._deferred = self._deferred, []
            for event_id in [*deferred, *gone]:
                if event_id in self._done:  # its request still runs: forgotten next time
                    self._deferred.append(event_id)
                elif not self.engine.holds(event_id):
                    self._prints.pop(event_id, None)
                    self._frauds.discard(event_id)

    def feedback(self, labels: Mapping[Hashable, int]) -> int:
        """Record labels (event id → 0/1) of events in the state, trusted (no rule); returns
        how many were held. The service records through :meth:`apply_labels`."""
        with self._label_lock:
            return self._record(labels)

    def _record(self, labels: Mapping[Hashable, int]) -> int:
        """Record labels in the engine and the confirmed frauds (under ``_label_lock``).

        A label of an event whose request is still being observed waits for it (at most
        ``RETRY_WAIT_SECONDS``): recorded earlier, it would miss the entities not yet
        inserted."""
        for event_id in labels:
            if event_id in self._done:
                self._wait_computed(event_id)
        for event_id, label in labels.items():
            if label == 1 and event_id in self._prints:
                self._frauds.add(event_id)
            elif label == 0:
                self._frauds.discard(event_id)
        return self.engine.feedback(labels)

    def apply_labels(self, labels: Sequence[LabelRecord]) -> LabelsApplied:
        """Check a ``/feedback`` request's labels (:func:`~fraudops.streaming.labels.
        check_labels`), then record those of held ids: all, or none.

        Raises:
            LabelRefused: an unknown id not flagged external, or a fraud downgraded without
                ``correction``; nothing is recorded.
        """
        with self._label_lock:
            held = check_labels(labels, self._prints.__contains__, self._frauds.__contains__)
            self._record(
                {
                    label.event_id: label.is_fraud
                    for label, known in zip(labels, held, strict=True)
                    if known
                }
            )
        return LabelsApplied(held=sum(held), external=len(held) - sum(held))

    def warm_up(self, history: pd.DataFrame) -> int:
        """Feed a prepared, labelled history (:func:`fraudops.spec.data.prepare_events`, any
        order) into the state, trusted (no clock check); ids already held are skipped.

        Returns:
            The number of rows fed; labels of the history are taken as received (those not
            yet known at its newest event left out, see :func:`labels_known`), so
            ``label_rate`` windows equal the offline features on the same history.
        """
        spec = self.spec
        ordered = labels_known(history, spec).sort_values([self._time, self._id], kind="stable")
        label = spec.label.column
        columns = [c for c in [*spec.raw_columns(), label] if c in ordered]
        fed = 0
        if not self._prints and len(ordered):
            fed = self.engine.load(ordered[columns])
            self._remember(ordered)
        else:
            frauds = {}
            records = []
            for record in ordered[columns].to_dict("records"):
                if record[self._id] in self._prints:
                    continue
                self.engine.observe(record)
                if record.get(label) == 1:
                    frauds[record[self._id]] = 1
                records.append(record)
            self.engine.feedback(frauds)  # the warmed events' features are not used
            fed = len(records)
            self._remember(pd.DataFrame.from_records(records, columns=columns))
        self._expire()
        self._loaded = self._loaded or fed > 0
        return fed

    def _remember(self, events: pd.DataFrame) -> None:
        """Hold the fingerprints (and fraud labels) of trusted events and move the watermark
        to their newest."""
        if events.empty:
            return
        label = self.spec.label.column
        if label in events:
            frauds = events.loc[events[label] == 1, self._id].tolist()
            with self._label_lock:
                self._frauds.update(frauds)
        seconds = (
            pd.to_datetime(events[self._time]).to_numpy().astype("datetime64[s]").astype("int64")
        )
        columns = [
            seconds.tolist() if c == self._time else events[c].tolist() for c in self._print_columns
        ]
        ids = events[self._id].tolist()
        self._prints.update(zip(ids, zip(*columns, strict=True), strict=True))
        newest = int(seconds.max())
        if self._watermark is None or newest > self._watermark:
            self._watermark, self._moved_at = newest, int(self._clock())

    def intact(self) -> bool:
        """Always True: an in-process state cannot be lost while the process runs."""
        return True

    def size(self) -> dict[str, int]:
        """Events held per entity and ids held (``events``: their total)."""
        sizes = self.engine.size()
        return {**sizes, "events": sum(v for k, v in sizes.items() if k != "ids")}
