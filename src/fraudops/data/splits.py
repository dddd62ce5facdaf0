"""Time-based (out-of-time) train/test split with a label-delay gap.

The protocol is the Fraud Detection Handbook's (chapter 5.2, ``get_train_test_set``): a training
window of ``train_days``, then ``label_delay_days`` whose labels are not yet known (no rows used),
then a test window of ``test_days``. Cards known to be compromised are removed from each test day:
those with a fraud in the training window, and those with a fraud up to the day before the
test day minus the delay, as an investigation team would already have blocked them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fraudops.data import contract as c
from fraudops.spec.model import Roles


class SplitError(ValueError):
    """The history is too short, or a window is empty, for the requested split."""


@dataclass(frozen=True)
class Windows:
    """Day boundaries of one split; each window is [start, end) in whole days."""

    train_start: dt.date
    train_end: dt.date
    test_start: dt.date
    test_end: dt.date

    def as_tags(self) -> dict[str, str]:
        return {
            "train_start": self.train_start.isoformat(),
            "train_end": self.train_end.isoformat(),
            "test_start": self.test_start.isoformat(),
            "test_end": self.test_end.isoformat(),
        }


def plan_windows(
    times: pd.Series,
    *,
    train_days: int,
    label_delay_days: int,
    test_days: int,
    warmup_days: int = c.MAX_WINDOW_DAYS,
    train_start: dt.date | None = None,
    test_end: dt.date | None = None,
    min_train_days: int = 7,
) -> Windows:
    """Place the windows in the history spanned by ``times``.

    With ``train_start`` None the test window ends on the last day of the history; otherwise
    training starts that day. With ``test_end`` (a retrain on the latest labelled days) the test
    window ends on that day and training, if the warm-up leaves less history than
    ``train_days``, starts after the warm-up with at least ``min_train_days`` days. Rows of the
    first ``warmup_days`` days only fill feature windows.

    Raises:
        SplitError: the training window would start inside the warm-up period or the test
            window would end after the history; the message gives the dates.
    """
    first_day = times.min().normalize().date()
    last_day = times.max().normalize().date()
    earliest_train = first_day + dt.timedelta(days=warmup_days)
    span = dt.timedelta(days=train_days + label_delay_days + test_days)
    if test_end is not None:
        train_end = test_end + dt.timedelta(days=1 - test_days - label_delay_days)
        train_start = max(train_end - dt.timedelta(days=train_days), earliest_train)
        if (train_end - train_start).days < min_train_days:
            raise SplitError(
                f"only {(train_end - train_start).days} labelled training days before "
                f"{train_end} after the warm-up (need {min_train_days})"
            )
        return Windows(
            train_start=train_start,
            train_end=train_end,
            test_start=train_end + dt.timedelta(days=label_delay_days),
            test_end=test_end + dt.timedelta(days=1),
        )
    if train_start is None:
        train_start = last_day + dt.timedelta(days=1) - span
    windows = Windows(
        train_start=train_start,
        train_end=train_start + dt.timedelta(days=train_days),
        test_start=train_start + dt.timedelta(days=train_days + label_delay_days),
        test_end=train_start + span,
    )
    if windows.train_start < earliest_train:
        raise SplitError(
            f"history {first_day}..{last_day} is too short: training from {windows.train_start} "
            f"starts inside the {warmup_days}-day feature warm-up (earliest {earliest_train}); "
            f"need at least {warmup_days + span.days} days"
        )
    if windows.test_end > last_day + dt.timedelta(days=1):
        raise SplitError(
            f"test window {windows.test_start}..{windows.test_end - dt.timedelta(days=1)} "
            f"ends after the history's last day {last_day}"
        )
    return windows


def _day_mask(times: pd.Series, start: dt.date, end: dt.date) -> np.ndarray:
    return ((times >= pd.Timestamp(start)) & (times < pd.Timestamp(end))).to_numpy()


def split(
    transactions: pd.DataFrame,
    windows: Windows,
    *,
    exclude_known_compromised: bool = True,
    known_since: dt.date | None = None,
    roles: Roles = c.HANDBOOK_ROLES,
) -> tuple[np.ndarray, np.ndarray]:
    """Row masks of the training and test windows.

    Args:
        transactions: n rows with the time, label and ranked-entity columns of ``roles``.
        windows: from :func:`plan_windows`.
        exclude_known_compromised: drop test rows of entities (cards) with a fraud known
            before their day (the handbook's protocol); only where ``roles.drop_known``.
        known_since: first day whose frauds count as known; default the training start. Fix
            it to compare models with different training windows on the same test rows.
        roles: which columns are the time, the label and the entity (default the handbook's).

    Returns:
        (train_mask, test_mask), two boolean arrays of length n.

    Raises:
        SplitError: a window holds no rows.
    """
    times = transactions[roles.time]
    train = _day_mask(times, windows.train_start, windows.train_end)
    test = _day_mask(times, windows.test_start, windows.test_end)
    if not train.any():
        raise SplitError(f"the training window {windows.train_start}..{windows.train_end} is empty")
    if not test.any():
        raise SplitError(f"the test window {windows.test_start}..{windows.test_end} is empty")
    if exclude_known_compromised and roles.drop_known and roles.entity is not None:
        known = known_since or windows.train_start
        test &= ~known_compromised(transactions, windows, known, roles)
    return train, test


def known_compromised(
    transactions: pd.DataFrame, windows: Windows, known_since: dt.date, roles: Roles
) -> np.ndarray:
    """Rows whose entity had a fraud since ``known_since``, already labelled by the row's day.

    Only the fraud rows of ``transactions`` decide which entities are known: the mask of any
    rows, given with every fraud of the history beside them, is the mask those rows have in
    the whole history (what a partitioned history relies on).

    On a test day D the labels known are those of training and of the days up to
    D - delay - 1 day (the handbook adds one delay day's frauds per test day). A label with an
    arrival time (``roles.known_at``, e.g. an analyst's decision) is known from the day after
    it arrived, when that is earlier.
    """
    times = transactions[roles.time]
    entity = transactions[str(roles.entity)]
    day = times.dt.floor("D")
    counted = (transactions[roles.label].to_numpy() == 1) & (
        times >= pd.Timestamp(known_since)
    ).to_numpy()
    delay = pd.Timestamp(windows.test_start) - pd.Timestamp(windows.train_end)
    known_from = day + delay + pd.Timedelta(days=1)
    if roles.known_at is not None and roles.known_at in transactions:
        arrived = transactions[roles.known_at].dt.floor("D") + pd.Timedelta(days=1)
        known_from = known_from.where(~(arrived < known_from), arrived)
    first_known = known_from[counted].groupby(entity[counted]).min()
    return (entity.map(first_known) <= day).to_numpy(dtype=bool)


def training_sample(
    ids: pd.Series, labels: np.ndarray, max_rows: int | None
) -> tuple[np.ndarray, float]:
    """Rows of a training window kept within ``max_rows``: every fraud, and each genuine row
    whose event-id hash falls below one share, the same on every day.

    Stratified by label (frauds are rare: all kept) and by day (each day keeps the same share
    of its genuine rows, so the days keep their weights). The hash is pandas' fixed-key hash
    of the id (``hash_pandas_object``), so a row's fate does not depend on the engine, the
    partitioning or the order. The model then sees frauds more often than they happen; its
    threshold comes from the alert budget on the untouched holdout, so decisions are unaffected.

    Args:
        ids: the window's n event ids.
        labels: their n labels (1: fraud).
        max_rows: rows wanted at most (at least the frauds are kept); None: every row.

    Returns:
        (mask of the n rows kept, the share of genuine rows kept, in (0, 1]).
    """
    fraud = np.asarray(labels) == 1
    genuine = int((~fraud).sum())
    if max_rows is None or len(fraud) <= max_rows or genuine == 0:
        return np.ones(len(fraud), dtype=bool), 1.0
    share = max(max_rows - int(fraud.sum()), 0) / genuine
    position = pd.util.hash_pandas_object(ids, index=False).to_numpy() / 2.0**64
    return fraud | (position < share), share
