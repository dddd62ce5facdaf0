"""The challenger beside the champion in the service: shadow scoring, canary guardrails.

In **shadow** the champion answers at once; the events' feature rows and champion scores go to
a bounded queue that one background thread scores with the challenger and writes to the
challenger log, so a slow or failing challenger never delays or fails a request (a full queue
drops the job and counts it). In **canary** the challenger decides, synchronously, for the
entities :mod:`fraudops.serving.routing` assigns it (its failure falls back to the champion's
answer, counted), and shadows the rest. :class:`Guardrails` compare the canary's share with the
champion's on recent requests and name the first breach; the scorer then stops the canary at
once and records the rollback in the registry.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from fraudops.logs.records import (
    CHALLENGER_ROLE,
    CHAMPION_ROLE,
    ChallengerRecord,
)
from fraudops.registry.stage import Stage
from fraudops.streaming.clock import naive

logger = logging.getLogger(__name__)

ALERT, PASS = "alert", "pass"
#: Shadow jobs scored in one call at most (a busy queue is scored in batches), and how long
#: the shadow thread lets jobs gather before scoring (seconds; evidence may wait, answers not).
#: A call's fixed cost (scikit-learn walks its 300 trees with a Python step each, ~2 ms) is
#: shared by the hundreds of events a quarter second gathers: with 0.02 s (tens of events a
#: call) shadow scoring cost 24-32 % of single-transaction throughput, with 0.25 s 2-7 %
#: (``benchmarks/shadow.py``, 2026-12-07).
MAX_JOBS_PER_CALL, BATCH_WAIT_SECONDS = 1_000, 0.25
#: A canary's p99 latency never breaches below this (milliseconds): sub-millisecond jitter of
#: a fast champion is not a regression.
LATENCY_FLOOR_MS = 5.0


@dataclass(frozen=True)
class Challenger:
    """The loaded ``@challenger`` and the stage it is in (swapped as a whole by the poller)."""

    model: Any  # a fraudops.serving.scorer.ChampionModel
    stage: Stage

    @property
    def version(self) -> str:
        return str(self.model.version)


@dataclass
class ChallengerCounters:
    """What happened to the challenger in this process (exported to ``/metrics``)."""

    scored: int = 0  # events the challenger scored (shadow and canary)
    decided: int = 0  # events whose answer was the challenger's (canary)
    failures: int = 0  # scorings that raised (the champion answered)
    dropped: int = 0  # shadow jobs dropped: queue full
    load_failures: int = 0
    rollbacks: int = 0
    last_error: str | None = None


@dataclass(frozen=True)
class ShadowJob:
    """Events the champion answered, for the challenger to score in the background."""

    challenger: Challenger
    champion_version: str
    rows: list[dict[str, Any]]
    champion_scores: np.ndarray
    events: list[tuple[Any, dt.datetime, Mapping[str, Any]]]  # (id, time, logged entities)
    decided_by: str = CHAMPION_ROLE


def records(job: ShadowJob, challenger_scores: np.ndarray, took_ms: float) -> list[dict[str, Any]]:
    """The challenger-log rows of a scored job (:class:`ChallengerRecord`)."""
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    model = job.challenger.model
    return [
        ChallengerRecord(
            event_id=event_id,
            event_time=naive(event_time),
            entities=entities,
            stage=job.challenger.stage.stage,
            decided_by=job.decided_by,
            champion_version=job.champion_version,
            champion_score=float(old),
            challenger_version=job.challenger.version,
            challenger_score=float(new),
            challenger_decision=ALERT if new >= model.threshold else PASS,
            challenger_ms=took_ms,
            scored_at=now,
        ).row()
        for (event_id, event_time, entities), old, new in zip(
            job.events, job.champion_scores, challenger_scores, strict=True
        )
    ]


class ShadowWorker:
    """One background thread scoring :class:`ShadowJob` s with their challenger.

    Args:
        write: takes the challenger-log rows of a job (e.g. ``LogWriter.append_many``).
        counters: updated with scored events, failures and drops.
        max_jobs: queued jobs at most; more are dropped (counted), never waited for.
    """

    def __init__(
        self,
        write: Callable[[list[dict[str, Any]]], Any],
        counters: ChallengerCounters,
        max_jobs: int = 4_000,
    ) -> None:
        self.write = write
        self.counters = counters
        self._queue: queue.Queue[ShadowJob | None] = queue.Queue(maxsize=max_jobs)
        self._hurry = threading.Event()  # set by drain and close: score what is queued now
        self._thread = threading.Thread(target=self._run, name="shadow-scorer", daemon=True)
        self._thread.start()

    def submit(self, job: ShadowJob) -> bool:
        """Queue ``job`` without waiting; False (and counted) when the queue is full."""
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            self.counters.dropped += len(job.rows)
            return False
        return True

    def _run(self) -> None:
        while (job := self._queue.get()) is not None:
            jobs = [job]
            # let requests queue more (the wait releases the GIL to them): what queued meanwhile
            # is scored in the same call, one predict and one write for many events
            self._hurry.wait(BATCH_WAIT_SECONDS)
            while len(jobs) < MAX_JOBS_PER_CALL:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)  # stop after this batch
                    self._queue.task_done()
                    break
                jobs.append(more)
            try:
                self._score(jobs)
            finally:
                for _ in jobs:
                    self._queue.task_done()

    def _score(self, jobs: list[ShadowJob]) -> None:
        """Score jobs of the same challenger together; a failure costs that group's evidence."""
        groups: dict[int, list[ShadowJob]] = {}
        for job in jobs:
            groups.setdefault(id(job.challenger), []).append(job)
        for group in groups.values():
            rows = [row for job in group for row in job.rows]
            try:
                began = time.perf_counter()
                scores = group[0].challenger.model.predict(rows)
                took = (time.perf_counter() - began) * 1000
                self.counters.scored += len(rows)
                written, start = [], 0
                for job in group:
                    end = start + len(job.rows)
                    written.extend(records(job, scores[start:end], took))
                    start = end
                self.write(written)
            except Exception as exc:  # a broken challenger costs its own evidence only
                self.counters.failures += len(rows)
                self.counters.last_error = f"{type(exc).__name__}: {exc}"
                logger.warning("challenger failed in shadow: %s", self.counters.last_error)

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait until every queued job is scored (tests, benchmarks); False on timeout."""
        deadline = time.monotonic() + timeout
        self._hurry.set()
        try:
            while self._queue.unfinished_tasks and time.monotonic() < deadline:
                time.sleep(0.005)
        finally:
            self._hurry.clear()
        return not self._queue.unfinished_tasks

    def close(self, timeout: float = 10.0) -> None:
        """Score what is queued, then stop the thread."""
        self._hurry.set()
        self._queue.put(None)
        self._thread.join(timeout)


class _Window:
    """The last ``size`` requests of one role: events, alerts, latencies."""

    def __init__(self, size: int) -> None:
        self.requests: deque[tuple[int, int, float]] = deque(maxlen=size)

    def add(self, events: int, alerts: int, latency_ms: float) -> None:
        self.requests.append((events, alerts, latency_ms))

    def alert_rate(self) -> float:
        events = sum(r[0] for r in self.requests)
        return sum(r[1] for r in self.requests) / events if events else 0.0

    def p99(self) -> float:
        return float(np.percentile([r[2] for r in self.requests], 99)) if self.requests else 0.0


@dataclass(frozen=True)
class GuardrailRule:
    """When a canary is stopped (see the settings ``guardrail_*``).

    Attributes:
        min_requests: requests of each role before alert rate and latency are judged.
        alert_rate_ratio: the canary's alert rate may reach this times the champion's (or the
            alert budget, whichever is larger).
        alert_budget: the settings' ``alert_rate``, in (0, 1).
        error_rate: share of the canary's scorings that may fail.
        p99_ratio: the canary's p99 latency may reach this times the champion's (at least
            :data:`LATENCY_FLOOR_MS`).
    """

    min_requests: int = 200
    alert_rate_ratio: float = 3.0
    alert_budget: float = 0.01
    error_rate: float = 0.01
    p99_ratio: float = 3.0


class Guardrails:
    """Rolling comparison of the canary's requests with the champion's (thread-safe)."""

    def __init__(self, rule: GuardrailRule, window: int = 2_000) -> None:
        self.rule = rule
        self._roles = {CHAMPION_ROLE: _Window(window), CHALLENGER_ROLE: _Window(window)}
        self._attempts = 0
        self._errors = 0
        self._lock = threading.Lock()

    def observe(self, role: str, events: int, alerts: int, latency_ms: float) -> None:
        """One request answered by ``role`` (its events, alerts and latency)."""
        with self._lock:
            self._roles[role].add(events, alerts, latency_ms)

    def attempted(self, events: int, failed: bool) -> None:
        """The canary tried to decide ``events``; ``failed``: it raised."""
        with self._lock:
            self._attempts += events
            self._errors += events if failed else 0

    def breach(self) -> str | None:
        """The first guardrail the canary breaks, in words; None while within them."""
        rule = self.rule
        with self._lock:
            if self._attempts >= rule.min_requests:
                rate = self._errors / self._attempts
                if rate > rule.error_rate:
                    return f"canary error rate {rate:.2%} > {rule.error_rate:.2%}"
            old, new = self._roles[CHAMPION_ROLE], self._roles[CHALLENGER_ROLE]
            if min(len(old.requests), len(new.requests)) < rule.min_requests:
                return None
            limit = rule.alert_rate_ratio * max(old.alert_rate(), rule.alert_budget)
            if new.alert_rate() > limit:
                return (
                    f"canary alert rate {new.alert_rate():.2%} > {limit:.2%} "
                    f"({rule.alert_rate_ratio:g} x champion's {old.alert_rate():.2%})"
                )
            slowest = rule.p99_ratio * max(old.p99(), LATENCY_FLOOR_MS)
            if new.p99() > slowest:
                return (
                    f"canary p99 latency {new.p99():.1f} ms > {slowest:.1f} ms "
                    f"({rule.p99_ratio:g} x champion's {old.p99():.1f} ms)"
                )
        return None


def with_stage(challenger: Challenger, stage: Stage) -> Challenger:
    """The same loaded model in another stage (a mode change needs no reload)."""
    return dataclasses.replace(challenger, stage=stage)
