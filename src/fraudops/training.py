"""Steps of the training pipeline as plain functions; ``pipelines/training.py`` wires them.

load (:func:`fraudops.data.history.load`) → validate → features → time-based split → fit
challenger → evaluate challenger and champion on the same holdout → register → gate → alias.
Each step is importable and testable without Prefect or a server.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from mlflow import MlflowClient
from sklearn.pipeline import Pipeline

from fraudops import registry
from fraudops.data import contract as c
from fraudops.data.sources import frame_sha256
from fraudops.data.splits import SplitError, Windows, plan_windows, split, training_sample
from fraudops.drift.report import holdout_scores, reference_sample
from fraudops.model.evaluation import evaluate
from fraudops.model.gate import GateDecision, GateRule, decide
from fraudops.model.pipeline import build_model, fraud_scores, model_params
from fraudops.model.report import ModelOnHoldout
from fraudops.model.slices import SliceRule, compare_slices, segments, slice_figures
from fraudops.offline.engine import compute_spec_features
from fraudops.registry import audit
from fraudops.registry import stage as stages
from fraudops.registry.card import ModelCard
from fraudops.settings import Settings
from fraudops.spec import DatasetSpec, default_spec, spec_sha256, spec_yaml
from fraudops.spec.data import prepare_events

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Dataset:
    """Features and labels of the training and test windows.

    Attributes:
        train_features, test_features: rows × the spec's features (float64 but categoricals).
        train_labels: training labels (0/1), aligned with ``train_features``.
        train_times: event times of the training rows (for the drift reference sample).
        test_frame: test rows × the spec's columns (for the holdout metrics).
        test_segments: test rows × the spec's slices: each row's segment
            (:func:`fraudops.model.slices.segments`, entity ages over the whole history).
        windows: the split's day boundaries.
        data_sha256: fingerprint of the training rows' raw columns.
    """

    train_features: pd.DataFrame
    train_labels: np.ndarray
    train_times: pd.Series
    test_features: pd.DataFrame
    test_frame: pd.DataFrame
    windows: Windows
    data_sha256: str
    test_segments: pd.DataFrame = field(default_factory=pd.DataFrame)


@dataclass
class TrainingResult:
    """What one training run did; ``as_json`` is the CLI's ``--json`` summary."""

    run_id: str
    model_name: str
    version: str
    model_kind: str
    windows: dict[str, str]
    metrics: dict[str, float]
    champion_metrics: dict[str, float] | None
    gate: dict[str, Any]
    promoted: bool
    champion_version: str | None
    previous_champion: str | None
    reasons: list[str] = field(default_factory=list)
    stage: str | None = None  # shadow/canary: the version passed and is a staged @challenger

    def as_json(self) -> str:
        return json.dumps(asdict(self), indent=2, default=str)


def validate(raw: pd.DataFrame, spec: DatasetSpec | None = None) -> pd.DataFrame:
    """Spec-checked labelled events, sorted by time then event id.

    Args:
        raw: the file's rows (see :func:`fraudops.spec.data.prepare_events`).
        spec: the dataset spec; None: the shipped handbook spec.

    Raises:
        DataValidationError: the data breaks the spec, or the label holds a single class
            (nothing to learn); raised before any feature, model or run exists.
    """
    spec = spec or default_spec()
    events = prepare_events(raw, spec, require_label=True)
    c.require_both_classes(events, spec.label.column)
    return events


def planned_windows(times: pd.Series, settings: Settings) -> Windows:
    """The split's windows in the history spanned by ``times`` (only its first and last
    matter), as the settings place them (:func:`fraudops.data.splits.plan_windows`).

    Raises:
        SplitError: the history is too short for warm-up + train + delay + test.
    """
    return plan_windows(
        times,
        train_days=settings.train_days,
        label_delay_days=settings.label_delay_days,
        test_days=settings.test_days,
        warmup_days=settings.warmup_days,
        train_start=settings.train_start,
        test_end=settings.test_end,
    )


def build_dataset(transactions: pd.DataFrame, settings: Settings) -> Dataset:
    """Features over the whole history, then the time-based split.

    Raises:
        SplitError: the history is too short for warm-up + train + delay + test, a window is
            empty, the test window (known-compromised cards removed) lacks a class, or the
            training window lacks a class for a classifier; raised before any model is fit.
        SumOverflowError: a window sum leaves the exact integer range (names the column).
    """
    spec = settings.spec
    roles = spec.roles()
    windows = planned_windows(transactions[roles.time], settings)
    features = compute_spec_features(transactions, spec)
    train, test = split(transactions, windows, roles=roles)
    labels = transactions[roles.label].to_numpy()
    kept, _ = training_sample(
        transactions[roles.event_id][train], labels[train], settings.train_max_rows
    )
    train[np.flatnonzero(train)[~kept]] = False
    require_both_classes(
        "test",
        windows.test_start,
        windows.test_end,
        labels[test],
        roles.label,
        note=" (entities already known fraudulent removed)" if roles.drop_known else "",
    )
    if settings.model_kind != "isolation_forest":  # the only model that learns without labels
        require_both_classes(
            "training", windows.train_start, windows.train_end, labels[train], roles.label
        )
    return Dataset(
        train_features=features[train].reset_index(drop=True),
        train_labels=labels[train],
        train_times=transactions[roles.time][train].reset_index(drop=True),
        test_features=features[test].reset_index(drop=True),
        test_frame=transactions[test].reset_index(drop=True),
        windows=windows,
        data_sha256=frame_sha256(transactions[train]),
        test_segments=segments(transactions, spec)[test].reset_index(drop=True),
    )


def require_both_classes(
    name: str, start: dt.date, end: dt.date, labels: np.ndarray, label: str, note: str = ""
) -> None:
    """Raise ``SplitError`` naming the window (``name``, its first day, its end) and its
    counts of ``label`` = 1 and 0 unless it holds both classes."""
    frauds = int((labels == 1).sum())
    if 0 < frauds < len(labels):
        return
    raise SplitError(
        f"the {name} window {start}..{end - dt.timedelta(days=1)} holds {len(labels):,} "
        f"transactions{note} with {frauds:,} fraud(s) ({label}=1) and "
        f"{len(labels) - frauds:,} genuine ({label}=0); it needs both classes: check the "
        "labels or move/widen the window (FRAUDOPS_TRAIN_START, FRAUDOPS_TRAIN_DAYS, "
        "FRAUDOPS_TEST_DAYS)"
    )


def fit_challenger(dataset: Dataset, settings: Settings) -> Pipeline:
    """Fit the configured model kind on the training window; returns the fitted pipeline.

    Raises:
        UnknownModelError: ``settings.model_kind`` is not a known model.
        SplitError: the training window holds a single class (a classifier cannot learn).
    """
    spec = settings.spec
    model = build_model(
        settings.model_kind,
        seed=settings.seed,
        features=spec.feature_names(),
        categorical=spec.categorical_features(),
        max_categories=max((col.max_categories for col in spec.categorical), default=50),
    )
    if settings.model_kind != "isolation_forest" and len(np.unique(dataset.train_labels)) < 2:
        raise SplitError(
            f"the training window {dataset.windows.train_start}..{dataset.windows.train_end} "
            "holds only one class; a classifier needs frauds and genuine transactions"
        )
    return model.fit(dataset.train_features, dataset.train_labels)


def evaluate_holdout(
    model: Pipeline, dataset: Dataset, settings: Settings, label: str = "challenger"
) -> ModelOnHoldout:
    """The model's scores, metrics and slice figures on the dataset's test window.

    The slices are measured at the model's own decision threshold
    (:func:`fraudops.model.slices.slice_figures`).
    """
    scores = fraud_scores(model, dataset.test_features)
    metrics = evaluate(
        dataset.test_frame,
        scores,
        k=settings.card_precision_k,
        fpr=settings.operating_fpr,
        alert_rate=settings.alert_rate,
        roles=settings.spec.roles(),
    )
    slices = []
    if not dataset.test_segments.empty:
        labels = dataset.test_frame[settings.spec.label.column].to_numpy()
        alerts = scores >= metrics.threshold
        slices = slice_figures(dataset.test_segments, labels, alerts, seed=settings.seed)
    return ModelOnHoldout(label, scores, metrics, slices)


def champion_on_holdout(
    client: MlflowClient, dataset: Dataset, settings: Settings
) -> tuple[str | None, ModelOnHoldout | None]:
    """The current champion's version and its evaluation on the same holdout (None, None if
    there is no champion)."""
    version = registry.version_by_alias(client, settings.model_name, registry.CHAMPION)
    if version is None:
        return None, None
    registry.require_same_spec(version, settings.spec)
    model = registry.load_verified(settings, str(version.version), dict(version.tags))
    number = str(version.version)
    return number, evaluate_holdout(model, dataset, settings, f"champion v{number}")


def feature_means(features: pd.DataFrame, spec: DatasetSpec) -> dict[str, float]:
    """Mean of each numeric model input over the training rows (the "usual" value of a
    reason code); categorical inputs are left out."""
    numeric = [f for f in features.columns if f not in set(spec.categorical_features())]
    return {f: float(v) for f, v in features[numeric].mean().items() if np.isfinite(v)}


#: Holdout rows (at most) and shuffles per feature of the permutation importance.
IMPORTANCE_ROWS, IMPORTANCE_REPEATS = 20_000, 3


def holdout_importance(model: Pipeline, dataset: Dataset, settings: Settings) -> dict[str, float]:
    """Each feature's permutation importance on (a sample of) the holdout: the mean drop of
    average precision over :data:`IMPORTANCE_REPEATS` shuffles of its column (scikit-learn's
    ``permutation_importance``; Breiman 2001). Empty when the sample holds one class, or the
    model is not a scikit-learn estimator (logged).

    Returns:
        Feature → importance (AP points; ≤ 0 for a feature the model does not use).
    """
    from sklearn.inspection import permutation_importance
    from sklearn.metrics import average_precision_score

    labels = dataset.test_frame[settings.spec.label.column].to_numpy()
    rows = np.random.default_rng(settings.seed).permutation(len(labels))[:IMPORTANCE_ROWS]
    if len(np.unique(labels[rows])) < 2:
        return {}
    if not hasattr(model, "fit"):  # scikit-learn takes only estimators (a test double is not)
        logger.warning("no feature importance recorded for %s: not an estimator", type(model))
        return {}
    result = permutation_importance(
        model,
        dataset.test_features.iloc[rows],
        labels[rows],
        scoring=lambda estimator, x, y: average_precision_score(y, fraud_scores(estimator, x)),
        n_repeats=IMPORTANCE_REPEATS,
        random_state=settings.seed,
    )
    names = list(dataset.test_features.columns)
    return {name: float(v) for name, v in zip(names, result.importances_mean, strict=True)}


def run_name(dataset: Dataset, settings: Settings) -> str:
    """``train <spec> <first day>..<last day> <model kind>``: the run's name in MLflow."""
    windows = dataset.windows
    last = windows.train_end - dt.timedelta(days=1)
    return f"train {settings.spec.name} {windows.train_start}..{last} {settings.model_kind}"


def register_challenger(
    experiment_id: str,
    client: MlflowClient,
    model: Pipeline,
    dataset: Dataset,
    holdout: ModelOnHoldout,
    settings: Settings,
    started_ms: int | None = None,
) -> tuple[str, str]:
    """Log the run, register the version with its tags, point ``@challenger`` at it;
    ``holdout``: the model's evaluation on the dataset's holdout (its metrics are logged, its
    scores kept as the score reference); ``started_ms``: when training began (Unix ms), the
    run's start time.

    Returns:
        (run id, version).
    """
    params = model_params(model)
    metrics = holdout.metrics
    card = ModelCard(
        features=tuple(settings.spec.feature_names()),
        threshold=metrics.threshold,
        label_delay_days=settings.label_delay_days,
        model_kind=settings.model_kind,
        spec_name=settings.spec.name,
        spec_sha256=spec_sha256(settings.spec),
        windows=dataset.windows.as_tags(),
        data_sha256=dataset.data_sha256,
        git_commit=registry.git_commit(),
        model_params=params,
        metrics=dict(metrics.as_dict()),
        feature_means=feature_means(dataset.train_features, settings.spec),
        feature_importance=holdout_importance(model, dataset, settings),
    )
    tags = card.to_tags()
    reference = reference_sample(
        dataset.train_features,
        dataset.train_times,
        lambda frame: fraud_scores(model, frame),
        settings.reference_rows,
        settings.seed,
    )
    run_id, model_uri = registry.log_challenger(
        experiment_id,
        model,
        dataset.test_features.head(50),
        params={"model_kind": settings.model_kind, **params},
        metrics=metrics.as_dict(),
        tags=tags,
        frames={
            registry.REFERENCE_ARTIFACT: reference,
            registry.SCORE_REFERENCE_ARTIFACT: holdout_scores(
                dataset.test_frame[settings.spec.roles().time],
                holdout.scores,
                settings.reference_rows,
                settings.seed,
            ),
        },
        texts={registry.SPEC_ARTIFACT: spec_yaml(settings.spec)},
        run_name=run_name(dataset, settings),
        training_data=(dataset.train_features, f"{settings.spec.name} training window"),
        started_ms=started_ms,
    )
    sealed = registry.seal(settings, model_uri, tags)
    version = registry.register_version(
        client, settings.model_name, run_id, model_uri, {**tags, **sealed, "gate": "pending"}
    )
    client.set_registered_model_alias(
        settings.model_name, registry.CHALLENGER, str(version.version)
    )
    return run_id, str(version.version)


def gate(
    challenger: ModelOnHoldout,
    champion: ModelOnHoldout | None,
    champion_version: str | None,
    settings: Settings,
) -> GateDecision:
    """The champion/challenger decision under the settings' rule, the slice gate included
    (the spec's slices with ``gate: true``, when there is a champion)."""
    rule = GateRule(
        ap_tolerance=settings.gate_ap_tolerance,
        recall_tolerance=settings.gate_recall_tolerance,
        min_average_precision=settings.gate_min_average_precision,
        min_roc_auc=settings.gate_min_roc_auc,
    )
    slice_rule = SliceRule(
        recall_tolerance=settings.gate_slice_recall_tolerance,
        fpr_tolerance=settings.gate_slice_fpr_tolerance,
        min_frauds=settings.gate_slice_min_frauds,
    )
    gated = {cut.name for cut in settings.spec.slices if cut.gate}
    check = (
        compare_slices(challenger.slices, champion.slices, gated, slice_rule)
        if champion is not None and champion.slices and gated
        else None
    )
    decision = decide(
        challenger.metrics,
        None if champion is None else champion.metrics,
        rule,
        champion_version,
        check,
    )
    figures = {
        "challenger": [f.as_dict() for f in challenger.slices],
        "champion": [] if champion is None else [f.as_dict() for f in champion.slices],
        "gated": sorted(gated),
        "rule": asdict(slice_rule),
    }
    return replace(decision, extra={**decision.extra, "slices": figures})


def apply_decision(
    client: MlflowClient, run_id: str, version: str, decision: GateDecision, settings: Settings
) -> tuple[GateDecision, str | None]:
    """Record the gate JSON on the run and tags on the version, then move ``@champion`` if the
    gate passed and the champion is still the one gated against (the alias moves last;
    :func:`fraudops.registry.promote`'s compare-and-set).

    With ``promotion: staged`` and a champion to compare with, a passed gate does not move
    ``@champion``: the version enters ``staged_mode`` (shadow or canary) as ``@challenger``
    (:func:`fraudops.registry.stage.enter`) for the online gate to judge; the returned
    decision then does not promote and its ``extra["stage"]`` names the stage.

    Returns:
        The decision as applied (a passed gate whose champion moved meanwhile becomes "not
        promoted", tagged ``gate: stale`` with the reason) and the version that held
        ``@champion`` before a promotion, else None.
    """
    if decision.promote and settings.promotion == "staged" and decision.champion_version:
        staged = replace(
            decision,
            promote=False,
            reasons=[*decision.reasons, f"staged: enters {settings.staged_mode} as @challenger"],
            extra={**decision.extra, "stage": settings.staged_mode},
        )
        _record(client, run_id, version, staged, settings, gate="staged")
        stages.enter(
            client,
            settings.model_name,
            version,
            settings.staged_mode,
            reason=f"offline gate: {decision.summary}",
            share=settings.canary_share,
        )
        return staged, None
    _record(client, run_id, version, decision, settings)
    if not decision.promote:
        return decision, None
    try:
        previous = registry.promote(
            client,
            settings.model_name,
            version,
            reason=f"gate: {decision.summary}",
            expected=decision.champion_version,
        )
    except registry.ChampionMoved as exc:
        stale = replace(decision, promote=False, reasons=[*decision.reasons, str(exc)])
        _record(client, run_id, version, stale, settings, gate="stale")
        return stale, None
    return decision, previous


def version_description(decision: GateDecision, outcome: str) -> str:
    """The gate's verdict in words, for the version's description in the MLflow UI."""
    figures = decision.challenger
    verdict = {
        "promoted": "promoted to @champion",
        "rejected": f"kept out: the champion v{decision.champion_version} stays",
        "stale": "not promoted: @champion moved while this version was gated",
        "staged": "passed; judged on live traffic as @challenger before promotion",
    }.get(outcome, outcome)
    return (
        f"Gate: {verdict}. Holdout average precision {figures['average_precision']:.3f}, ROC "
        f"AUC {figures['roc_auc']:.3f}, recall at the operating FPR "
        f"{figures['recall_at_fpr']:.3f}. Reasons: " + "; ".join(decision.reasons) + "."
    )


def _record(
    client: MlflowClient,
    run_id: str,
    version: str,
    decision: GateDecision,
    settings: Settings,
    gate: str | None = None,
) -> None:
    client.log_dict(run_id, decision.as_dict(), "gate/decision.json")
    outcome = gate or ("promoted" if decision.promote else "rejected")
    client.update_model_version(
        settings.model_name, version, description=version_description(decision, outcome)
    )
    registry.set_version_tags(
        client, settings.model_name, version, {"gate": outcome, "gate_reasons": decision.summary}
    )
    if not decision.promote and outcome != "staged":  # promotions and stages audit themselves
        audit.record(
            client,
            settings.model_name,
            f"gate-{outcome}",
            version,
            decision.summary,
            decision.champion_version,
        )
