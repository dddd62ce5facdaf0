"""Batch scoring of an events file with a registered version (default ``@champion``).

For back-filling scores and for audits: the same offline features as training (the dataset
spec's, :func:`fraudops.offline.engine.compute_spec_features`) over the history in the file,
the same model and decision threshold as the service. The output holds no entity id.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fraudops import registry
from fraudops.data import contract as c
from fraudops.data.sources import DataSourceError, write_transactions
from fraudops.offline.engine import compute_spec_features
from fraudops.serving.scorer import ALERT, PASS, ChampionModel, load_model_version
from fraudops.settings import Settings
from fraudops.spec import DatasetSpec
from fraudops.spec.data import prepare_events, read_events

#: Columns after the event id, time and features: the score and where it came from.
SCORE_COLUMNS: tuple[str, ...] = (
    "fraud_probability",
    "decision",
    "threshold",
    "model_name",
    "model_version",
)
#: The output columns with the handbook spec.
OUTPUT_COLUMNS: tuple[str, ...] = (c.TRANSACTION_ID, c.TX_DATETIME, *c.FEATURES, *SCORE_COLUMNS)


def output_columns(spec: DatasetSpec) -> tuple[str, ...]:
    """Event id, event time, the spec's features, then :data:`SCORE_COLUMNS`."""
    roles = spec.roles()
    return (roles.event_id, roles.time, *spec.feature_names(), *SCORE_COLUMNS)


@dataclass(frozen=True)
class BatchResult:
    """What :func:`score_file` wrote: rows, alerts, the version used and the timings (seconds)."""

    output: Path
    rows: int
    alerts: int
    model_version: str
    seconds: float
    rows_per_second: float


def score_frame(
    settings: Settings, frame: pd.DataFrame, version: str | None = None
) -> pd.DataFrame:
    """Score a frame of raw events with ``version`` (default: ``@champion``).

    Args:
        frame: n rows × the spec's columns (after renames), any order; the label (0/1) where
            known, so label rates count frauds older than the label delay as in training. The
            file should start one longest window (+ label delay) before the first row whose
            score matters: earlier rows have partly empty windows.
        version: a registered version number; None for the one ``@champion`` points to.

    Returns:
        n rows × :func:`output_columns`, sorted by time then event id; probabilities in
        [0, 1], decision ``alert`` when the probability is at least the version's threshold.

    Raises:
        fraudops.data.contract.DataValidationError: the frame breaks the spec (names the column).
        fraudops.registry.RegistryError: no ``@champion`` yet, ``version`` does not exist, or
            it was trained with another dataset spec.
    """
    spec = settings.spec
    roles = spec.roles()
    events = prepare_events(frame, spec, require_label=roles.label in frame.columns)
    found = registry.resolve_version(registry.client_for(settings), settings.model_name, version)
    registry.require_same_spec(found, spec)
    features = compute_spec_features(events, spec)
    model = load_model_version(settings, str(found.version), dict(found.tags))
    table = pd.concat([events[[roles.event_id, roles.time]], features], axis=1)
    return PartitionScorer.of(model, spec)(table)


def score_file(
    settings: Settings, source: Path, output: Path, version: str | None = None
) -> BatchResult:
    """Score a Parquet or CSV file into ``output`` (.parquet or .csv), written atomically.

    The output appears only when complete (written beside it, then renamed): a failure leaves
    no partial file. See :func:`score_frame` for the columns and the errors raised; an
    unreadable input or an unsupported suffix raises :class:`fraudops.data.sources.DataSourceError`.
    """
    suffix = Path(output).suffix.lower()
    if suffix not in {".parquet", ".pq", ".csv"}:
        raise DataSourceError(f"unsupported output {Path(output).name}: use .parquet or .csv")
    began = time.perf_counter()
    raw = read_events(source, settings.spec)
    if settings.column_mapping:
        raw = c.apply_column_mapping(raw, settings.column_mapping)
    scored = score_frame(settings, raw, version)
    output = Path(output)
    partial = output.with_name(f".{output.stem}.partial{output.suffix}")
    try:
        write_transactions(scored, partial)
        os.replace(partial, output)
    finally:
        partial.unlink(missing_ok=True)
    seconds = time.perf_counter() - began
    return BatchResult(
        output=output,
        rows=len(scored),
        alerts=int((scored["decision"] == ALERT).sum()),
        model_version=str(scored["model_version"].iloc[0]),
        seconds=seconds,
        rows_per_second=len(scored) / seconds if seconds > 0 else float("inf"),
    )


@dataclass(frozen=True)
class PartitionScorer:
    """Adds :data:`SCORE_COLUMNS` to a partition of the feature table (event id, time,
    features): picklable, so Dask ships it to its workers inside the graph. Built from a
    model the caller loaded and verified (:func:`load_model_version`); workers never read the
    registry.
    """

    estimator: Any
    features: tuple[str, ...]
    categorical: bool
    threshold: float
    name: str
    version: str
    columns: tuple[str, ...]

    @classmethod
    def of(cls, model: ChampionModel, spec: DatasetSpec) -> PartitionScorer:
        """The scorer of a loaded version, writing :func:`output_columns` of ``spec``."""
        return cls(
            estimator=model.estimator,
            features=model.features,
            categorical=model.categorical,
            threshold=model.threshold,
            name=model.name,
            version=model.version,
            columns=output_columns(spec),
        )

    def __call__(self, table: pd.DataFrame) -> pd.DataFrame:
        frame = table[list(self.features)]
        inputs = frame if self.categorical else frame.to_numpy(dtype=np.float64)
        if len(table):
            scores = np.asarray(self.estimator.predict_proba(inputs)[:, 1], dtype=np.float64)
        else:
            scores = np.zeros(0, dtype=np.float64)
        out = table.copy()
        out["fraud_probability"] = scores
        out["decision"] = np.where(scores >= self.threshold, ALERT, PASS).astype(object)
        out["threshold"] = self.threshold
        out["model_name"] = self.name
        out["model_version"] = self.version
        return out[list(self.columns)]


def score_history(
    settings: Settings,
    history: Path,
    output: Path,
    version: str | None = None,
    on_dask: bool = False,
) -> BatchResult:
    """Score a history partitioned by day (a folder of Parquet files) into ``output``, a
    folder of one scored file per history file (:func:`output_columns`), written atomically.

    Args:
        on_dask: compute on the current Dask scheduler (the features partitioned by entity,
            :mod:`fraudops.offline.partitioned`), else in this process; both write the same
            files.

    Raises:
        fraudops.registry.RegistryError: no ``@champion``, an unknown version, or one trained
            with another dataset spec. See :func:`score_frame` for the others.
    """
    from fraudops.offline import partitioned

    spec = settings.spec
    began = time.perf_counter()
    files = partitioned.history_parts(history)
    found = registry.resolve_version(registry.client_for(settings), settings.model_name, version)
    registry.require_same_spec(found, spec)
    model = load_model_version(settings, str(found.version), dict(found.tags))
    scorer = PartitionScorer.of(model, spec)
    if on_dask:
        written = partitioned.write_features(
            files, spec, output, settings.feature_shards, transform=scorer
        )
    else:
        written = partitioned.write_features_in_process(files, spec, output, transform=scorer)
    decisions = pd.read_parquet(written.path, columns=["decision"])["decision"]
    seconds = time.perf_counter() - began
    return BatchResult(
        output=written.path,
        rows=written.rows,
        alerts=int((decisions == ALERT).sum()),
        model_version=model.version,
        seconds=seconds,
        rows_per_second=written.rows / seconds if seconds > 0 else float("inf"),
    )
