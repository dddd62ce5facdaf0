"""The training dataset of a day-partitioned history, built on Dask without loading the history.

:func:`build_partitioned_dataset` gives the :class:`~fraudops.training.Dataset` that
:func:`~fraudops.training.build_dataset` gives for the whole history read into memory, equal
value for value (tested), while only these reach the calling process:

- the first and last event times (to place the windows);
- the training window's rows, sampled as :func:`fraudops.data.splits.training_sample` says
  (``FRAUDOPS_TRAIN_MAX_ROWS``: every fraud, one share of the genuine rows on every day);
- the test window's rows (a week of history);
- the fraud rows since the training start (which entities are known compromised on each test
  day) and, for slices by entity age, each key's first event time.

Features are computed partitioned by entity (:mod:`fraudops.offline.partitioned`) on the
current Dask scheduler, and filtered by window before anything is gathered.
"""

from __future__ import annotations

import dask
import dask.dataframe as dd
import pandas as pd

from fraudops.data.contract import DataValidationError
from fraudops.data.sources import frame_sha256
from fraudops.data.splits import SplitError, known_compromised, training_sample
from fraudops.model.slices import segments
from fraudops.offline import partitioned
from fraudops.settings import Settings
from fraudops.training import Dataset, planned_windows, require_both_classes


def build_partitioned_dataset(settings: Settings) -> Dataset:
    """Features, split and training sample of the history under ``settings.data_path``.

    Raises:
        DataValidationError: no Parquet file under the data path, or a partition breaks the
            spec (names the column).
        SplitError: as :func:`fraudops.training.build_dataset` (too short a history, an empty
            window, a window with one class).
    """
    spec = settings.spec
    roles = spec.roles()
    if settings.data_path is None:
        raise DataValidationError(
            "FRAUDOPS_DATA_PATH is not set: a partitioned history is a folder of Parquet files"
        )
    history = partitioned.read_history(partitioned.history_parts(settings.data_path), spec)
    time = history[roles.time]
    first, last = dask.compute(time.min(), time.max())
    windows = planned_windows(pd.Series([first, last]), settings)
    features = partitioned.partitioned_features(history, spec, settings.feature_shards)
    # passthrough features are the history's own columns (same values): kept once
    computed = [name for name in spec.feature_names() if name not in history.columns]
    table = dd.concat([history, features[computed]], axis=1)

    def within(start: object, end: object) -> dd.Series:
        return (table[roles.time] >= pd.Timestamp(start)) & (table[roles.time] < pd.Timestamp(end))

    label = history[roles.label]
    known_since = pd.Timestamp(windows.train_start)
    fraud_columns = [c for c in (roles.entity, roles.time, roles.label, roles.known_at) if c]
    frauds = history[(label == 1) & (time >= known_since)][fraud_columns]
    ages = {cut.entity: cut for cut in spec.slices if cut.entity is not None}
    firsts = {name: history.groupby(spec.entity(name).column)[roles.time].min() for name in ages}
    train, test, fraud_rows, first_seen = dask.compute(
        table[within(windows.train_start, windows.train_end)],
        table[within(windows.test_start, windows.test_end)],
        frauds,
        firsts,
    )
    columns = list(history.columns)
    train, test = train.reset_index(drop=True), test.reset_index(drop=True)
    for name, rows, start, end in (
        ("training", train, windows.train_start, windows.train_end),
        ("test", test, windows.test_start, windows.test_end),
    ):
        if rows.empty:
            raise SplitError(f"the {name} window {start}..{end} is empty")
    kept, _ = training_sample(
        train[roles.event_id], train[roles.label].to_numpy(), settings.train_max_rows
    )
    train = train[kept].reset_index(drop=True)
    if roles.drop_known and roles.entity is not None:
        both = pd.concat([fraud_rows, test[fraud_columns]], ignore_index=True)
        compromised = known_compromised(both, windows, windows.train_start, roles)
        test = test[~compromised[len(fraud_rows) :]].reset_index(drop=True)
    test_frame = test[columns]
    require_both_classes(
        "test",
        windows.test_start,
        windows.test_end,
        test_frame[roles.label].to_numpy(),
        roles.label,
        note=" (entities already known fraudulent removed)" if roles.drop_known else "",
    )
    train_labels = train[roles.label].to_numpy()
    if settings.model_kind != "isolation_forest":
        require_both_classes(
            "training", windows.train_start, windows.train_end, train_labels, roles.label
        )
    names = spec.feature_names()
    return Dataset(
        train_features=train[names],
        train_labels=train_labels,
        train_times=train[roles.time],
        test_features=test[names],
        test_frame=test_frame,
        windows=windows,
        data_sha256=frame_sha256(train[columns]),
        test_segments=segments(test_frame, spec, first_seen if ages else None),
    )
