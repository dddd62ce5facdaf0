"""Simulated analysts for the demo: a team with a daily capacity works the queue by priority,
each decision some hours after the alert, with a small error rate.

The decisions go through the real store (:meth:`~fraudops.cases.store.CaseStore.claim`,
:meth:`~fraudops.cases.store.CaseStore.decide`), dated in the replay's time, so the labels
they become carry the delay an analyst team would give them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Hashable, Mapping
from dataclasses import dataclass

import numpy as np

from fraudops.cases.store import FRAUD, LEGITIMATE, Case, CaseStore


@dataclass(frozen=True)
class AnalystTeam:
    """How the simulated team works.

    Attributes:
        capacity: cases decided per day (the queue's top ones by priority), >= 0.
        review_hours: mean hours from an alert to its decision (exponential, at least
            ``min_hours``); error_rate: share of decisions that are wrong, in [0, 1].
        seed: of the delays and the errors.
    """

    capacity: int = 100
    review_hours: float = 4.0
    min_hours: float = 0.25
    error_rate: float = 0.02
    seed: int = 0

    def __post_init__(self) -> None:
        if self.capacity < 0 or self.review_hours <= 0 or not 0 <= self.error_rate <= 1:
            raise ValueError(
                f"analyst team: capacity {self.capacity} must be >= 0, review_hours "
                f"{self.review_hours} > 0, error_rate {self.error_rate} in [0, 1]"
            )


def review_day(
    store: CaseStore,
    team: AnalystTeam,
    truth: Mapping[Hashable, int],
    day: dt.date,
    rng: np.random.Generator,
) -> list[Case]:
    """Decide the day's share of the queue: its top ``capacity`` undecided cases.

    Args:
        truth: event id → its true label (0/1); a case whose event it lacks is left open.
        day: the replayed day (the decisions are dated in it or just after).

    Returns:
        The decided cases.
    """
    end_of_day = dt.datetime.combine(day, dt.time(23, 59, 59))
    queue, _ = store.queue(team.capacity, end_of_day)
    decided = []
    for number, case in enumerate(queue):
        if case.event_id not in truth:
            continue
        hours = max(team.min_hours, float(rng.exponential(team.review_hours)))
        at = max(
            case.event_time, case.opened_at if case.opened_at < end_of_day else case.event_time
        ) + dt.timedelta(hours=hours)
        right = bool(truth[case.event_id])
        fraud = right if rng.random() >= team.error_rate else not right
        analyst = f"sim-analyst-{number % 5 + 1}"
        store.claim(case.id, analyst, dt.timedelta(hours=1), at - dt.timedelta(minutes=5))
        decided.append(
            store.decide(
                case.id,
                analyst,
                FRAUD if fraud else LEGITIMATE,
                "simulated review",
                f"sim-{case.id:012d}",
                at,
            )
        )
    return decided
