"""The round-1 handbook-only online state, kept as the benchmarks' peer: the offline features
of :mod:`fraudops.offline.handbook`, one transaction at a time.

The state keeps, per card, the (second, amount) of its transactions of the last 30 days and,
per terminal, the (second, transaction id) of its transactions of the last ``label_delay +
30`` days, plus the labels received so far. Older events expire, so memory is bounded by the
traffic of those windows. Window semantics equal the offline function's: a card window is
``(t - w, t]`` including the transaction itself and earlier ones of the same second; a terminal
window is ``(t - delay - w, t - delay]``, counting as fraud only the labels already received.

The state's clock (one request cannot move it far):

- The **watermark** ``W`` is the newest *accepted* event time (whole seconds). It is kept by
  the store, so Redis replicas share it, and a warm-up from history raises it to the
  history's newest time (it never goes back).
- An event more than ``skew`` (``max_event_skew_seconds``, default one day, the API's own
  tolerance for clock skew) **plus the wall-clock time elapsed since ``W`` last moved** ahead
  of ``W`` is refused (:class:`EventRefused`): a night without traffic does not lock a live
  service out, while a fast replay of old data advances ``W`` row by row. Within a batch, each
  row is checked against ``W`` as moved by the rows before it, and one refused row refuses
  the whole batch: nothing of a refused request enters the state.
- **Expiry follows ``W``** (never a refused time) and keeps a margin of ``skew``: card events
  at or before ``W - 30 d - skew`` and terminal events at or before ``W - delay - 30 d - skew``
  are dropped (the in-process store does so at most once per day of ``W``, Redis on each
  write). So an accepted event up to ``skew`` ahead removes nothing that an event at or after
  ``W - skew`` needs: every event at most ``skew`` late gets exact features.
- A **late** event (before ``W``) is inserted at its place; when it is more than ``skew``
  late, its windows may miss events already expired. An event **older than the retention**
  (at or before ``W - 30 d - skew``) is refused: the state holds nothing to score it with,
  and it would expire at once.
- An **empty** state (fresh service without history, or a flushed Redis) has no ``W``: its
  first event sets it (the API bounds that time to 1970 .. now + 1 day). Warm up from
  history to pin ``W`` before traffic arrives.

Events are **idempotent on the transaction id**, for retries only: the state keeps, with each
id it holds (within the terminal retention), the transaction's *fingerprint* (card, terminal,
second, amount). A request whose id is already there with the **same** fingerprint is a retry:
it is not inserted again and is scored against the state as it is, which holds the original
once, so an identical retry gets the original's features (unless other events of the same card
and second arrived in between). A request whose id is already there with **other** values is
not a retry but a different transaction reusing the id: it is refused (:class:`EventRefused`,
reason :data:`CONFLICT`), like a clock refusal and in the same check, so nothing of its request
enters the state. Scoring it against the state would give features of a transaction the state
does not hold (its own event missing from its card window). Within a batch, a row conflicts
with an earlier row of the same id and other values as well. The history fed at warm-up is
trusted: a reused id there is skipped, as before. (Ids a Redis state recorded before
fingerprints existed have none and count as retries.)

Two stores share this logic: :class:`MemoryStore` (one process) and :class:`RedisStore`
(several replicas share the state; the check, the insert, the watermark update and the trim
run in one Lua script, atomically). Timestamps are truncated to whole seconds; time-zone aware
timestamps are converted to UTC and made naive, as the training data is.
"""

from __future__ import annotations

import bisect
import datetime as dt
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np
import pandas as pd

from fraudops.data import contract as c
from fraudops.offline.handbook import SECONDS_PER_DAY, amount_units, mean_amount
from fraudops.streaming.clock import CONFLICT, ClockRule, EventRefused, naive, to_seconds

#: Card retention before the skew margin: the widest window, seconds.
WIDEST_SECONDS = c.MAX_WINDOW_DAYS * SECONDS_PER_DAY
#: Default of ``max_event_skew_seconds``: one day, as the API's tolerance past the server clock.
DEFAULT_SKEW_SECONDS = SECONDS_PER_DAY
#: Admission modes: check only (nothing written), check then insert, insert without a check.
Mode = Literal["check", "checked", "trusted"]


@dataclass(frozen=True)
class Transaction:
    """One raw transaction as the service receives it (amount in currency units, ≥ 0)."""

    transaction_id: int
    tx_datetime: dt.datetime
    customer_id: int
    terminal_id: int
    tx_amount: float

    def as_event(self) -> dict[str, Any]:
        """The handbook spec's raw columns (column name → value), as the scorer takes them."""
        return {
            c.TRANSACTION_ID: self.transaction_id,
            c.TX_DATETIME: self.tx_datetime,
            c.CUSTOMER_ID: self.customer_id,
            c.TERMINAL_ID: self.terminal_id,
            c.TX_AMOUNT: self.tx_amount,
        }


#: (transaction id, card, terminal, second, amount) of one transaction.
Event = tuple[int, int, int, int, float]
#: (card, terminal, second, amount): what an id's retry must repeat.
Fingerprint = tuple[int, int, int, float]
#: The request fields of the fingerprint's values, in order.
FINGERPRINT_FIELDS = ("customer_id", "terminal_id", "tx_datetime", "tx_amount")


def fingerprint(event: Event) -> Fingerprint:
    """The fingerprint of ``event``: everything but its transaction id."""
    _, card, terminal, second, amount = event
    return int(card), int(terminal), int(second), float(amount)


def fingerprint_text(event: Event) -> str:
    """:func:`fingerprint` as Redis stores it: ``card:terminal:second:repr(amount)``."""
    return ":".join(str(v) for v in fingerprint(event)[:3]) + ":" + repr(float(event[4]))


def parse_fingerprint(text: str) -> Fingerprint:
    """Inverse of :func:`fingerprint_text`."""
    card, terminal, second, amount = text.split(":")
    return int(card), int(terminal), int(second), float(amount)


def differing_fields(held: Fingerprint, event: Event) -> list[str]:
    """Request field names whose values differ between ``held`` and ``event``'s fingerprint."""
    mine = fingerprint(event)
    return [name for name, a, b in zip(FINGERPRINT_FIELDS, held, mine, strict=True) if a != b]


def check_events(
    events: Sequence[Event],
    watermark: int | None,
    moved_at: int,
    now: int,
    skew: int,
    held: Callable[[int], Fingerprint | None],
) -> tuple[int | None, int]:
    """The clock rule and the id rule (:class:`~fraudops.streaming.clock.ClockRule`, card
    retention, the handbook's fields): (watermark, moved_at) after accepting ``events``.

    Raises:
        EventRefused: at the first event too far ahead, older than the retention, or whose
            id is held (or earlier in ``events``) with another fingerprint.
    """
    rule = ClockRule(skew, WIDEST_SECONDS, FINGERPRINT_FIELDS)
    return rule.check(
        [(e[0], e[3], fingerprint(e)) for e in events],
        watermark,
        moved_at,
        now,
        held,  # type: ignore[arg-type]
    )


@dataclass(frozen=True)
class Admitted:
    """What a store did with admitted events.

    Attributes:
        watermark: the watermark afterwards (None only for an empty state and no event).
        inserted: per event, False when its transaction id was already in the state.
    """

    watermark: int | None
    inserted: list[bool] = field(default_factory=list)


class StateStore(Protocol):
    """Per-card and per-terminal events, labels and the clock; see :class:`MemoryStore`."""

    def card_events(self, card: int, since: int) -> tuple[list[int], list[float]]: ...
    def terminal_events(self, terminal: int, since: int, until: int) -> list[tuple[int, int]]: ...
    def admit(self, events: Sequence[Event], skew: int, mode: Mode) -> Admitted: ...
    def watermark(self) -> int | None: ...
    def labels(self, transaction_ids: Sequence[int]) -> list[int]: ...
    def set_labels(self, labels: dict[int, int]) -> None: ...
    def expire(self, card_before: int, terminal_before: int) -> None: ...
    def size(self) -> dict[str, int]: ...
    def mark_loaded(self) -> None: ...
    def intact(self, *, loaded: bool) -> bool: ...


class MemoryStore:
    """In-process state: dicts of time-sorted lists (one service process).

    Args:
        clock: wall-clock seconds (Unix time), for the rule's elapsed-time allowance; tests
            pass a fake one.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._cards: dict[int, tuple[list[int], list[float]]] = {}
        self._terminals: dict[int, tuple[list[int], list[int]]] = {}
        self._labels: dict[int, int] = {}
        self._seen: dict[int, Fingerprint] = {}  # transaction ids in the terminal lists
        self._watermark: int | None = None
        self._moved_at = 0
        self._clock = clock

    def card_events(self, card: int, since: int) -> tuple[list[int], list[float]]:
        seconds, amounts = self._cards.get(card, ([], []))
        start = bisect.bisect_right(seconds, since)
        return seconds[start:], amounts[start:]

    def admit(self, events: Sequence[Event], skew: int, mode: Mode) -> Admitted:
        """Check ``events`` against the clock and the ids held (unless ``trusted``), then
        insert the ones whose id is new (a held id is a retry, or skipped when ``trusted``).

        Raises:
            EventRefused: in ``check``/``checked`` mode; nothing is changed then.
        """
        now = int(self._clock())
        if mode != "trusted":
            check_events(events, self._watermark, self._moved_at, now, skew, self._seen.get)
            if mode == "check":
                return Admitted(self._watermark)
        inserted = []
        for event in events:
            tx_id, card, terminal, second, amount = event
            if tx_id in self._seen:
                inserted.append(False)
                continue
            self._seen[tx_id] = fingerprint(event)
            inserted.append(True)
            seconds, amounts = self._cards.setdefault(card, ([], []))
            at = bisect.bisect_right(seconds, second)
            seconds.insert(at, second)
            amounts.insert(at, amount)
            t_seconds, ids = self._terminals.setdefault(terminal, ([], []))
            at = bisect.bisect_right(t_seconds, second)
            t_seconds.insert(at, second)
            ids.insert(at, tx_id)
            if self._watermark is None or second > self._watermark:
                self._watermark, self._moved_at = second, now
        return Admitted(self._watermark, inserted)

    def watermark(self) -> int | None:
        """Newest accepted event time (seconds since 1970-01-01); None while empty."""
        return self._watermark

    def terminal_events(self, terminal: int, since: int, until: int) -> list[tuple[int, int]]:
        seconds, ids = self._terminals.get(terminal, ([], []))
        start = bisect.bisect_right(seconds, since)
        end = bisect.bisect_right(seconds, until)
        return list(zip(seconds[start:end], ids[start:end], strict=True))

    def labels(self, transaction_ids: Sequence[int]) -> list[int]:
        return [self._labels.get(t, 0) for t in transaction_ids]

    def set_labels(self, labels: dict[int, int]) -> None:
        self._labels.update(labels)

    def expire(self, card_before: int, terminal_before: int) -> None:
        """Drop card events at or before ``card_before`` and terminal events (with their
        labels and seen ids) at or before ``terminal_before``; seconds since 1970-01-01."""
        for card in list(self._cards):
            seconds, amounts = self._cards[card]
            cut = bisect.bisect_right(seconds, card_before)
            if cut == len(seconds):
                del self._cards[card]
            elif cut:
                del seconds[:cut], amounts[:cut]
        for terminal in list(self._terminals):
            seconds, ids = self._terminals[terminal]
            cut = bisect.bisect_right(seconds, terminal_before)
            for transaction_id in ids[:cut]:
                self._labels.pop(transaction_id, None)
                self._seen.pop(transaction_id, None)
            if cut == len(seconds):
                del self._terminals[terminal]
            elif cut:
                del seconds[:cut], ids[:cut]

    def mark_loaded(self) -> None:
        """Nothing to mark: this state lives and dies with its process."""

    def intact(self, *, loaded: bool) -> bool:
        """Always True: an in-process state cannot be lost while the process runs."""
        return True

    def size(self) -> dict[str, int]:
        return {
            "cards": len(self._cards),
            "terminals": len(self._terminals),
            "events": sum(len(s) for s, _ in self._cards.values())
            + sum(len(s) for s, _ in self._terminals.values()),
            "labels": len(self._labels),
        }


class OnlineFeatures:
    """Computes :data:`contract.FEATURES` for each new transaction and updates the state.

    Args:
        store: where the events and the clock live.
        label_delay_days: as in training (the champion's ``label_delay_days`` tag).
        max_event_skew_seconds: the clock's ``skew`` (≥ 0), see the module docstring.
    """

    def __init__(
        self,
        store: StateStore,
        label_delay_days: int = 7,
        max_event_skew_seconds: int = DEFAULT_SKEW_SECONDS,
    ) -> None:
        if max_event_skew_seconds < 0:
            raise ValueError(f"max_event_skew_seconds must be >= 0, got {max_event_skew_seconds}")
        self.store = store
        self.lag = label_delay_days * SECONDS_PER_DAY
        self.skew = int(max_event_skew_seconds)
        self._last_expiry: int | None = None
        self._loaded = False  # warm-up fed rows: the store must still hold its marker

    @staticmethod
    def _event(tx: Transaction) -> Event:
        return (
            tx.transaction_id,
            tx.customer_id,
            tx.terminal_id,
            to_seconds(tx.tx_datetime),
            float(tx.tx_amount),
        )

    def observe(self, tx: Transaction) -> dict[str, float]:
        """Record ``tx`` in the state and return its 18 features (bit-identical to offline).

        Raises:
            EventRefused: ``tx`` breaks the clock rule, or reuses a transaction id the state
                holds with other values; the state is unchanged.
        """
        return self.observe_many([tx])[0]

    def observe_many(self, transactions: Sequence[Transaction]) -> list[dict[str, float]]:
        """Record transactions in order and return their features: all of them, or none.

        Each one's features count the ones before it, as if observed one by one. A retried
        transaction id (same card, terminal, second and amount) is not recorded twice.

        Raises:
            EventRefused: one of them breaks the clock rule or reuses a held transaction id
                with other values (``index`` says which); the state is unchanged.
        """
        events = [self._event(tx) for tx in transactions]
        if len(events) > 1:  # one call checks the whole batch; the rows then go in unchecked
            self.store.admit(events, self.skew, "check")
        out = []
        for tx, event in zip(transactions, events, strict=True):
            admitted = self.store.admit(
                [event], self.skew, "checked" if len(events) == 1 else "trusted"
            )
            out.append(self._features(tx, event[3], event[4]))
            self._advance(admitted.watermark)
        return out

    def _features(self, tx: Transaction, second: int, amount: float) -> dict[str, float]:
        stamp = naive(tx.tx_datetime)
        out: dict[str, float] = {
            c.TX_AMOUNT: amount,
            c.TX_DURING_WEEKEND: float(stamp.weekday() >= 5),
            c.TX_DURING_NIGHT: float(stamp.hour <= 6),
        }
        widest = WIDEST_SECONDS
        card_seconds, card_amounts = self.store.card_events(tx.customer_id, second - widest)
        # events after this transaction (late arrivals) are not in its windows
        stop = bisect.bisect_right(card_seconds, second)
        card_seconds, card_units = card_seconds[:stop], amount_units(card_amounts[:stop])
        for window in c.WINDOWS_DAYS:
            start = bisect.bisect_right(card_seconds, second - window * SECONDS_PER_DAY)
            count = len(card_seconds) - start
            # as offline, an empty window has mean 0 (and ratio 1.0); the transaction's own
            # event is always in its window, so this guards a state that lacks it
            mean = float(mean_amount(int(card_units[start:].sum()), count)) if count else 0.0
            out[c.customer_count_feature(window)] = float(count)
            out[c.customer_mean_amount_feature(window)] = mean
            out[c.amount_ratio_feature(window)] = amount / mean if mean > 0 else 1.0
        events = self.store.terminal_events(
            tx.terminal_id, second - self.lag - widest, second - self.lag
        )
        labels = self.store.labels([t for _, t in events]) if events else []
        ev_seconds = [s for s, _ in events]
        for window in c.WINDOWS_DAYS:
            start = bisect.bisect_right(ev_seconds, second - self.lag - window * SECONDS_PER_DAY)
            count = len(ev_seconds) - start
            frauds = sum(labels[start:])
            out[c.terminal_count_feature(window)] = float(count)
            out[c.terminal_risk_feature(window)] = frauds / count if count else 0.0
        return {name: out[name] for name in c.FEATURES}

    def expiry_cuts(self, watermark: int) -> tuple[int, int]:
        """(card, terminal) cut for ``watermark``: events at or before a cut are expired."""
        card_cut = watermark - WIDEST_SECONDS - self.skew
        return card_cut, card_cut - self.lag

    def _advance(self, watermark: int | None) -> None:
        """Expire what the watermark leaves behind, at most once per day of watermark time."""
        if watermark is None:
            return
        if self._last_expiry is not None and watermark - self._last_expiry < SECONDS_PER_DAY:
            return
        self._last_expiry = watermark
        self.store.expire(*self.expiry_cuts(watermark))

    def feedback(self, labels: dict[int, int]) -> None:
        """Record confirmed labels (transaction id → 0/1); they count once older than the delay."""
        self.store.set_labels(labels)

    def warm_up(self, history: pd.DataFrame) -> int:
        """Feed a labelled history (rows × contract columns, any order) into the state.

        The history is trusted (not checked against the clock); the watermark becomes the
        newest of its own and the history's times. Ids already in the state are skipped.

        Returns:
            The number of rows fed. Labels of the history are taken as received.
        """
        ordered = history.sort_values([c.TX_DATETIME, c.TRANSACTION_ID], kind="stable")
        seconds = ordered[c.TX_DATETIME].values.astype("datetime64[s]").astype(np.int64)
        events: list[Any] = list(
            zip(
                ordered[c.TRANSACTION_ID].astype(int).tolist(),
                ordered[c.CUSTOMER_ID].astype(int).tolist(),
                ordered[c.TERMINAL_ID].astype(int).tolist(),
                seconds.tolist(),
                ordered[c.TX_AMOUNT].astype(float).tolist(),
                strict=True,
            )
        )
        admitted = self.store.admit(events, self.skew, "trusted")
        if c.LABEL in ordered:
            frauds = ordered.loc[ordered[c.LABEL] == 1, c.TRANSACTION_ID]
            self.store.set_labels({int(t): 1 for t in frauds})
        self._advance(admitted.watermark)
        if len(ordered):
            self.store.mark_loaded()
            self._loaded = True
        return len(ordered)

    def intact(self) -> bool:
        """Whether the store answers and still holds what warm-up loaded (False after a Redis
        flush, or while Redis is unreachable): the service is then not ready."""
        return self.store.intact(loaded=self._loaded)


# The rules of :func:`check_events`, the insert of :meth:`MemoryStore.admit` and the trim,
# atomically in Redis. KEYS: clock hash, seen zset, fingerprint hash, then (card, terminal) per
# event. ARGV: mode, skew, card retention, terminal retention, card TTL, terminal TTL, then (id,
# second, amount text, fingerprint text) per event. Returns {refused position (1-based, 0:
# none), reason, watermark or -1, then one 1/0 per event: inserted}; a conflict adds the held
# fingerprint after the watermark. TIME is allowed before writes (effects replication, Redis 5+).
_ADMIT_LUA = """
local mode = ARGV[1]
local skew, card_ret, term_ret = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local card_ttl, term_ttl = tonumber(ARGV[5]), tonumber(ARGV[6])
local n = (#ARGV - 6) / 4
local clock = redis.call('HMGET', KEYS[1], 'watermark', 'moved_at')
local w, at = tonumber(clock[1]), tonumber(clock[2]) or 0
local now = tonumber(redis.call('TIME')[1])
if mode ~= 'trusted' then
  local cw, cat = w, at
  local pending = {}
  for i = 1, n do
    local id, s, fp = ARGV[3 + 4 * i], tonumber(ARGV[4 + 4 * i]), ARGV[6 + 4 * i]
    if cw then
      if s > cw + skew + math.max(0, now - cat) then return {i, 'ahead', cw} end
      if s <= cw - card_ret - skew then return {i, 'too_old', cw} end
    end
    local known = pending[id] or redis.call('HGET', KEYS[3], id)
    if known and known ~= fp then return {i, 'conflict', cw or -1, known} end
    pending[id] = known or fp
    if (not cw) or s > cw then cw, cat = s, now end
  end
  if mode == 'check' then return {0, '', w or -1} end
end
local out = {0, '', 0}
local moved = false
for i = 1, n do
  local id, s = ARGV[3 + 4 * i], tonumber(ARGV[4 + 4 * i])
  if redis.call('ZADD', KEYS[2], 'NX', s, id) == 1 then
    redis.call('HSET', KEYS[3], id, ARGV[6 + 4 * i])
    redis.call('ZADD', KEYS[2 * i + 2], s, id .. ':' .. ARGV[5 + 4 * i])
    redis.call('ZADD', KEYS[2 * i + 3], s, id)
    out[3 + i] = 1
  else
    out[3 + i] = 0
  end
  if (not w) or s > w then w, at, moved = s, now, true end
end
if not w then return {0, '', -1} end
if moved then redis.call('HSET', KEYS[1], 'watermark', w, 'moved_at', at) end
local card_cut, term_cut = w - card_ret - skew, w - term_ret - skew
local done = {}
for i = 1, n do
  local card, term = KEYS[2 * i + 2], KEYS[2 * i + 3]
  if not done[card] then
    done[card] = true
    redis.call('ZREMRANGEBYSCORE', card, '-inf', card_cut)
    redis.call('EXPIRE', card, card_ttl)
  end
  if not done[term] then
    done[term] = true
    redis.call('ZREMRANGEBYSCORE', term, '-inf', term_cut)
    redis.call('EXPIRE', term, term_ttl)
  end
end
local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', term_cut)
for j = 1, #gone, 1000 do
  redis.call('HDEL', KEYS[3], unpack(gone, j, math.min(j + 999, #gone)))
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', term_cut)
out[3] = w
return out
"""


class RedisStore:
    """State shared by several service replicas in Redis (sorted sets keyed by second).

    Keys, under ``prefix``: ``card:<id>`` (members ``<tx id>:<amount>``), ``terminal:<id>``
    (members ``<tx id>``), ``label:<tx id>``, ``seen`` (transaction ids by second, for
    idempotency), ``fingerprint`` (hash: transaction id → ``card:terminal:second:amount``, the
    values a retry must repeat; trimmed with ``seen``) and ``clock`` (hash: ``watermark``,
    ``moved_at``). Each write runs one Lua script: the clock and id checks, the insert of unseen
    ids, the watermark update and the trim of the touched keys, ``seen`` and ``fingerprint`` at
    the watermark's cuts; card and terminal keys get a TTL of their retention plus a day of
    wall time, so an idle entity's key disappears; labels expire after ``label_ttl_seconds``.

    Args:
        url: ``redis://host:port/db``.
        label_delay_days: to size the terminal retention (delay + 30 days).
        prefix: key prefix (one state per prefix).
    """

    CHUNK = 2_000  # events per script call at warm-up

    def __init__(self, url: str, label_delay_days: int = 7, prefix: str = "fraudops") -> None:
        import redis

        self._redis = redis.Redis.from_url(url)
        self._prefix = prefix
        self._card_retention = WIDEST_SECONDS
        self._terminal_retention = WIDEST_SECONDS + label_delay_days * SECONDS_PER_DAY
        self.label_ttl_seconds = self._terminal_retention + SECONDS_PER_DAY
        self._admit = self._redis.register_script(_ADMIT_LUA)

    def _key(self, kind: str, ident: int) -> str:
        return f"{self._prefix}:{kind}:{ident}"

    @property
    def clock_key(self) -> str:
        """The hash holding the watermark (present once the state has an event)."""
        return f"{self._prefix}:clock"

    def ping(self) -> bool:
        return bool(self._redis.ping())

    def card_events(self, card: int, since: int) -> tuple[list[int], list[float]]:
        rows: Any = self._redis.zrangebyscore(
            self._key("card", card), f"({since}", "+inf", withscores=True
        )
        return [int(s) for _, s in rows], [float(m.split(b":", 1)[1]) for m, _ in rows]

    def admit(self, events: Sequence[Event], skew: int, mode: Mode) -> Admitted:
        """As :meth:`MemoryStore.admit`, atomically across replicas (one round trip per
        :attr:`CHUNK` events).

        Raises:
            EventRefused: in ``check``/``checked`` mode; nothing is written then.
        """
        if len(events) > self.CHUNK and mode != "trusted":
            self.admit(events, skew, "check")
            mode = "trusted"
        watermark: int | None = None
        inserted: list[bool] = []
        for start in range(0, max(len(events), 1), self.CHUNK):
            chunk = events[start : start + self.CHUNK]
            keys = [self.clock_key, f"{self._prefix}:seen", f"{self._prefix}:fingerprint"]
            args: list[Any] = [
                mode,
                skew,
                self._card_retention,
                self._terminal_retention,
                self._card_retention + skew + SECONDS_PER_DAY,
                self._terminal_retention + skew + SECONDS_PER_DAY,
            ]
            for event in chunk:
                tx_id, card, terminal, second, amount = event
                keys += [self._key("card", card), self._key("terminal", terminal)]
                args += [tx_id, second, repr(float(amount)), fingerprint_text(event)]
            reply: Any = self._admit(keys=keys, args=args)
            refused, reason, mark = int(reply[0]), reply[1].decode(), int(reply[2])
            if refused:
                event = chunk[refused - 1]
                differs = (
                    differing_fields(parse_fingerprint(reply[3].decode()), event)
                    if reason == CONFLICT
                    else []
                )
                raise EventRefused(
                    start + refused - 1,
                    int(event[3]),
                    None if mark < 0 else mark,
                    reason,
                    skew,
                    transaction_id=int(event[0]) if reason == CONFLICT else None,
                    differs=differs,
                )
            watermark = None if mark < 0 else mark
            inserted += [bool(v) for v in reply[3:]]
        return Admitted(watermark, inserted)

    def watermark(self) -> int | None:
        """Newest accepted event time (seconds since 1970-01-01); None while empty."""
        value: Any = self._redis.hget(self.clock_key, "watermark")
        return None if value is None else int(value)

    def terminal_events(self, terminal: int, since: int, until: int) -> list[tuple[int, int]]:
        rows: Any = self._redis.zrangebyscore(
            self._key("terminal", terminal), f"({since}", until, withscores=True
        )
        return [(int(s), int(m)) for m, s in rows]

    def labels(self, transaction_ids: Sequence[int]) -> list[int]:
        values: Any = self._redis.mget([self._key("label", t) for t in transaction_ids])
        return [int(v) if v is not None else 0 for v in values]

    def set_labels(self, labels: dict[int, int]) -> None:
        pipe = self._redis.pipeline(transaction=False)
        for tx_id, label in labels.items():
            pipe.set(self._key("label", tx_id), int(label), ex=self.label_ttl_seconds)
        pipe.execute()

    def expire(self, card_before: int, terminal_before: int) -> None:
        """Nothing to do: events are trimmed on each write, keys and labels expire by TTL."""

    def mark_loaded(self) -> None:
        """Write the marker that warm-up loaded this state (no TTL; gone after a flush)."""
        self._redis.set(f"{self._prefix}:loaded", 1)

    def intact(self, *, loaded: bool) -> bool:
        """Redis answers and, when ``loaded``, still holds warm-up's marker (one round trip)."""
        import redis

        try:
            if loaded:
                return bool(self._redis.exists(f"{self._prefix}:loaded"))
            return bool(self._redis.ping())
        except redis.RedisError:
            return False

    def size(self) -> dict[str, int]:
        keys: Any = self._redis.dbsize()
        return {"keys": int(keys)}

    def clear(self) -> None:
        """Delete every key under the prefix (tests, and re-initialising a shared state)."""
        keys = list(self._redis.scan_iter(f"{self._prefix}:*", count=10_000))
        for start in range(0, len(keys), 10_000):
            self._redis.delete(*keys[start : start + 10_000])
