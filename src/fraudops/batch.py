"""Batch scoring of a transactions file with a registered version (default ``@champion``).

For back-filling scores and for audits: the same offline features as training
(:func:`fraudops.features.compute_features`) over the history in the file, the same model and
decision threshold as the service. The output holds no customer or terminal id.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fraudops import contract as c
from fraudops import registry
from fraudops.features import compute_features
from fraudops.serving import ALERT, PASS, load_model_version
from fraudops.settings import Settings
from fraudops.sources import DataSourceError, read_transactions, write_transactions

OUTPUT_COLUMNS: tuple[str, ...] = (
    c.TRANSACTION_ID,
    c.TX_DATETIME,
    *c.FEATURES,
    "fraud_probability",
    "decision",
    "threshold",
    "model_name",
    "model_version",
)


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
    """Score a frame of raw transactions with ``version`` (default: ``@champion``).

    Args:
        frame: n rows × the contract's raw columns (after ``column_mapping``), any order;
            ``TX_FRAUD`` (0/1) where known, so terminal risk counts frauds older than the label
            delay as in training. The file should start 30 days (+ label delay) before the
            first row whose score matters: earlier rows have partly empty windows.
        version: a registered version number; None for the one ``@champion`` points to.

    Returns:
        n rows × :data:`OUTPUT_COLUMNS`, sorted by time then transaction id; probabilities in
        [0, 1], decision ``alert`` when the probability is at least the version's threshold.

    Raises:
        fraudops.contract.DataValidationError: the frame breaks the contract (names the column).
        fraudops.registry.RegistryError: no ``@champion`` yet, or ``version`` does not exist.
    """
    transactions = c.validate_transactions(frame, require_label=c.LABEL in frame.columns)
    found = registry.resolve_version(registry.client_for(settings), settings.model_name, version)
    model = load_model_version(settings, str(found.version), dict(found.tags))
    features = compute_features(transactions, settings.label_delay_days)
    scores = model.predict(features[list(model.features)].to_numpy(dtype=np.float64))
    out = pd.concat([transactions[[c.TRANSACTION_ID, c.TX_DATETIME]], features], axis=1)
    out["fraud_probability"] = scores
    out["decision"] = np.where(scores >= model.threshold, ALERT, PASS)
    out["threshold"] = model.threshold
    out["model_name"] = model.name
    out["model_version"] = model.version
    return out[list(OUTPUT_COLUMNS)]


def score_file(
    settings: Settings, source: Path, output: Path, version: str | None = None
) -> BatchResult:
    """Score a Parquet or CSV file into ``output`` (.parquet or .csv), written atomically.

    The output appears only when complete (written beside it, then renamed): a failure leaves
    no partial file. See :func:`score_frame` for the columns and the errors raised; an
    unreadable input or an unsupported suffix raises :class:`fraudops.sources.DataSourceError`.
    """
    suffix = Path(output).suffix.lower()
    if suffix not in {".parquet", ".pq", ".csv"}:
        raise DataSourceError(f"unsupported output {Path(output).name}: use .parquet or .csv")
    began = time.perf_counter()
    scored = score_frame(settings, read_transactions(source, settings.column_mapping), version)
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
