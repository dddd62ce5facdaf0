"""The review queue's figures for ``/metrics`` and the monitoring report: queue depth, case
age, decisions per hour, and how often analysts agreed with the chargebacks that followed."""

from __future__ import annotations

import datetime as dt
from collections.abc import Hashable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from fraudops.cases.labels import Agreement, agreement
from fraudops.cases.store import CaseStore, QueueStats, utcnow
from fraudops.logs.predlog import log_files
from fraudops.logs.records import LABEL_ID

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


class FigureReader:
    """:class:`ReviewFigures` read again and again (the service's gauges, every 15 s) at the
    cost of what changed: each label-log part file is read once (the writer never rewrites
    one) and only its rows of alerted events (a case's event) are kept, so the agreement is
    computed over those rows, not over every label of :data:`AGREEMENT_DAYS` days.

    Args:
        store: the case store (its queue figures and the alerted event ids).
        label_log_dir: the label log's root (``date=YYYY-MM-DD/part-*.parquet``).
    """

    def __init__(self, store: CaseStore, label_log_dir: Path) -> None:
        self.store = store
        self.label_log_dir = label_log_dir
        self._alerted: set[Hashable] = set()
        self._newest_case = 0
        self._kept: dict[Path, pd.DataFrame] = {}

    def read(self, now: dt.datetime | None = None) -> ReviewFigures:
        """The figures now (naive UTC); the agreement over the last :data:`AGREEMENT_DAYS`
        days of labels."""
        now = now or utcnow()
        parts = log_files(self.label_log_dir, (now - dt.timedelta(days=AGREEMENT_DAYS)).date())
        # the cases after the listing: a label's case opened before its label was written
        self._newest_case, new_ids = self.store.event_ids(self._newest_case)
        self._alerted.update(new_ids)
        for path in parts:
            if path not in self._kept:
                rows = pd.read_parquet(path)
                self._kept[path] = rows[rows[LABEL_ID].isin(self._alerted)]
        current = set(parts)
        self._kept = {path: rows for path, rows in self._kept.items() if path in current}
        labels = pd.concat([self._kept[p] for p in parts], ignore_index=True) if parts else None
        return ReviewFigures(
            queue=self.store.stats(now),
            agreement=agreement(labels)
            if labels is not None and len(labels)
            else Agreement(0, 0, 0, 0),
        )


def review_figures(
    store: CaseStore, label_log_dir: Path, now: dt.datetime | None = None
) -> ReviewFigures:
    """The figures now (naive UTC), read once (:class:`FigureReader`)."""
    return FigureReader(store, label_log_dir).read(now)
