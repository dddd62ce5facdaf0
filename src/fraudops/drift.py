"""Data drift and prediction drift of the model's inputs and score, with Evidently 0.7.

Reference data: a day-stratified sample of the champion's training window (its 18 features and
its score), stored with the model version at training time. Current data: a window of the
prediction log, sampled the same way, so the job's cost is bounded whatever the traffic.
For every monitored column Evidently's default test for the sample size applies (normed
Wasserstein distance, threshold 0.1, above 1,000 rows); the dataset-level figure is the share
of drifted columns. Prediction drift is the drift of the ``score`` column. Where labels have
arrived, classification quality (average precision, recall at the alert threshold) is
computed on the labelled rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score

from fraudops import contract as c

SCORE = "score"
#: Columns the drift job compares: the model's inputs and its output.
MONITORED: tuple[str, ...] = (*c.FEATURES, SCORE)


class DriftInputError(ValueError):
    """The current or reference window cannot be compared (empty, or columns missing)."""


def sample_by_day(
    frame: pd.DataFrame, time_column: str, max_rows: int, seed: int = 0
) -> pd.DataFrame:
    """At most ``max_rows`` rows, the same share from every day (stratified by day)."""
    if len(frame) <= max_rows:
        return frame
    share = max_rows / len(frame)
    days = pd.to_datetime(frame[time_column]).dt.floor("D")
    return frame.groupby(days, group_keys=False).sample(frac=share, random_state=seed)


def check_columns(frame: pd.DataFrame, name: str) -> None:
    """Raise :class:`DriftInputError` naming the window and its missing monitored columns."""
    if frame.empty:
        raise DriftInputError(f"{name} window has no rows")
    missing = [col for col in MONITORED if col not in frame.columns]
    if missing:
        raise DriftInputError(f"{name} window lacks column(s) {missing}")


@dataclass(frozen=True)
class DriftFigures:
    """What one drift run found.

    Attributes:
        current_rows, reference_rows: rows compared after sampling.
        drift_share: share of the 19 monitored columns whose test found drift, in [0, 1].
        drifted_columns: their names.
        column_scores: column → Evidently's drift score (normed Wasserstein distance).
        prediction_drift: whether the ``score`` column drifted.
        labelled_rows: current rows whose label has arrived.
        average_precision, recall_at_threshold: on those rows (None when too few or one class).
    """

    current_rows: int
    reference_rows: int
    drift_share: float
    drifted_columns: list[str]
    column_scores: dict[str, float]
    prediction_drift: bool
    labelled_rows: int
    average_precision: float | None
    recall_at_threshold: float | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _quality(
    labelled: pd.DataFrame | None, threshold: float, min_labelled: int
) -> tuple[int, Any, Any]:
    if labelled is None or LABEL_COLUMN not in labelled:
        return 0, None, None
    labelled = labelled.dropna(subset=[LABEL_COLUMN])
    if labelled.empty:
        return 0, None, None
    labels = labelled[LABEL_COLUMN].to_numpy(dtype=int)
    if len(labelled) < min_labelled or labels.min() == labels.max():
        return len(labelled), None, None
    scores = labelled[SCORE].to_numpy()
    ap = float(average_precision_score(labels, scores))
    recall = float((scores[labels == 1] >= threshold).mean())
    return len(labelled), ap, recall


LABEL_COLUMN = "is_fraud"


def run_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    threshold: float,
    column_drift_share: float = 0.5,
    min_labelled: int = 1_000,
    labelled: pd.DataFrame | None = None,
) -> tuple[Any, DriftFigures]:
    """Compare ``current`` with ``reference`` on :data:`MONITORED`.

    Args:
        reference: rows × at least :data:`MONITORED`.
        current: rows × at least :data:`MONITORED`.
        labelled: scored rows whose labels have arrived (``score`` and ``is_fraud``), usually the
            window one label delay earlier; None skips the quality figures.
        threshold: the champion's alert threshold (for recall at the threshold).
        column_drift_share: the report's dataset-drift test threshold (shown in the report).
        min_labelled: fewest labelled rows (both classes) for the quality figures.

    Returns:
        (Evidently snapshot — ``save_html`` renders it —, the figures).

    Raises:
        DriftInputError: a window is empty or lacks monitored columns.
    """
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    check_columns(reference, "reference")
    check_columns(current, "current")
    reference = (
        sample_by_day(reference, c.TX_DATETIME, len(current))
        if c.TX_DATETIME in reference
        else reference
    )
    columns = list(MONITORED)
    definition = DataDefinition(numerical_columns=columns)
    report = Report(
        [DataDriftPreset(columns=columns, drift_share=column_drift_share)], include_tests=True
    )
    with np.errstate(divide="ignore", invalid="ignore"):  # constant columns in a window
        snapshot = report.run(
            current_data=Dataset.from_pandas(
                current[columns].astype(float), data_definition=definition
            ),
            reference_data=Dataset.from_pandas(
                reference[columns].astype(float), data_definition=definition
            ),
        )
    result = snapshot.dict()
    scores = {
        m["config"]["column"]: float(m["value"])
        for m in result["metrics"]
        if m["config"].get("type", "").endswith("ValueDrift")
    }
    # The per-column test knows each method's direction (distance above, p-value below).
    drifted = [
        t["metric_config"]["params"]["column"]
        for t in result["tests"]
        if t["metric_config"]["params"].get("type", "").endswith("ValueDrift")
        and str(getattr(t["status"], "value", t["status"])) == "FAIL"
    ]
    labelled_rows, ap, recall = _quality(labelled, threshold, min_labelled)
    figures = DriftFigures(
        current_rows=len(current),
        reference_rows=len(reference),
        drift_share=len(drifted) / len(columns),
        drifted_columns=drifted,
        column_scores=scores,
        prediction_drift=SCORE in drifted,
        labelled_rows=labelled_rows,
        average_precision=ap,
        recall_at_threshold=recall,
    )
    return snapshot, figures


def reference_sample(
    features: pd.DataFrame,
    times: pd.Series,
    score: Callable[[pd.DataFrame], np.ndarray],
    max_rows: int = 50_000,
    seed: int = 0,
) -> pd.DataFrame:
    """The drift reference: a day-stratified sample of the training window, with its score.

    Args:
        features: training rows × :data:`contract.FEATURES`.
        times: their ``TX_DATETIME``, aligned with ``features``.
        score: the model's fraud score of a feature frame; called on the sample only.

    Returns:
        At most ``max_rows`` rows × the features, ``score`` and ``TX_DATETIME``.
    """
    frame = features.assign(**{c.TX_DATETIME: times.to_numpy()})
    sample = sample_by_day(frame, c.TX_DATETIME, max_rows, seed).reset_index(drop=True)
    return sample.assign(**{SCORE: score(sample[list(features.columns)])})
