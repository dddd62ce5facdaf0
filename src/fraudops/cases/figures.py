"""The review queue's figures for ``/metrics`` and the monitoring report: queue depth, case
age, decisions per hour, and how often analysts agreed with the chargebacks that followed."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from fraudops.cases.labels import Agreement, agreement
from fraudops.cases.store import CaseStore, QueueStats, utcnow

#: Label-log days read for the agreement (chargebacks arrive within weeks of a decision).
AGREEMENT_DAYS = 120


@dataclass(frozen=True)
class ReviewFigures:
    """The queue (:class:`~fraudops.cases.store.QueueStats`) and the analysts' agreement with
    chargebacks (:class:`~fraudops.cases.labels.Agreement`) at one time."""

    queue: QueueStats
    agreement: Agreement

    def summary(self) -> str:
        """One line for a report header."""
        q, a = self.queue, self.agreement
        agreed = (
            f"analysts agreed with {a.agreed} of {a.compared} later chargebacks"
            if a.compared
            else "no chargeback yet on a reviewed case"
        )
        return (
            f"{q.open} cases undecided (oldest {q.oldest_open_hours:.1f} h), "
            f"{q.decided_last_hour} decided in the last hour, {q.decided_today} today; {agreed}"
        )


def read_recent_labels(label_log_dir: Path, since: dt.date) -> pd.DataFrame:
    """Label-log rows in day partitions from ``since`` on (empty frame when none)."""
    parts = [
        pd.read_parquet(path)
        for folder in sorted(label_log_dir.glob("date=*"))
        if dt.date.fromisoformat(folder.name.removeprefix("date=")) >= since
        for path in sorted(folder.glob("part-*.parquet"))
    ]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def review_figures(
    store: CaseStore, label_log_dir: Path, now: dt.datetime | None = None
) -> ReviewFigures:
    """The figures now (naive UTC); the agreement over the last :data:`AGREEMENT_DAYS` days of
    labels."""
    now = now or utcnow()
    labels = read_recent_labels(label_log_dir, (now - dt.timedelta(days=AGREEMENT_DAYS)).date())
    return ReviewFigures(
        queue=store.stats(now),
        agreement=agreement(labels) if len(labels) else Agreement(0, 0, 0, 0),
    )
