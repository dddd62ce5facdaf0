"""Data drift and prediction drift of the model's inputs and score, with Evidently 0.7.

Reference data: a day-stratified sample of the champion's training window (its features and
its score), stored with the model version at training time. Current data: a window of the
prediction log, sampled the same way, so the job's cost is bounded whatever the traffic.
The compared columns (:class:`DriftColumns`) are the champion's features, as its dataset spec
types them (numerical, or categorical: compared as strings), and the ``score`` (numerical);
the handbook's 18 features by default. For every column Evidently's default test for its type
and the sample size applies (above 1,000 rows: normed Wasserstein distance for numerical
columns, Jensen-Shannon distance for categorical ones, threshold 0.1; at most 1,000 rows: the
Kolmogorov-Smirnov or chi-square p-value, below 0.05); the dataset-level figure is the share
of drifted columns. Prediction drift is the drift of the ``score`` column. Where labels have
arrived, classification quality (average precision, recall at the alert threshold) is
computed on the labelled rows (their ``score`` and label only).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score

from fraudops.data import contract as c
from fraudops.drift.dashboard import QUALITY_TAG, SnapshotLabels
from fraudops.logs.records import LOG_SCORE

if TYPE_CHECKING:
    from fraudops.spec import DatasetSpec

SCORE = LOG_SCORE
#: Columns the drift job compares for a handbook champion: the model's inputs and its output.
MONITORED: tuple[str, ...] = (*c.FEATURES, SCORE)


class DriftInputError(ValueError):
    """The current or reference window cannot be compared.

    It is empty, holds fewer than :data:`MIN_ROWS` rows ("not enough rows"), lacks monitored
    columns, or has a monitored column without a single finite value.
    """


@dataclass(frozen=True)
class DriftColumns:
    """The columns one drift run compares: a champion's features and its ``score``.

    Attributes:
        features: the model's inputs, in the champion's order (its ``features`` tag).
        categorical: those of them that are categorical (its spec's categorical features);
            Evidently tests them as categories, the others and the score as numbers.
        spec_name: the dataset spec the champion was trained with.

    Raises:
        DriftInputError: no features, a categorical column that is not a feature, or a feature
            called ``score`` (the model's output column).
    """

    features: tuple[str, ...]
    categorical: tuple[str, ...] = ()
    spec_name: str = "handbook"

    def __post_init__(self) -> None:
        if not self.features:
            raise DriftInputError(f"spec {self.spec_name!r}: no features to compare")
        unknown = [col for col in self.categorical if col not in self.features]
        if unknown:
            raise DriftInputError(
                f"spec {self.spec_name!r}: categorical column(s) {unknown} are not features"
            )
        if SCORE in self.features:
            raise DriftInputError(
                f"spec {self.spec_name!r}: a feature is called {SCORE!r}, the name of the "
                "model's score column in the drift windows"
            )

    @classmethod
    def from_spec(cls, spec: DatasetSpec, features: Sequence[str] | None = None) -> DriftColumns:
        """``features`` (default: the spec's), categorical where ``spec`` declares them so."""
        names = tuple(spec.feature_names() if features is None else features)
        categorical = set(spec.categorical_features())
        return cls(names, tuple(n for n in names if n in categorical), spec.name)

    @property
    def monitored(self) -> tuple[str, ...]:
        """Every compared column: the features, then ``score``."""
        return (*self.features, SCORE)

    @property
    def numerical(self) -> tuple[str, ...]:
        """The compared columns that are not categorical (``score`` included)."""
        return tuple(col for col in self.monitored if col not in self.categorical)


#: The handbook spec's columns (``DriftColumns.from_spec(default_spec())``): 18 numerical
#: features and the score; what :func:`run_drift` compares unless told otherwise.
HANDBOOK_COLUMNS = DriftColumns(tuple(c.FEATURES))


#: Fewest rows :func:`run_drift` compares in each window (current, and reference after
#: sampling); fewer end with a "not enough rows" :class:`DriftInputError` before Evidently runs.
#: Per-column tests on a handful of rows are noise, and Evidently fails outright on none.
MIN_ROWS = 30


def allocate_by_day(sizes: np.ndarray, total: int, seed: int = 0) -> np.ndarray:
    """Rows to draw from each day so that they sum to exactly ``min(total, sizes.sum())``.

    Largest-remainder (Hamilton) allocation, in integer arithmetic. When ``total`` is at least
    the number of days, every day first gets one row, and the other ``total - days`` rows are
    shared in proportion to each day's remaining rows (``size - 1``). With fewer rows wanted
    than there are days, the ``total`` rows are shared in proportion to the sizes, and some days
    get none. Each day gets its quota rounded down, and the rows left over go one each to the
    days with the largest remainders (ties in an order drawn from ``seed``); a day never gets
    more rows than it holds.

    Args:
        sizes: rows of each day, shape (days,), every entry >= 1.
        total: rows wanted, >= 0.
        seed: breaks ties between equal remainders.

    Returns:
        Rows per day, shape (days,), int64, ``0 <= out <= sizes``.

    Raises:
        ValueError: ``total`` is negative or a size is below 1.
    """
    sizes = np.asarray(sizes, dtype=np.int64)
    if total < 0:
        raise ValueError(f"total must be >= 0 rows, got {total}")
    if sizes.size and sizes.min() < 1:
        raise ValueError(f"every day needs at least one row, got sizes down to {sizes.min()}")
    if total >= sizes.sum():
        return sizes.copy()
    base = np.ones_like(sizes) if total >= len(sizes) else np.zeros_like(sizes)
    weights = sizes - base
    target = total - int(base.sum())
    scaled = target * weights
    alloc = scaled // weights.sum()
    remainder = scaled % weights.sum()
    extra = target - int(alloc.sum())
    tie_break = np.random.default_rng(seed).random(len(sizes))
    order = np.lexsort((tie_break, -remainder))  # last key first: largest remainder
    alloc[order[:extra]] += 1
    return base + alloc


def sample_by_day(
    frame: pd.DataFrame, time_column: str, max_rows: int, seed: int = 0
) -> pd.DataFrame:
    """Exactly ``min(len(frame), max_rows)`` rows, stratified by calendar day of ``time_column``.

    Each day's row count comes from :func:`allocate_by_day`: proportional to the day's rows,
    at least one row from every day that has rows whenever ``max_rows`` is at least the number
    of days (so a small daily volume never rounds a day, or the whole sample, to zero rows).
    Rows of a missing timestamp form one more stratum. Within a day rows are drawn without
    replacement; the same ``frame``, ``max_rows`` and ``seed`` give the same rows.

    Args:
        frame: rows × columns, ``time_column`` datetime-like.
        time_column: column whose day (``floor("D")``) defines the strata.
        max_rows: rows kept at most, >= 0.
        seed: random seed of the draw.

    Returns:
        The sampled rows × the same columns, in ``frame``'s order, index kept; ``frame`` itself
        when it holds no more than ``max_rows`` rows.

    Raises:
        ValueError: ``max_rows`` is negative.
        KeyError: ``time_column`` is not a column of ``frame``.
    """
    if max_rows < 0:
        raise ValueError(f"max_rows must be >= 0, got {max_rows}")
    if len(frame) <= max_rows:
        return frame
    days = pd.to_datetime(frame[time_column]).dt.floor("D")
    codes, _ = pd.factorize(days, use_na_sentinel=False)
    sizes = np.bincount(codes)
    counts = allocate_by_day(sizes, max_rows, seed)
    rng = np.random.default_rng(seed)
    by_day = np.argsort(codes, kind="stable")  # positions grouped by day, in frame order
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    chosen = [
        rng.choice(by_day[start : start + size], size=count, replace=False)
        for start, size, count in zip(starts, sizes, counts, strict=True)
        if count
    ]
    return frame.iloc[np.sort(np.concatenate([np.empty(0, dtype=np.int64), *chosen]))]


def like_weekdays(
    reference: pd.DataFrame, current: pd.DataFrame, time_column: str, max_rows: int, seed: int = 0
) -> pd.DataFrame:
    """The reference compared like for like: rows of the weekdays the current window holds, in
    its weekday shares, each weekday's rows sampled by day (:func:`sample_by_day`).

    A window of three weekdays is then compared with the reference's same three weekdays, not
    with whole weeks: its weekend share (and any weekly pattern) does not drift by construction.

    Returns:
        At most ``max_rows`` reference rows, index kept; the reference sampled by day
        (:func:`sample_by_day`) when it lacks a weekday of the current window, or either
        frame has no ``time_column``.
    """
    if time_column not in reference or time_column not in current:
        return reference
    wanted = pd.to_datetime(current[time_column]).dt.dayofweek.value_counts()
    weekdays = pd.to_datetime(reference[time_column]).dt.dayofweek
    held = weekdays.value_counts()
    if not set(wanted.index) <= set(held.index):
        return sample_by_day(reference, time_column, max_rows, seed)
    # the largest sample holding the current window's shares within the reference's rows
    shares = wanted / wanted.sum()
    total = min(max_rows, int(min(held[d] / shares[d] for d in shares.index)))
    counts = allocate_by_day(wanted.to_numpy(), total, seed)
    parts = [
        sample_by_day(reference[weekdays == day], time_column, int(count), seed)
        for day, count in zip(shares.index, counts, strict=True)
    ]
    return reference.loc[pd.concat(parts).index.sort_values()]


def check_columns(frame: pd.DataFrame, name: str, columns: Sequence[str] = MONITORED) -> None:
    """Raise :class:`DriftInputError` naming the window and its missing ``columns``."""
    if frame.empty:
        raise DriftInputError(f"{name} window has no rows")
    missing = [col for col in columns if col not in frame.columns]
    if missing:
        raise DriftInputError(f"{name} window lacks column(s) {missing}")


def check_enough_rows(
    reference: pd.DataFrame, current: pd.DataFrame, min_rows: int = MIN_ROWS
) -> None:
    """Raise :class:`DriftInputError` ("not enough rows") unless both windows hold ``min_rows``.

    Args:
        reference, current: the windows.
        min_rows: fewest rows each must hold.

    Raises:
        DriftInputError: naming the current rows, reference rows and the minimum.
    """
    if len(current) < min_rows or len(reference) < min_rows:
        raise DriftInputError(
            f"not enough rows to compare: current {len(current)}, reference {len(reference)}, "
            f"at least {min_rows} needed in each"
        )


def check_finite(frame: pd.DataFrame, name: str, columns: DriftColumns = HANDBOOK_COLUMNS) -> None:
    """Raise :class:`DriftInputError` naming compared columns without a finite value.

    Evidently drops null and infinite values and then fails on a column left empty ("An empty
    column ... was provided for drift calculation"); a constant column it handles. A
    categorical column needs one value that is not null (it is never cast to a number).

    Args:
        frame: rows × at least ``columns.monitored``; the numerical ones numeric.
        name: the window's name in the message ("reference", "current").
        columns: the compared columns and which of them are categorical.

    Raises:
        DriftInputError: "not enough rows: column(s) [...] have no finite value in the N ...".
    """
    numerical = list(columns.numerical)
    finite = np.isfinite(frame[numerical].to_numpy(dtype=float)).sum(axis=0)
    counts = dict(zip(numerical, finite, strict=True))
    counts.update({col: int(frame[col].notna().sum()) for col in columns.categorical})
    empty = [col for col in columns.monitored if counts[col] == 0]
    if empty:
        raise DriftInputError(
            f"not enough rows: column(s) {empty} have no finite value in the {len(frame)} "
            f"{name} rows compared (all null or infinite)"
        )


@dataclass(frozen=True)
class DriftFigures:
    """What one drift run found.

    Attributes:
        current_rows, reference_rows: rows compared after sampling.
        drift_share: share of the compared columns (features and score; 19 for the handbook)
            whose test found drift, in [0, 1].
        drifted_columns: their names.
        column_scores: column → Evidently's drift score (see ``column_methods``: a distance,
            or a p-value on small samples).
        prediction_drift: whether the ``score`` column drifted.
        labelled_rows: current rows whose label has arrived.
        average_precision, recall_at_threshold: on those rows (None when too few or one class).
        spec_name: the champion's dataset spec, whose features were compared.
        categorical_columns: the compared columns tested as categories.
        column_methods: column → the drift test Evidently chose for its type and sample size
            ("Wasserstein distance (normed)", "Jensen-Shannon distance", "chi-square p_value"...).
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
    spec_name: str = "handbook"
    categorical_columns: list[str] = field(default_factory=list)
    column_methods: dict[str, str] = field(default_factory=dict)

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


def quality_snapshot(
    labelled: pd.DataFrame | None,
    threshold: float,
    min_labelled: int,
    labels: SnapshotLabels,
) -> Any | None:
    """An Evidently snapshot of the labelled window's quality for the dashboard: recall at
    the alert threshold (``Recall`` with ``probas_threshold``) and ROC AUC, on the rows whose
    label arrived; stamped and tagged like the drift snapshot, plus ``quality``.

    Average precision, which Evidently 0.7 has no metric for, stays in the report header and
    the decision log (:class:`DriftFigures`).

    Returns:
        None when there are fewer than ``min_labelled`` labelled rows or one class only.
    """
    if labelled is None or LABEL_COLUMN not in labelled:
        return None
    frame = labelled.dropna(subset=[LABEL_COLUMN])[[SCORE, LABEL_COLUMN]].astype(
        {SCORE: float, LABEL_COLUMN: int}
    )
    if len(frame) < min_labelled or frame[LABEL_COLUMN].nunique() < 2:
        return None
    from evidently import BinaryClassification, DataDefinition, Dataset, Report
    from evidently.metrics import Recall, RocAuc

    definition = DataDefinition(
        numerical_columns=[SCORE],
        classification=[
            BinaryClassification(target=LABEL_COLUMN, prediction_probas=SCORE, pos_label=1)
        ],
    )
    run = labels.run_kwargs()
    run["name"] = run["name"].replace("drift", "labelled quality", 1)
    run["tags"] = [*run["tags"], QUALITY_TAG]
    report = Report([Recall(probas_threshold=threshold), RocAuc()])
    return report.run(current_data=Dataset.from_pandas(frame, data_definition=definition), **run)


def run_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    threshold: float,
    column_drift_share: float = 0.5,
    min_labelled: int = 1_000,
    labelled: pd.DataFrame | None = None,
    min_rows: int = MIN_ROWS,
    columns: DriftColumns = HANDBOOK_COLUMNS,
    labels: SnapshotLabels | None = None,
    score_reference: pd.DataFrame | None = None,
) -> tuple[Any, DriftFigures]:
    """Compare ``current`` with ``reference`` on ``columns`` (the champion's features, score).

    Numerical columns are compared as floats; categorical ones as strings (nulls kept), so a
    category stored as a code on one side and as text on the other still matches.

    The reference is first sampled by day (:func:`sample_by_day`, seed 0) to exactly as many
    rows as ``current`` holds, when it holds more; without ``TX_DATETIME`` it is used whole.
    Every check listed under Raises runs before Evidently is imported or called.

    Args:
        reference: rows × at least ``columns.monitored``.
        current: rows × at least ``columns.monitored``.
        labelled: scored rows whose labels have arrived (``score`` and ``is_fraud``), usually the
            window one label delay earlier; None skips the quality figures.
        threshold: the champion's alert threshold (for recall at the threshold).
        column_drift_share: the report's dataset-drift test threshold (shown in the report).
        min_labelled: fewest labelled rows (both classes) for the quality figures.
        min_rows: fewest rows compared in each window (:data:`MIN_ROWS`).
        columns: the compared columns and their types (default: the handbook's).
        labels: the snapshot's timestamp, name, tags and metadata (None: Evidently's
            defaults, the wall clock and no tags).
        score_reference: the champion's out-of-sample scores (rows × ``TX_DATETIME``,
            ``score``: its holdout, :func:`holdout_scores`); when given, the score is compared
            with them instead of ``reference``'s score column (:func:`with_holdout_scores`).

    Returns:
        (Evidently snapshot — ``save_html`` renders it —, the figures).

    Raises:
        DriftInputError: a window is empty or lacks monitored columns ("... has no rows",
            "... lacks column(s) [...]"); a window holds fewer than ``min_rows`` rows
            ("not enough rows to compare: current N, reference M, at least K needed in each");
            a monitored column has no finite value in the rows compared ("not enough rows:
            column(s) [...] have no finite value ...").
    """
    monitored = list(columns.monitored)
    check_columns(reference, "reference", monitored)
    check_columns(current, "current", monitored)
    check_enough_rows(reference, current, min_rows)
    reference = (
        like_weekdays(reference, current, c.TX_DATETIME, len(current))
        if c.TX_DATETIME in reference
        else reference
    )
    if score_reference is not None and len(score_reference):
        reference = with_holdout_scores(reference, score_reference, current)
    check_finite(reference, "reference", columns)
    check_finite(current, "current", columns)

    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(
        numerical_columns=list(columns.numerical),
        categorical_columns=list(columns.categorical),
    )
    report = Report(
        [DataDriftPreset(columns=monitored, drift_share=column_drift_share)], include_tests=True
    )
    with np.errstate(divide="ignore", invalid="ignore"):  # constant columns in a window
        snapshot = report.run(
            current_data=Dataset.from_pandas(
                drift_frame(current, columns), data_definition=definition
            ),
            reference_data=Dataset.from_pandas(
                drift_frame(reference, columns), data_definition=definition
            ),
            **(labels.run_kwargs() if labels is not None else {}),
        )
    result = snapshot.dict()
    value_drifts = [
        m for m in result["metrics"] if m["config"].get("type", "").endswith("ValueDrift")
    ]
    scores = {m["config"]["column"]: float(m["value"]) for m in value_drifts}
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
        drift_share=len(drifted) / len(monitored),
        drifted_columns=drifted,
        column_scores=scores,
        prediction_drift=SCORE in drifted,
        labelled_rows=labelled_rows,
        average_precision=ap,
        recall_at_threshold=recall,
        spec_name=columns.spec_name,
        categorical_columns=list(columns.categorical),
        column_methods={
            m["config"]["column"]: str(m["config"].get("method")) for m in value_drifts
        },
    )
    return snapshot, figures


def holdout_scores(
    times: pd.Series, scores: np.ndarray, max_rows: int = 50_000, seed: int = 0
) -> pd.DataFrame:
    """The score reference: a model's scores on its holdout, sampled by day.

    A model's scores on its own training rows are in-sample (fitted to them) and never match
    what it gives live traffic, so prediction drift measured against them is there on every
    clean day; its holdout scores are what it gives rows it has not seen (the reference
    NannyML and Evidently advise for performance and prediction monitoring).

    Args:
        times: the holdout's ``TX_DATETIME``; scores: the model's scores, aligned, in [0, 1].
        max_rows: rows kept (:func:`sample_by_day`); seed: its random seed.

    Returns:
        ``min(len(times), max_rows)`` rows × ``TX_DATETIME``, ``score``.
    """
    frame = pd.DataFrame({c.TX_DATETIME: times.to_numpy(), SCORE: np.asarray(scores, float)})
    return sample_by_day(frame, c.TX_DATETIME, max_rows, seed).reset_index(drop=True)


def with_holdout_scores(
    reference: pd.DataFrame, score_reference: pd.DataFrame, current: pd.DataFrame
) -> pd.DataFrame:
    """``reference`` whose score column holds out-of-sample scores: ``score_reference``'s,
    drawn like for like with ``current``'s weekdays (:func:`like_weekdays`), as many as
    ``reference`` has rows (null beyond what ``score_reference`` holds; Evidently drops nulls).

    Evidently's drift tests compare one column at a time, so score and feature values need not
    come from the same rows; the result serves one comparison and is never stored.
    """
    drawn = like_weekdays(score_reference, current, c.TX_DATETIME, len(reference))
    values = np.full(len(reference), np.nan)
    values[: len(drawn)] = drawn[SCORE].to_numpy(dtype=float)[: len(reference)]
    return reference.assign(**{SCORE: values})


def drift_frame(frame: pd.DataFrame, columns: DriftColumns) -> pd.DataFrame:
    """``frame``'s compared columns as Evidently reads them: numbers as floats, categories as
    strings (nulls stay null), in ``columns.monitored`` order."""
    out = frame[list(columns.monitored)].astype(dict.fromkeys(columns.numerical, float))
    for col in columns.categorical:
        out[col] = out[col].astype(object).map(str, na_action="ignore")
    return out


def reference_sample(
    features: pd.DataFrame,
    times: pd.Series,
    score: Callable[[pd.DataFrame], np.ndarray],
    max_rows: int = 50_000,
    seed: int = 0,
) -> pd.DataFrame:
    """The drift reference: a day-stratified sample of the training window, with its score.

    Every column keeps its type: categorical features (strings or codes) are neither cast nor
    encoded here; :func:`run_drift` compares them as strings.

    Args:
        features: training rows × the spec's features (:data:`contract.FEATURES` for the
            handbook), categorical ones included.
        times: their ``TX_DATETIME``, aligned with ``features``.
        score: the model's fraud score of a feature frame; called on the sample only.
        max_rows: rows kept (:func:`sample_by_day`: exactly ``min(len(features), max_rows)``,
            at least one from every training day when ``max_rows`` >= the number of days).
        seed: random seed of the sample.

    Returns:
        ``min(len(features), max_rows)`` rows × the features, ``score`` and ``TX_DATETIME``.
    """
    frame = features.assign(**{c.TX_DATETIME: times.to_numpy()})
    sample = sample_by_day(frame, c.TX_DATETIME, max_rows, seed).reset_index(drop=True)
    return sample.assign(**{SCORE: score(sample[list(features.columns)])})
