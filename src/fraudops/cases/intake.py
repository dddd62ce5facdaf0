"""Alerts → cases, off the request path: the scorer hands each request's alerts to a
:class:`CaseIntake`, whose one thread opens them in the case store in batches.

A scoring request never waits on, nor fails because of, the case store: the payment's
decision is already made and logged. While the store is unreachable, alerts wait in memory
(up to ``max_pending``; more are counted as dropped, and stay in the prediction log) and the
thread retries; :meth:`CaseIntake.close` drains what it can on shutdown.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence

from fraudops.cases.store import CaseStore, NewCase

logger = logging.getLogger(__name__)


class CaseIntake:
    """Opens cases for alerts in the background.

    Args:
        store: a factory of the case store, called in the thread (a down database does not
            stop the service from starting); flush_seconds: the longest an alert waits.
    """

    def __init__(
        self,
        store: Callable[[], CaseStore],
        flush_seconds: float = 0.5,
        max_pending: int = 100_000,
    ) -> None:
        self._factory = store
        self._store: CaseStore | None = None
        self._pending: deque[NewCase] = deque()
        self._max_pending = max_pending
        self._wake = threading.Condition()
        self._closing = False
        self.flush_seconds = flush_seconds
        self.opened = self.dropped = self.failures = 0
        self._thread = threading.Thread(target=self._run, name="case-intake", daemon=True)
        self._thread.start()

    def submit(self, alerts: Sequence[NewCase]) -> None:
        """Queue alerts for their cases (returns at once)."""
        if not alerts:
            return
        with self._wake:
            room = self._max_pending - len(self._pending)
            self._pending.extend(alerts[: max(room, 0)])
            self.dropped += max(len(alerts) - max(room, 0), 0)
            self._wake.notify()

    @property
    def pending(self) -> int:
        """Alerts not yet written as cases."""
        return len(self._pending)

    def _take(self) -> list[NewCase]:
        with self._wake:
            if not self._pending and not self._closing:
                self._wake.wait(self.flush_seconds)
            return list(self._pending)

    def _write(self, batch: list[NewCase]) -> bool:
        try:
            if self._store is None:
                self._store = self._factory()
            self.opened += self._store.open_cases(batch)
        except Exception as exc:  # a down store: keep the alerts, retry later
            self.failures += 1
            logger.warning("case store unavailable (%s); %d alerts wait", exc, len(batch))
            return False
        with self._wake:
            for _ in batch:
                self._pending.popleft()
        return True

    def _run(self) -> None:
        while True:
            closing = self._closing  # a write begun after close() is the last try
            batch = self._take()
            written = not batch or self._write(batch)
            if closing and (not written or not self._pending):
                return
            if not written:
                with self._wake:
                    if not self._closing:
                        self._wake.wait(min(5.0, self.flush_seconds * 10))

    def close(self, timeout: float = 10.0) -> None:
        """Write what is pending (one last try) and stop the thread."""
        with self._wake:
            self._closing = True
            self._wake.notify()
        self._thread.join(timeout)
        if self._store is not None:
            self._store.close()
