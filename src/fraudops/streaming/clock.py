"""The online state's clock and id rules, shared by every store (one request cannot move them).

- The **watermark** ``W`` is the newest *accepted* event time (whole seconds since 1970).
- An event more than ``skew`` **plus the wall-clock time elapsed since ``W`` last moved**
  ahead of ``W`` is refused (:data:`AHEAD`): a night without traffic does not lock a live
  service out, while a fast replay of old data advances ``W`` row by row.
- An event at or before ``W - retention - skew`` is refused (:data:`TOO_OLD`): the state holds
  nothing to score it with, and it would expire at once.
- A transaction id already held (or earlier in the request) with another *fingerprint* (every
  other value of the event) is refused (:data:`CONFLICT`): it is not a retry but another
  transaction reusing the id. The same id with the same fingerprint is a retry.

Within a request each event is checked against ``W`` as moved by the events before it, and one
refused event refuses the whole request. :mod:`fraudops.streaming.handbook_state` (the
handbook's round-1 state, in memory and Redis, now the benchmarks' peer) and
:mod:`fraudops.streaming.state` (any spec) apply these rules; the handbook's Redis store runs
the same rules in Lua.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

AHEAD, TOO_OLD, CONFLICT = "ahead", "too_old", "conflict"
EPOCH = dt.datetime(1970, 1, 1)
#: (event id, second, fingerprint) of one event, as the rules see it.
Admission = tuple[Hashable, int, tuple[Any, ...]]


def naive(timestamp: dt.datetime | pd.Timestamp) -> dt.datetime:
    """The timestamp as the training data has it: naive, aware ones converted to UTC first.

    A naive ``datetime`` (or ``Timestamp``) is returned as it is: wrapping each scored event's
    time in a new ``Timestamp`` was ~5 µs, 5 % of a 1,000-row ``/score_batch``.
    """
    if isinstance(timestamp, dt.datetime) and timestamp.tzinfo is None:
        return timestamp
    stamp = pd.Timestamp(timestamp)
    return stamp if stamp.tzinfo is None else stamp.tz_convert("UTC").tz_localize(None)


def to_seconds(timestamp: dt.datetime | pd.Timestamp) -> int:
    """Whole seconds since 1970-01-01 of :func:`naive` ``timestamp``, sub-seconds floored
    away (before 1970 too): the days and seconds of its difference from :data:`EPOCH`, whose
    microseconds are never negative (0.12 µs; ``calendar.timegm`` took 0.84)."""
    since = naive(timestamp) - EPOCH
    return since.days * 86_400 + since.seconds


def from_seconds(second: int) -> str:
    """ISO 8601 text (naive UTC) of whole seconds since 1970-01-01."""
    return (EPOCH + dt.timedelta(seconds=int(second))).isoformat()


def _duration(seconds: int) -> str:
    days, rest = divmod(int(seconds), 86_400)
    return f"{days} days" if not rest else f"{seconds} s"


class EventRefused(ValueError):
    """The state refused an event of a request; nothing of that request entered the state.

    Attributes:
        index: position of the refused event in its request (0 for ``/score``).
        second: its time, whole seconds since 1970-01-01.
        watermark: the watermark it was checked against (seconds; None only for a
            :data:`CONFLICT` inside the first request of an empty state).
        reason: :data:`AHEAD`, :data:`TOO_OLD` or :data:`CONFLICT` (module docstring).
        skew: the rule's skew, seconds.
        transaction_id: the event's id (set for :data:`CONFLICT`).
        differs: for :data:`CONFLICT`, the request fields whose values differ from the held ones.
        field: the request field the message names (the time field, or the id field).
    """

    def __init__(
        self,
        index: int,
        second: int,
        watermark: int | None,
        reason: str,
        skew: int,
        *,
        transaction_id: Hashable | None = None,
        differs: Sequence[str] = (),
        retention: int = 30 * 86_400,
        time_field: str = "tx_datetime",
        id_field: str = "transaction_id",
    ) -> None:
        self.index, self.second, self.watermark = index, second, watermark
        self.reason, self.skew = reason, skew
        self.transaction_id, self.differs = transaction_id, list(differs)
        self.field = id_field if reason == CONFLICT else time_field
        if reason == CONFLICT:
            # the held values belong to another transaction: name the fields, not the values
            super().__init__(
                f"{id_field} {transaction_id} was already scored with other values "
                f"({', '.join(self.differs) or 'values'} differ); a retry must repeat the "
                "original transaction exactly, a new transaction needs a new id; refused"
            )
            return
        assert watermark is not None  # the clock refuses only against a watermark
        if reason == AHEAD:
            why = (
                f"is more than {skew} s (max_event_skew_seconds, plus the wall-clock time since "
                f"the watermark last moved) ahead of the online state's watermark "
                f"{from_seconds(watermark)}, the newest accepted transaction time"
            )
        else:
            cut = watermark - retention - skew
            why = (
                f"is older than the online state's retention: at or before {from_seconds(cut)} "
                f"({_duration(retention)} + {skew} s before the watermark "
                f"{from_seconds(watermark)})"
            )
        super().__init__(f"{time_field} {from_seconds(second)} {why}; refused")


@dataclass(frozen=True)
class ClockRule:
    """The rules of the module docstring for one state.

    Attributes:
        skew: how far (seconds, >= 0) an event may be ahead of the watermark, on top of the
            wall-clock time elapsed since it moved.
        retention: seconds of history the state keeps before ``skew`` (the shortest entity's
            reach: an older event would expire at once).
        fields: request field names of the fingerprint's values, in order.
        time_field: the request field of the event time (named in refusals).
        id_field: the request field of the event id.
    """

    skew: int
    retention: int
    fields: tuple[str, ...]
    time_field: str = "tx_datetime"
    id_field: str = "transaction_id"

    def __post_init__(self) -> None:
        if self.skew < 0:
            raise ValueError(f"max_event_skew_seconds must be >= 0, got {self.skew}")

    def refuse(self, index: int, second: int, watermark: int | None, reason: str, **kw: Any):
        """An :class:`EventRefused` worded for this rule's fields."""
        return EventRefused(
            index,
            second,
            watermark,
            reason,
            self.skew,
            retention=self.retention,
            time_field=self.time_field,
            id_field=self.id_field,
            **kw,
        )

    def differing(self, held: tuple[Any, ...], mine: tuple[Any, ...]) -> list[str]:
        """Request field names whose fingerprint values differ."""
        return [name for name, a, b in zip(self.fields, held, mine, strict=True) if a != b]

    def check(
        self,
        events: Sequence[Admission],
        watermark: int | None,
        moved_at: int,
        now: int,
        held: Callable[[Hashable], tuple[Any, ...] | None],
    ) -> tuple[int | None, int]:
        """(watermark, moved_at) after accepting ``events`` in order.

        Args:
            events: the request's (id, second, fingerprint), in request order.
            watermark: newest accepted time; None for an empty state (the first event sets it).
            moved_at: wall-clock second (Unix time) at which ``watermark`` last moved.
            now: the wall-clock second now.
            held: the fingerprint the state holds for an id (None: not held).

        Raises:
            EventRefused: at the first event too far ahead, older than the retention, or whose
                id is held (or earlier in ``events``) with another fingerprint.
        """
        pending: dict[Hashable, tuple[Any, ...]] = {}
        for index, (event_id, second, mine) in enumerate(events):
            if watermark is not None:
                if second > watermark + self.skew + max(0, now - moved_at):
                    raise self.refuse(index, second, watermark, AHEAD)
                if second <= watermark - self.retention - self.skew:
                    raise self.refuse(index, second, watermark, TOO_OLD)
            known = pending.get(event_id) or held(event_id)
            if known is not None and known != mine:
                raise self.refuse(
                    index,
                    second,
                    watermark,
                    CONFLICT,
                    transaction_id=event_id,
                    differs=self.differing(known, mine),
                )
            pending[event_id] = known or mine
            if watermark is None or second > watermark:
                watermark, moved_at = second, now
        return watermark, moved_at
