"""Online features: the offline features of :mod:`fraudops.features`, one transaction at a time.

The state keeps, per card, the (second, amount) of its transactions of the last 30 days and,
per terminal, the (second, transaction id) of its transactions of the last ``label_delay +
30`` days, plus the labels received so far. Older events expire, so memory is bounded by the
traffic of those windows. Window semantics equal the offline function's: a card window is
``(t - w, t]`` including the transaction itself and earlier ones of the same second; a terminal
window is ``(t - delay - w, t - delay]``, counting as fraud only the labels already received.
Transactions are expected in time order; a late one is inserted at its place.

Two stores share this logic: :class:`MemoryStore` (one process) and :class:`RedisStore`
(several replicas share the state). Timestamps are truncated to whole seconds; time-zone aware
timestamps are converted to UTC and made naive, as the training data is.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from fraudops import contract as c
from fraudops.features import SECONDS_PER_DAY, amount_units, mean_amount

EPOCH = dt.datetime(1970, 1, 1)


def naive(timestamp: dt.datetime | pd.Timestamp) -> pd.Timestamp:
    """The timestamp as the training data has it: naive, aware ones converted to UTC first."""
    stamp = pd.Timestamp(timestamp)
    return stamp if stamp.tzinfo is None else stamp.tz_convert("UTC").tz_localize(None)


def to_seconds(timestamp: dt.datetime | pd.Timestamp) -> int:
    """Whole seconds since 1970-01-01 of :func:`naive` ``timestamp``."""
    return int((naive(timestamp) - pd.Timestamp(EPOCH)) // pd.Timedelta(seconds=1))


@dataclass(frozen=True)
class Transaction:
    """One raw transaction as the service receives it (amount in currency units, ≥ 0)."""

    transaction_id: int
    tx_datetime: dt.datetime
    customer_id: int
    terminal_id: int
    tx_amount: float


#: (transaction id, card, terminal, second, amount) of one transaction.
Event = tuple[int, int, int, int, float]


class StateStore(Protocol):
    """Storage of the per-card and per-terminal events; see :class:`MemoryStore`."""

    def card_events(self, card: int, since: int) -> tuple[list[int], list[float]]: ...
    def terminal_events(self, terminal: int, since: int, until: int) -> list[tuple[int, int]]: ...
    def add_events(self, events: Iterable[Event]) -> None: ...
    def labels(self, transaction_ids: Sequence[int]) -> list[int]: ...
    def set_labels(self, labels: dict[int, int]) -> None: ...
    def expire(self, card_before: int, terminal_before: int) -> None: ...
    def size(self) -> dict[str, int]: ...


class MemoryStore:
    """In-process state: dicts of time-sorted lists (one service process)."""

    def __init__(self) -> None:
        self._cards: dict[int, tuple[list[int], list[float]]] = {}
        self._terminals: dict[int, tuple[list[int], list[int]]] = {}
        self._labels: dict[int, int] = {}

    def card_events(self, card: int, since: int) -> tuple[list[int], list[float]]:
        seconds, amounts = self._cards.get(card, ([], []))
        start = bisect.bisect_right(seconds, since)
        return seconds[start:], amounts[start:]

    def add_events(self, events: Iterable[Event]) -> None:
        for tx_id, card, terminal, second, amount in events:
            seconds, amounts = self._cards.setdefault(card, ([], []))
            at = bisect.bisect_right(seconds, second)
            seconds.insert(at, second)
            amounts.insert(at, amount)
            t_seconds, ids = self._terminals.setdefault(terminal, ([], []))
            at = bisect.bisect_right(t_seconds, second)
            t_seconds.insert(at, second)
            ids.insert(at, tx_id)

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
            if cut == len(seconds):
                del self._terminals[terminal]
            elif cut:
                del seconds[:cut], ids[:cut]

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
        store: where the events live.
        label_delay_days: as in training (the champion's ``label_delay_days`` tag).
    """

    def __init__(self, store: StateStore, label_delay_days: int = 7) -> None:
        self.store = store
        self.lag = label_delay_days * SECONDS_PER_DAY
        self.latest = 0
        self._last_expiry = 0

    def observe(self, tx: Transaction) -> dict[str, float]:
        """Record ``tx`` in the state and return its 18 features (bit-identical to offline)."""
        second = to_seconds(tx.tx_datetime)
        amount = float(tx.tx_amount)
        self.store.add_events([(tx.transaction_id, tx.customer_id, tx.terminal_id, second, amount)])
        features = self._features(tx, second, amount)
        self._advance(second)
        return features

    def _features(self, tx: Transaction, second: int, amount: float) -> dict[str, float]:
        stamp = naive(tx.tx_datetime)
        out: dict[str, float] = {
            c.TX_AMOUNT: amount,
            c.TX_DURING_WEEKEND: float(stamp.weekday() >= 5),
            c.TX_DURING_NIGHT: float(stamp.hour <= 6),
        }
        widest = c.MAX_WINDOW_DAYS * SECONDS_PER_DAY
        card_seconds, card_amounts = self.store.card_events(tx.customer_id, second - widest)
        # events after this transaction (late arrivals) are not in its windows
        stop = bisect.bisect_right(card_seconds, second)
        card_seconds, card_units = card_seconds[:stop], amount_units(card_amounts[:stop])
        for window in c.WINDOWS_DAYS:
            start = bisect.bisect_right(card_seconds, second - window * SECONDS_PER_DAY)
            count = len(card_seconds) - start
            mean = float(mean_amount(int(card_units[start:].sum()), count))
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

    def _advance(self, second: int) -> None:
        """Expire events older than every window, at most once per day of transaction time."""
        self.latest = max(self.latest, second)
        if self.latest - self._last_expiry < SECONDS_PER_DAY:
            return
        self._last_expiry = self.latest
        widest = c.MAX_WINDOW_DAYS * SECONDS_PER_DAY
        self.store.expire(self.latest - widest, self.latest - self.lag - widest)

    def feedback(self, labels: dict[int, int]) -> None:
        """Record confirmed labels (transaction id → 0/1); they count once older than the delay."""
        self.store.set_labels(labels)

    def warm_up(self, history: pd.DataFrame) -> int:
        """Feed a labelled history (rows × contract columns, any order) into the state.

        Returns:
            The number of rows fed. Labels of the history are taken as received.
        """
        ordered = history.sort_values([c.TX_DATETIME, c.TRANSACTION_ID], kind="stable")
        seconds = ordered[c.TX_DATETIME].values.astype("datetime64[s]").astype(np.int64)
        events: Iterable[Any] = zip(
            ordered[c.TRANSACTION_ID].astype(int).tolist(),
            ordered[c.CUSTOMER_ID].astype(int).tolist(),
            ordered[c.TERMINAL_ID].astype(int).tolist(),
            seconds.tolist(),
            ordered[c.TX_AMOUNT].astype(float).tolist(),
            strict=True,
        )
        self.store.add_events(events)
        if c.LABEL in ordered:
            frauds = ordered.loc[ordered[c.LABEL] == 1, c.TRANSACTION_ID]
            self.store.set_labels({int(t): 1 for t in frauds})
        if len(seconds):
            self._advance(int(seconds.max()))
        return len(ordered)


class RedisStore:
    """State shared by several service replicas in Redis (sorted sets keyed by second).

    Keys, under ``prefix``: ``card:<id>`` (members ``<tx id>:<amount>``), ``terminal:<id>``
    (members ``<tx id>``), ``label:<tx id>``. Events older than the retention are trimmed on
    each write; labels expire after ``label_ttl_seconds`` of wall time.

    Args:
        url: ``redis://host:port/db``.
        label_delay_days: to size the terminal retention (delay + 30 days).
    """

    def __init__(self, url: str, label_delay_days: int = 7, prefix: str = "fraudops") -> None:
        import redis

        self._redis = redis.Redis.from_url(url)
        self._prefix = prefix
        widest = c.MAX_WINDOW_DAYS * SECONDS_PER_DAY
        self._card_retention = widest
        self._terminal_retention = widest + label_delay_days * SECONDS_PER_DAY
        self.label_ttl_seconds = self._terminal_retention + SECONDS_PER_DAY

    def _key(self, kind: str, ident: int) -> str:
        return f"{self._prefix}:{kind}:{ident}"

    def ping(self) -> bool:
        return bool(self._redis.ping())

    def card_events(self, card: int, since: int) -> tuple[list[int], list[float]]:
        rows: Any = self._redis.zrangebyscore(
            self._key("card", card), f"({since}", "+inf", withscores=True
        )
        return [int(s) for _, s in rows], [float(m.split(b":", 1)[1]) for m, _ in rows]

    def add_events(self, events: Iterable[Event]) -> None:
        """Record transactions for their cards and terminals, trimming expired events."""
        pipe = self._redis.pipeline(transaction=False)
        for n, (tx_id, card, terminal, second, amount) in enumerate(events, start=1):
            card_key, terminal_key = self._key("card", card), self._key("terminal", terminal)
            pipe.zadd(card_key, {f"{tx_id}:{amount!r}": second})
            pipe.zremrangebyscore(card_key, "-inf", second - self._card_retention)
            pipe.zadd(terminal_key, {str(tx_id): second})
            pipe.zremrangebyscore(terminal_key, "-inf", second - self._terminal_retention)
            if n % 5_000 == 0:
                pipe.execute()
        pipe.execute()

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
        """Nothing to do: events are trimmed on each write, labels expire by TTL."""

    def size(self) -> dict[str, int]:
        keys: Any = self._redis.dbsize()
        return {"keys": int(keys)}

    def clear(self) -> None:
        """Delete every key under the prefix (tests, and re-initialising a shared state)."""
        keys = list(self._redis.scan_iter(f"{self._prefix}:*", count=10_000))
        for start in range(0, len(keys), 10_000):
            self._redis.delete(*keys[start : start + 10_000])
