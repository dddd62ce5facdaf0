"""The shadow worker gathers queued jobs into one scoring call and never makes a drain wait."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field

import numpy as np
import pytest

from fraudops.logs.records import CHALLENGER_SCORE, LOG_ID
from fraudops.registry.stage import SHADOW, Stage
from fraudops.serving import challenger as shadow
from fraudops.serving.challenger import Challenger, ChallengerCounters, ShadowJob, ShadowWorker

pytestmark = pytest.mark.unit


@dataclass
class CountingModel:
    """A challenger that scores every row 0.9 and records the size of each call."""

    version: str = "2"
    threshold: float = 0.5
    calls: list[int] = field(default_factory=list)

    def predict(self, rows):
        self.calls.append(len(rows))
        return np.full(len(rows), 0.9)


def loaded(model: CountingModel) -> Challenger:
    return Challenger(model, Stage(SHADOW, dt.datetime(2026, 12, 7, tzinfo=dt.UTC), "1"))


def job(challenger: Challenger, event_id: int) -> ShadowJob:
    when = dt.datetime(2018, 7, 15, 12, 0, event_id)
    return ShadowJob(challenger, "1", [{"amount": 1.0}], np.array([0.1]), [(event_id, when, {})])


@dataclass
class Running:
    """A shadow worker that pauses 60 s to gather jobs, its challenger and what it wrote."""

    worker: ShadowWorker
    challenger: Challenger
    model: CountingModel
    written: list[dict]


@pytest.fixture
def running(monkeypatch):
    monkeypatch.setattr(shadow, "BATCH_WAIT_SECONDS", 60.0)
    model, written = CountingModel(), []
    worker = ShadowWorker(written.extend, ChallengerCounters())
    yield Running(worker, loaded(model), model, written)
    worker.close()


def test_jobs_queued_while_the_worker_gathers_are_scored_in_one_call(running):
    for event_id in range(50):  # requests a few milliseconds apart
        assert running.worker.submit(job(running.challenger, event_id))
        time.sleep(0.005)
    assert running.worker.drain(timeout=10)
    assert running.model.calls == [50]
    assert [row[LOG_ID] for row in running.written] == list(range(50))
    assert {row[CHALLENGER_SCORE] for row in running.written} == {0.9}


def test_a_drain_does_not_wait_out_the_gathering_pause(running):
    worker, challenger = running.worker, running.challenger
    worker.submit(job(challenger, 1))
    assert worker.drain(timeout=10), "the queued job waited for the 60 s pause"
    worker.submit(job(challenger, 2))  # the pause applies again after a drain
    assert worker.drain(timeout=10)
    assert [row[LOG_ID] for row in running.written] == [1, 2]
