"""The offline feature engine: every feature of a dataset spec, vectorised over a history.

For each aggregation block (one entity, its windows, an optional label-delay lag) the rows are
ordered once per entity (:class:`~fraudops.offline.windows.EntityIndex`) and every window is a
contiguous range of that order. Numeric sums are exact int64 sums of micro-units
(:func:`units`), so the online engine, which sums the same integers, gives bit-identical
features. With the shipped handbook spec this is the handbook's feature set (chapter 3.4 of
Le Borgne et al., *Reproducible Machine Learning for Credit Card Fraud Detection*).

Definitions (n rows; windows ``(t - lag - w, t - lag]``, see
:class:`fraudops.spec.model.Aggregation`):

- ``count``: rows in the window; ``sum``/``mean``/``max`` of a numeric column over them (an
  empty window, possible only with a lag, gives 0);
- ``ratio_to_mean``: the row's own value over the window mean (1.0 where the mean is not > 0);
- ``distinct_count``: distinct values of another column in the window;
- ``label_rate``: share of the window's rows labelled fraud (0 for an empty window); with a
  label delay of 0 the row's own label is left out (it is not known when the row is scored);
  with ``lag: label_arrival`` the window ends at the row and only labels known by the row's
  second count (``label.known_at``, else event time + label delay), never the row's own;
- ``time_since_previous``: seconds since the entity's previous row, -1 for its first;
- calendar: hour (0–23), weekend (Saturday or Sunday), night (hour within ``hours``, inclusive).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from fraudops.offline.windows import EntityIndex, Window, distinct_counts, range_max
from fraudops.spec.model import Aggregation, CalendarFeature, DatasetSpec

#: Numeric values are summed as whole multiples of 1e-6.
UNITS_PER_VALUE = 1_000_000


def units(values: np.ndarray | list[float] | float) -> np.ndarray:
    """Values as int64 micro-units (rounded to 1e-6): the integers window sums add up."""
    return np.rint(np.asarray(values, dtype=np.float64) * UNITS_PER_VALUE).astype(np.int64)


def mean_of(total_units: np.ndarray | int, count: np.ndarray | int) -> np.ndarray | float:
    """Mean value from a window's exact sum of micro-units and its row count (≥ 1)."""
    return total_units / UNITS_PER_VALUE / count


def event_seconds(times: pd.Series | pd.DatetimeIndex) -> np.ndarray:
    """Event times (naive datetimes) as int64 whole seconds since 1970; sub-seconds truncated."""
    return pd.DatetimeIndex(times).values.astype("datetime64[s]").astype(np.int64)


def calendar_value(feature: CalendarFeature, times: pd.DatetimeIndex) -> np.ndarray:
    """One calendar feature (float64, n values) of n naive event times."""
    if feature.kind == "hour":
        return times.hour.to_numpy(dtype=np.float64)
    if feature.kind == "weekend":
        return (times.weekday >= 5).astype(np.float64)
    first, last = feature.hours
    hour = times.hour
    inside = (hour >= first) & (hour <= last) if first <= last else (hour >= first) | (hour <= last)
    return np.asarray(inside, dtype=np.float64)


def compute_spec_features(events: pd.DataFrame, spec: DatasetSpec) -> pd.DataFrame:
    """Every feature of ``spec`` for every row, from the history in the frame.

    Args:
        events: n rows in any order, with the spec's columns under the spec's names (after
            renames): the event time as naive datetimes, entities without nulls, numeric
            columns as numbers within their bounds, and optionally the label as 0/1 (NaN:
            not known yet, counted as genuine).
        spec: the dataset spec.

    Returns:
        n rows × ``spec.feature_names()``, same index and order as the input; float64 but for
        categorical passthrough columns, which keep their values (the model encodes them).

    Raises:
        SumOverflowError: a window sum would leave the exact int64 range (names the column).
        KeyError: a spec column is missing from ``events`` (validate with the spec first).
    """
    out = row_features(events, spec)
    for entity in aggregated_entities(spec):
        out.update(entity_features(events, spec, entity))
    return pd.DataFrame({name: out[name] for name in spec.feature_names()}, index=events.index)


def aggregated_entities(spec: DatasetSpec) -> list[str]:
    """Names of the entities some window aggregation or time-since feature is keyed by, in
    spec order: the features of each depend on that entity's own rows only."""
    keyed = {block.entity for block in spec.aggregations}
    keyed |= {since.entity for since in spec.time_since_previous}
    return [entity.name for entity in spec.entities if entity.name in keyed]


def entity_feature_names(spec: DatasetSpec, entity: str) -> list[str]:
    """The features keyed by ``entity`` (its aggregations and time since previous), in
    ``spec.feature_names()`` order."""
    own = {
        name for block in spec.aggregations if block.entity == entity for name, *_ in block.names()
    }
    own |= {since.name for since in spec.time_since_previous if since.entity == entity}
    return [name for name in spec.feature_names() if name in own]


def row_features(events: pd.DataFrame, spec: DatasetSpec) -> dict[str, np.ndarray]:
    """The features of each row alone (passthrough columns, calendar), by name, in input
    order: n values each, float64 but for categorical passthrough (values as given)."""
    times = pd.DatetimeIndex(events[spec.event_time.column])
    out: dict[str, np.ndarray] = {}
    for numeric in spec.numeric:
        if numeric.feature:
            out[numeric.column] = events[numeric.column].to_numpy(dtype=np.float64)
    for categorical in spec.categorical:
        if categorical.feature:
            out[categorical.column] = events[categorical.column].to_numpy()
    for feature in spec.calendar:
        out[feature.name] = calendar_value(feature, times)
    return out


def entity_features(events: pd.DataFrame, spec: DatasetSpec, entity: str) -> dict[str, np.ndarray]:
    """The features keyed by ``entity`` (:func:`entity_feature_names`), by name, float64 in
    input order. Each row's values depend only on the rows of its own entity value, and on
    their order where times tie: any subset holding every row of its entity values, in the
    same relative order, gives those rows the same values bit for bit (what
    :mod:`fraudops.offline.partitioned` relies on).

    Raises:
        SumOverflowError: a window sum would leave the exact int64 range (names the column).
    """
    seconds = event_seconds(events[spec.event_time.column])
    label_column = spec.label.column
    if label_column in events:
        labels = events[label_column].to_numpy(dtype=np.float64, na_value=0.0).astype(np.int64)
    else:
        labels = np.zeros(len(events), dtype=np.int64)
    known = known_seconds(events, spec, seconds) if spec.labels_by_arrival() else seconds
    ids = events[spec.entity(entity).column].to_numpy()
    index = EntityIndex(ids, seconds, spec.longest_reach())
    out: dict[str, np.ndarray] = {}
    for block in spec.aggregations:
        if block.entity == entity:
            out.update(_block(block, index, events, labels, known, spec))
    for since in spec.time_since_previous:
        if since.entity == entity:
            out[since.name] = index.back(index.previous_gap())
    return out


def known_seconds(events: pd.DataFrame, spec: DatasetSpec, seconds: np.ndarray) -> np.ndarray:
    """Second at which each row's label became known (int64, n): ``label.known_at`` where the
    frame has it (not earlier than the event), else the event's second + the label delay."""
    default = seconds + spec.label.delay
    column = spec.label.known_at
    if column is None or column not in events:
        return default
    known = pd.DatetimeIndex(events[column])
    given = ~known.isna()
    out = default.copy()
    out[given] = np.maximum(event_seconds(known[given]), seconds[given])
    return out


def _block(
    block: Aggregation,
    index: EntityIndex,
    events: pd.DataFrame,
    labels: np.ndarray,
    known: np.ndarray,
    spec: DatasetSpec,
) -> Iterable[tuple[str, np.ndarray]]:
    """(name, values in input order) of one aggregation block's features; ``known``: the
    second each row's label became known (read by ``lag: label_arrival`` blocks)."""
    lag = block.lag_seconds(spec.label.delay)
    memo = index.memo  # shared by the blocks of one entity: each array is made once

    def values(column: str) -> np.ndarray:
        key = ("values", column)
        if key not in memo:
            memo[key] = index.sorted(events[column].to_numpy(dtype=np.float64))
        return memo[key]

    def total(window: Window, width: int, column: str) -> np.ndarray:
        key = ("sum", lag, width, column)
        if key not in memo:
            if ("units", column) not in memo:
                memo["units", column] = units(values(column))
            memo[key] = index.sums(window, memo["units", column], column)
        return memo[key]

    sorted_labels = index.sorted(labels)
    windows: dict[int, Window] = {}
    for name, width, feature in block.names():
        if width not in windows:
            windows[width] = index.window(lag, width)
        window = windows[width]
        count = window.count.astype(np.float64)
        column = feature.of or ""
        if feature.kind == "count":
            result = count
        elif feature.kind in {"sum", "mean", "ratio_to_mean"}:
            exact_sum = total(window, width, column)
            if feature.kind == "sum":
                result = exact_sum / UNITS_PER_VALUE
            else:
                mean = np.divide(
                    exact_sum / UNITS_PER_VALUE, count, out=np.zeros_like(count), where=count > 0
                )
                if feature.kind == "mean":
                    result = mean
                else:
                    own = values(column)
                    result = np.divide(own, mean, out=np.ones_like(own), where=mean > 0)
        elif feature.kind == "max":
            result = range_max(values(column), window)
        elif feature.kind == "distinct_count":
            pair = pd.factorize(
                pd.MultiIndex.from_arrays([index.codes, index.sorted(events[column].to_numpy())])
            )[0]
            result = distinct_counts(pair.astype(np.int64), window).astype(np.float64)
        elif block.lag == "label_arrival":  # label_rate of the labels known by then
            key = ("arrived", width)
            if key not in memo:
                memo[key] = index.arrived_counts(sorted_labels, index.sorted(known), width)
            fraud_share = memo[key].astype(np.float64)
            result = np.divide(fraud_share, count, out=np.zeros_like(count), where=count > 0)
        else:  # label_rate
            frauds = index.sums(window, sorted_labels, spec.label.column)
            if lag == 0:  # the window ends at the row itself, whose label is not known
                frauds = frauds - sorted_labels
            fraud_share = frauds.astype(np.float64)
            result = np.divide(fraud_share, count, out=np.zeros_like(count), where=count > 0)
        yield name, index.back(result)
