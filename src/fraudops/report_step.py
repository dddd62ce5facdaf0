"""The training run's model report: built from the holdout, logged with the run, linked from
the version (tag ``model_report``). A training step (:func:`record_report`), kept apart from
:mod:`fraudops.training` so that module stays the gate's and the registry's."""

from __future__ import annotations

import tempfile
from dataclasses import asdict
from pathlib import Path

import numpy as np
from mlflow import MlflowClient
from sklearn.pipeline import Pipeline

from fraudops import registry
from fraudops.model.explain import Explainer, Unexplainable
from fraudops.model.gate import GateDecision
from fraudops.model.report import (
    ModelOnHoldout,
    ReportContext,
    mean_abs_contributions,
    model_report,
)
from fraudops.registry import audit
from fraudops.registry.card import ModelCard
from fraudops.settings import Settings
from fraudops.spec import spec_sha256
from fraudops.training import Dataset

#: Where the report is logged in the run, and the version tag that points to it.
REPORT_ARTIFACT = "report/model_report.html"
REPORT_TAG = "model_report"
#: Where the report's charts are logged, one plotly JSON file each.
FIGURES_ARTIFACTS = "report/figures"
#: Audit events shown in the report (the newest; ``fraudops audit`` prints them all).
AUDIT_ROWS = 30
#: Holdout rows whose contributions make the global feature importance (about 1 ms a row).
IMPORTANCE_ROWS = 1000


def data_card(
    dataset: Dataset, card: ModelCard, version: str, settings: Settings
) -> dict[str, str]:
    """The version's data and model card as report rows: windows, row and fraud counts, the
    spec's name and hash, the data fingerprint, the model and its threshold."""
    labels = dataset.train_labels
    windows = dataset.windows.as_tags()
    return {
        "model": f"{settings.model_name} v{version} ({card.model_kind})",
        "dataset spec": f"{settings.spec.name} (sha256 {spec_sha256(settings.spec)[:12]})",
        "training window": f"{windows['train_start']} .. {windows['train_end']} (end excluded)",
        "test window": f"{windows['test_start']} .. {windows['test_end']} (end excluded)",
        "training rows": f"{len(labels):,} ({int(np.sum(labels == 1)):,} frauds)",
        "test rows": f"{len(dataset.test_frame):,}",
        "label delay": f"{card.label_delay_days} days",
        "training data fingerprint": f"sha256 {card.data_sha256}",
        "features": f"{len(card.features)}: {', '.join(card.features)}",
        "decision threshold": f"{card.threshold:.6f}",
        "code": card.git_commit or "unknown",
    }


def importance(model: Pipeline, dataset: Dataset, settings: Settings) -> tuple[dict, str]:
    """Global feature importance on up to :data:`IMPORTANCE_ROWS` holdout rows, or a note."""
    features = settings.spec.feature_names()
    try:
        explainer = Explainer(model, features, settings.spec)
    except Unexplainable as exc:
        return {}, f"No feature importance: {exc}."
    rows = dataset.test_features.head(IMPORTANCE_ROWS)[features]
    return mean_abs_contributions(explainer.contributions(rows), features), ""


def record_report(
    client: MlflowClient,
    run_id: str,
    version: str,
    model: Pipeline,
    dataset: Dataset,
    challenger: ModelOnHoldout,
    champion: ModelOnHoldout | None,
    decision: GateDecision,
    settings: Settings,
) -> str:
    """Build the model report, log it to the run and tag the version with its location.

    Returns:
        The report's artifact URI (``runs:/<run>/report/model_report.html``).
    """
    tags = dict(client.get_model_version(settings.model_name, version).tags)
    card = ModelCard.from_tags(tags)
    weights, note = importance(model, dataset, settings)
    context = ReportContext(
        title=f"Model report: {settings.model_name} v{version}",
        card=data_card(dataset, card, version, settings),
        decision=[decision.summary.split(": ", 1)[0], *decision.reasons],
        importance=weights,
        importance_note=note,
        k=settings.card_precision_k,
        audit=[asdict(event) for event in audit.read(client, settings.model_name)[-AUDIT_ROWS:]],
    )
    models = [
        ModelOnHoldout(f"v{version}", challenger.scores, challenger.metrics, challenger.slices),
        *([champion] if champion is not None else []),
    ]
    failures = [r for r in decision.reasons if r.startswith("slice ") and "tolerance" in r]
    report = model_report(dataset.test_frame, settings.spec.roles(), models, context, failures)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "figures"
        folder.mkdir()
        for name, figure in report.figures.items():
            (folder / f"{name}.json").write_text(figure, encoding="utf-8")
        client.log_artifacts(run_id, str(folder), FIGURES_ARTIFACTS)
        path = Path(tmp) / Path(REPORT_ARTIFACT).name
        path.write_text(report.html, encoding="utf-8")
        client.log_artifact(run_id, str(path), str(Path(REPORT_ARTIFACT).parent))
    uri = f"runs:/{run_id}/{REPORT_ARTIFACT}"
    registry.set_version_tags(client, settings.model_name, version, {REPORT_TAG: uri})
    return uri


def fetch_report(settings: Settings, version: str | None = None) -> Path:
    """Download a version's model report (``@champion``'s when ``version`` is None) to
    ``<reports_dir>/models/<model>-v<version>.html`` and return that path.

    Raises:
        RegistryError: no such version, no ``@champion``, or a version registered before
            model reports existed (no ``model_report`` tag).
    """
    from mlflow.artifacts import download_artifacts

    registry.configure_mlflow(settings)
    client = registry.client_for(settings)
    name = settings.model_name
    if version is None:
        champion = registry.version_by_alias(client, name, registry.CHAMPION)
        if champion is None:
            raise registry.RegistryError(f"model {name!r} has no @champion; give --version")
        version = str(champion.version)
    tags = registry.require_version(client, name, version).tags
    if REPORT_TAG not in tags:
        raise registry.RegistryError(
            f"{name} v{version} has no model report (registered before reports existed)"
        )
    out = settings.reports_dir / "models"
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        downloaded = Path(download_artifacts(artifact_uri=tags[REPORT_TAG], dst_path=tmp))
        target = out / f"{name}-v{version}.html"
        downloaded.replace(target)
    return target
