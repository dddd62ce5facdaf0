"""The demo's warehouse: the history and one Parquet file per replayed day, in one folder that
the training flow and the service's warm-up read (:func:`fraudops.data.history.load`).

When the spec names a ``label.known_at`` column, each row carries the time its label reached
the service: the end of the day its chargeback was sent (the event's day plus the label delay,
as the demo's ``/feedback`` does), or the end of the day an analyst confirmed the fraud. An
analyst may confirm a fraud of an earlier day: that day's file is rewritten (a temporary file
renamed over it, so a training run reading the folder meanwhile sees the old or the new file,
never half of one). The demo delivers labels after each replayed day, so a label counts from
the next day's first event, offline as online.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Hashable, Iterable
from pathlib import Path

import pandas as pd

from fraudops.spec.model import DatasetSpec

#: When the demo's labels of a day reach the service (after the day's last event).
END_OF_DAY = dt.time(23, 59, 59)


class DemoWarehouse:
    """The warehouse folder of one demo run.

    Args:
        folder: created if missing; holds ``0000-history.parquet`` and ``day-<date>.parquet``.
        spec: the run's dataset spec (its time, id and ``label.known_at`` columns).
    """

    def __init__(self, folder: Path, spec: DatasetSpec) -> None:
        self.folder = folder
        self.spec = spec
        self._days: dict[dt.date, pd.DataFrame] = {}
        self._history_days: set[dt.date] = set()
        folder.mkdir(parents=True, exist_ok=True)

    @property
    def known_at(self) -> str | None:
        """The label arrival column the rows carry, or None (the spec has none)."""
        return self.spec.label.known_at

    def land_history(self, rows: pd.DataFrame) -> None:
        """Write the history before the replay (its labels by chargeback only)."""
        rows = self._with_chargebacks(rows)
        self._write(rows, self.folder / "0000-history.parquet")
        time = rows[self.spec.event_time.column].dt.date
        for day, part in rows.groupby(time):
            self._days[day] = part
            self._history_days.add(day)

    def land_day(self, day: dt.date, rows: pd.DataFrame) -> pd.DataFrame:
        """Write one replayed day; returns its rows as written (with ``known_at``)."""
        rows = self._with_chargebacks(rows)
        self._days[day] = rows
        self._write(rows, self._day_file(day))
        return rows

    def rows_of(self, day: dt.date) -> pd.DataFrame | None:
        """The rows of a replayed day, or of a history day when labels count by arrival (their
        chargebacks then come through ``/feedback`` like the replayed days')."""
        if day in self._history_days and not self.spec.labels_by_arrival():
            return None
        return self._days.get(day)

    def confirmed(self, event_ids: Iterable[Hashable], day: dt.date) -> int:
        """Analysts confirmed these frauds on ``day``: their labels are known from its end.

        Rewrites each replayed day file that holds one of them; history rows are left as they
        are (no analyst worked then). Returns how many rows changed.
        """
        column = self.known_at
        if column is None:
            return 0
        wanted = set(event_ids)
        at = pd.Timestamp(dt.datetime.combine(day, END_OF_DAY))
        changed = 0
        for held_day, rows in self._days.items():
            if held_day in self._history_days or not wanted:
                continue
            hit = rows[self.spec.event_id.column].isin(wanted) & (rows[column] > at)
            if hit.any():
                rows = rows.copy()
                rows.loc[hit, column] = at
                self._days[held_day] = rows
                self._write(rows, self._day_file(held_day))
                changed += int(hit.sum())
                wanted -= set(rows.loc[hit, self.spec.event_id.column])
        return changed

    def _with_chargebacks(self, rows: pd.DataFrame) -> pd.DataFrame:
        column = self.known_at
        if column is None:
            return rows
        day = rows[self.spec.event_time.column].dt.normalize()
        delay = pd.Timedelta(seconds=self.spec.label.delay).ceil("D")
        end = pd.Timedelta(days=1) - pd.Timedelta(seconds=1)  # END_OF_DAY
        return rows.assign(**{column: day + delay + end})

    def _day_file(self, day: dt.date) -> Path:
        return self.folder / f"day-{day}.parquet"

    @staticmethod
    def _write(rows: pd.DataFrame, path: Path) -> None:
        landing = path.with_suffix(".parquet.tmp")  # a retrain may read the folder now
        rows.to_parquet(landing, index=False)
        landing.replace(path)
