"""Replay a labelled history through a running service, day by day, with optional drift.

:class:`DriftInjector` applies the simulator's drift knobs to replayed rows from a date:
``amount`` multiplies every amount by ``amount_scale``; ``terminals`` compromises
``terminals_per_day`` new terminals a day, whose transactions in the next 28 days become frauds
(the handbook's scenario 2). :class:`ReplayClient` sends transactions in time order to
``/score_batch`` and labels, once older than the label delay, to ``/feedback``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
import numpy as np
import pandas as pd

from fraudops import contract as c

DriftKind = Literal["amount", "terminals"]


@dataclass
class DriftInjector:
    """Drift applied to replayed rows on and after ``start``.

    Attributes:
        kind: ``amount`` or ``terminals``.
        start: first drifted day.
        amount_scale: factor on amounts (``amount``).
        terminals_per_day: newly compromised terminals a day (``terminals``).
        seed: random seed of the terminal choice.
    """

    kind: DriftKind
    start: dt.date
    amount_scale: float = 2.0
    terminals_per_day: int = 40
    seed: int = 0
    _until: dict[int, pd.Timestamp] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._rng = np.random.default_rng(self.seed)

    def apply(self, day: pd.DataFrame, date: dt.date, terminals: np.ndarray) -> pd.DataFrame:
        """The day's rows with the drift of ``date`` applied (a copy when anything changes)."""
        if date < self.start or day.empty:
            return day
        day = day.copy()
        if self.kind == "amount":
            day[c.TX_AMOUNT] = (day[c.TX_AMOUNT] * self.amount_scale).round(2)
            return day
        new = self._rng.choice(
            terminals, size=min(self.terminals_per_day, len(terminals)), replace=False
        )
        until = pd.Timestamp(date) + pd.Timedelta(days=28)
        self._until.update({int(t): until for t in new})
        compromised = day[c.TERMINAL_ID].map(self._until)
        hit = (compromised.notna() & (day[c.TX_DATETIME] < compromised)).to_numpy()
        day.loc[hit, c.LABEL] = 1
        return day


def to_requests(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Raw API payloads (the contract's raw columns in lower case) for each row."""
    return [
        {
            "transaction_id": int(r[0]),
            "tx_datetime": r[1].isoformat(),
            "customer_id": int(r[2]),
            "terminal_id": int(r[3]),
            "tx_amount": float(r[4]),
        }
        for r in frame[list(c.RAW_COLUMNS)].itertuples(index=False, name=None)
    ]


class ReplayClient:
    """HTTP client of the scoring service (bounded timeouts; raises on any non-2xx answer)."""

    def __init__(self, url: str, token: str | None = None, batch_rows: int = 5_000) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.client = httpx.Client(base_url=url, headers=headers, timeout=120)
        self.batch_rows = batch_rows

    def score(self, frame: pd.DataFrame) -> list[dict[str, Any]]:
        """Score rows in time order; returns the service's answers."""
        answers: list[dict[str, Any]] = []
        payload = to_requests(frame.sort_values([c.TX_DATETIME, c.TRANSACTION_ID], kind="stable"))
        for start in range(0, len(payload), self.batch_rows):
            response = self.client.post(
                "/score_batch", json=payload[start : start + self.batch_rows]
            )
            response.raise_for_status()
            answers.extend(response.json())
        return answers

    def feedback(self, frame: pd.DataFrame, label_time: dt.datetime) -> int:
        """Send the rows' labels (all of them, frauds and genuine); returns how many."""
        labels = [
            {"transaction_id": int(t), "is_fraud": bool(y), "label_time": label_time.isoformat()}
            for t, y in zip(frame[c.TRANSACTION_ID], frame[c.LABEL], strict=True)
        ]
        for start in range(0, len(labels), 20_000):
            self.client.post("/feedback", json=labels[start : start + 20_000]).raise_for_status()
        return len(labels)

    def close(self) -> None:
        self.client.close()
