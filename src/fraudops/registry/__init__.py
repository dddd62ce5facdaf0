"""MLflow registry protocol: log a challenger, register it, and move aliases.

Aliases (``../shared/docs/design.md``): ``@champion`` is what the service serves,
``@challenger`` the latest candidate, ``@previous`` the champion before the last promotion
(rollback target). Aliases move only after a version is fully registered and tagged, so a run
that fails midway never leaves a half-registered ``@champion``.
"""

from __future__ import annotations

import importlib.metadata
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow
from mlflow import MlflowClient
from mlflow.artifacts import download_artifacts
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from fraudops.registry import audit, integrity
from fraudops.registry.card import METRIC_TAG_PREFIX as METRIC_TAG_PREFIX
from fraudops.registry.integrity import IntegrityError
from fraudops.settings import Settings

if TYPE_CHECKING:  # scikit-learn, pandas and mlflow.sklearn load inside the functions using
    # them: a command that only reads the registry starts a second faster
    import pandas as pd
    from sklearn.pipeline import Pipeline
from fraudops.spec import DatasetSpec, default_spec, spec_sha256

CHAMPION = "champion"
CHALLENGER = "challenger"
PREVIOUS = "previous"


class RegistryError(RuntimeError):
    """A registry operation cannot be done as asked (e.g. no ``@previous`` to roll back to)."""


def configure_mlflow(settings: Settings) -> str:
    """Point MLflow at the settings' tracking/registry URI; create the experiment if absent.

    Returns:
        The experiment id.
    """
    uri = settings.resolved_tracking_uri
    if uri.startswith("sqlite:///"):
        settings.ensure_home()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    experiment = mlflow.get_experiment_by_name(settings.experiment_name)
    if experiment is not None:
        return str(experiment.experiment_id)
    return str(
        mlflow.create_experiment(
            settings.experiment_name, artifact_location=settings.resolved_artifact_location
        )
    )


def client_for(settings: Settings) -> MlflowClient:
    """An ``MlflowClient`` on the settings' tracking and registry URI."""
    return client_for_uri(settings.resolved_tracking_uri)


def client_for_uri(uri: str) -> MlflowClient:
    """An ``MlflowClient`` whose tracking and registry URI is ``uri``."""
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def version_by_alias(client: MlflowClient, name: str, alias: str) -> ModelVersion | None:
    """The version that ``alias`` points to, or None when the model or the alias is absent."""
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        if exc.error_code in {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"}:
            return None
        # MLflow's basic-auth app answers 403 for a model that does not exist yet (it has
        # nothing to check permissions on): absent only if no readable model has the name
        if exc.error_code == "PERMISSION_DENIED" and not client.search_registered_models(
            filter_string=f"name = '{name}'"
        ):
            return None
        raise


def resolve_version(client: MlflowClient, name: str, version: str | None) -> ModelVersion:
    """Version ``version`` of ``name``, or the one ``@champion`` points to when None.

    Raises:
        RegistryError: no ``@champion`` yet, or ``version`` does not exist.
    """
    if version is not None:
        return require_version(client, name, version)
    found = version_by_alias(client, name, CHAMPION)
    if found is None:
        raise RegistryError(f"{name} has no @champion yet: train one with `fraudops train`")
    return found


def verifying_key(settings: Settings, version: str) -> bytes | None:
    """The key that verifies versions of the settings' registry (None: digest only).

    Raises:
        IntegrityError: the registry is a server others can write to (``http(s)://``) and
            ``model_signing_key`` is not set (fail closed).
    """
    key = settings.signing_key
    if key is None and settings.remote_registry:
        raise IntegrityError(
            f"version {version}: the registry {settings.resolved_tracking_uri} is a server "
            "others can write to, and FRAUDOPS_MODEL_SIGNING_KEY is not set: no model is "
            "loaded from it unverified; refused"
        )
    return key


def load_verified(settings: Settings, version: str, tags: Mapping[str, str]) -> Pipeline:
    """Download a registered version's model once, verify it, and load those bytes.

    The tracking URI must be configured (:func:`configure_mlflow`). Verification is
    :func:`fraudops.registry.integrity.verify`: the files' digest against the
    ``artifact_sha256`` tag, and with ``model_signing_key`` the ``signature`` tag.

    Args:
        version: the version number; tags: its registry tags (read by the caller, so the
            card it checked is the card that is verified).

    Raises:
        IntegrityError: the files or the card do not verify, or the registry is remote
            (``http(s)://``) and no signing key is configured (fail closed); nothing is
            unpickled.
    """
    key = verifying_key(settings, version)
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(
            download_artifacts(
                artifact_uri=f"models:/{settings.model_name}/{version}", dst_path=tmp
            )
        )
        integrity.verify(settings.model_name, version, local, tags, key)
        import mlflow.sklearn

        return mlflow.sklearn.load_model(str(local))


def seal(settings: Settings, model_uri: str, tags: Mapping[str, str]) -> dict[str, str]:
    """The integrity tags of a logged model: ``artifact_sha256`` of its files as stored, and
    with ``model_signing_key`` its ``signature`` over them and the card in ``tags``.

    Raises:
        IntegrityError: ``tags`` do not make a model card.
    """
    with tempfile.TemporaryDirectory() as tmp:
        digest = integrity.artifact_digest(
            Path(download_artifacts(artifact_uri=model_uri, dst_path=tmp))
        )
    sealed = {integrity.ARTIFACT_TAG: digest}
    key = settings.signing_key
    if key is not None:
        sealed[integrity.SIGNATURE_TAG] = integrity.sign(key, settings.model_name, digest, tags)
    return sealed


def git_commit() -> str:
    """The current git commit of the project checkout, or ``unknown`` outside one."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


def _requirements() -> list[str]:
    packages = ["scikit-learn", "pandas", "numpy", "cloudpickle"]
    return [f"{p}=={importlib.metadata.version(p)}" for p in packages]


def log_challenger(
    experiment_id: str,
    model: Pipeline,
    sample_features: pd.DataFrame,
    *,
    params: dict[str, Any],
    metrics: dict[str, float],
    tags: dict[str, str],
    frames: dict[str, pd.DataFrame] | None = None,
    texts: dict[str, str] | None = None,
    run_name: str | None = None,
    training_data: tuple[pd.DataFrame, str] | None = None,
    started_ms: int | None = None,
) -> tuple[str, str]:
    """Log one training run with its params, holdout metrics, tags and the fitted pipeline.

    Args:
        experiment_id: from :func:`configure_mlflow`.
        model: the fitted challenger pipeline.
        sample_features: a few rows of its input frame, to infer the model signature.
        frames: artifact path (e.g. ``reference/reference.parquet``) → frame to store as Parquet.
        texts: artifact path (e.g. ``spec/dataset.yaml``) → text to store as it is.
        run_name: the run's name in the MLflow UI.
        training_data: (the training rows' features, a name for them): logged as the run's
            dataset input (MLflow keeps its digest, row count and schema, not its rows).
        started_ms: when training began (Unix ms), the run's start time: its duration in the
            UI is the training's, not only the logging's. None: now.

    Returns:
        (run id, model URI).
    """
    import mlflow.sklearn
    from mlflow.data.pandas_dataset import from_pandas
    from mlflow.models import infer_signature

    created = mlflow.MlflowClient().create_run(
        experiment_id, start_time=started_ms, run_name=run_name
    )
    with mlflow.start_run(run_id=created.info.run_id) as run:
        if training_data is not None:
            frame, name = training_data
            mlflow.log_input(from_pandas(frame, name=name), context="training")
        mlflow.log_params(params)
        mlflow.log_metrics(metrics)
        mlflow.set_tags(tags)
        signature = infer_signature(sample_features, model.predict_proba(sample_features)[:, 1])
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE,
            signature=signature,
            pip_requirements=_requirements(),
        )
        with tempfile.TemporaryDirectory() as tmp:
            for artifact, frame in (frames or {}).items():
                local = Path(tmp) / Path(artifact).name
                frame.to_parquet(local, index=False)
                mlflow.log_artifact(str(local), artifact_path=str(Path(artifact).parent))
        for artifact, text in (texts or {}).items():
            mlflow.log_text(text, artifact)
    return run.info.run_id, info.model_uri


REFERENCE_ARTIFACT = "reference/reference.parquet"
#: The version's scores on its holdout (``TX_DATETIME``, ``score``): the out-of-sample score
#: reference of prediction drift (versions registered before it compare with in-sample scores).
SCORE_REFERENCE_ARTIFACT = "reference/holdout_scores.parquet"
#: The dataset spec a version was trained with (YAML), beside its ``spec_sha256`` tag.
SPEC_ARTIFACT = "spec/dataset.yaml"


def load_frame_artifact(client: MlflowClient, run_id: str, artifact: str) -> pd.DataFrame:
    """A Parquet artifact of a run as a frame."""
    with tempfile.TemporaryDirectory() as tmp:
        import pandas as pd

        return pd.read_parquet(client.download_artifacts(run_id, artifact, tmp))


def register_version(
    client: MlflowClient, name: str, run_id: str, model_uri: str, tags: dict[str, str]
) -> ModelVersion:
    """Register the run's model as a new version of ``name``; idempotent per run.

    A retried call after a lost response finds the version already made for ``run_id``.
    """
    try:
        existing = list(client.search_model_versions(f"name='{name}' and run_id='{run_id}'"))
    except MlflowException:
        existing = []
    if existing:
        return existing[0]
    version = mlflow.register_model(model_uri, name, tags=tags)
    if not client.get_registered_model(name).description:
        client.update_registered_model(name, description=MODEL_DESCRIPTION)
    return version


#: The registered model's description in the MLflow UI.
MODEL_DESCRIPTION = (
    "Fraud model trained by fraudops. Each version is a training run gated against @champion "
    "on the same holdout: its description says the verdict, its tags hold the model card, its "
    "run holds the model report (report/model_report.html). @champion is what the service "
    "scores with, @previous what a rollback returns to; every move is in the audit log (the "
    "audit.* tags here, `fraudops audit`)."
)


def set_version_tags(client: MlflowClient, name: str, version: str, tags: dict[str, str]) -> None:
    """Set several tags on one model version."""
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)


class ChampionMoved(RegistryError):
    """``@champion`` no longer points to the version a run was gated against."""


#: ``expected`` of :func:`promote` for an operator override: whatever the champion is.
ANY_CHAMPION = "*"


def promote(
    client: MlflowClient,
    name: str,
    version: str,
    *,
    reason: str,
    expected: str | None = ANY_CHAMPION,
) -> str | None:
    """Point ``@champion`` at ``version``; the old champion gets ``@previous``.

    Compare-and-set: with ``expected`` (the champion version a run was gated against, None
    for "no champion"), the alias moves only if it still points there. MLflow has no atomic
    alias update, so the check and the move are two calls: the window in which a concurrent
    promotion goes unseen shrinks from a whole training run to a few milliseconds (and one
    scheduler owns the weekly retrain, see the README). A retried call whose alias already
    points to ``version`` is a success.

    Returns:
        The previous champion's version, or None if there was none (or it is ``version``).

    Raises:
        ChampionMoved: ``@champion`` is neither ``expected`` nor ``version``; nothing moved.
    """
    old = version_by_alias(client, name, CHAMPION)
    current = None if old is None else str(old.version)
    if expected != ANY_CHAMPION and current not in (expected, str(version)):
        raise ChampionMoved(
            f"@champion moved to v{current} while this run was gated against "
            f"{'no champion' if expected is None else f'v{expected}'}: not promoted "
            "(train again to gate against the new champion)"
        )
    if current == str(version) and expected != ANY_CHAMPION:
        held = version_by_alias(client, name, PREVIOUS)  # a retry after the move succeeded
        return None if held is None else str(held.version)
    previous = None
    if old is not None and str(old.version) != str(version):
        client.set_registered_model_alias(name, PREVIOUS, str(old.version))
        previous = str(old.version)
    client.set_registered_model_alias(name, CHAMPION, str(version))
    client.set_model_version_tag(name, str(version), "promotion_reason", reason)
    audit.record(client, name, "promote", str(version), reason, current)
    return previous


def rollback(client: MlflowClient, name: str) -> tuple[str, str]:
    """Swap ``@champion`` and ``@previous``; return (new champion, new previous) versions.

    Raises:
        RegistryError: there is no ``@previous`` or no ``@champion``.
    """
    previous = version_by_alias(client, name, PREVIOUS)
    current = version_by_alias(client, name, CHAMPION)
    if previous is None or current is None:
        raise RegistryError(f"model {name!r} has no @{PREVIOUS} and @{CHAMPION} to roll back")
    client.set_registered_model_alias(name, CHAMPION, str(previous.version))
    client.set_registered_model_alias(name, PREVIOUS, str(current.version))
    reason = f"rollback from version {current.version}"
    client.set_model_version_tag(name, str(previous.version), "promotion_reason", reason)
    audit.record(client, name, "rollback", str(previous.version), reason, str(current.version))
    return str(previous.version), str(current.version)


def require_same_spec(version: ModelVersion, spec: DatasetSpec) -> None:
    """Raise unless ``version`` was trained with ``spec`` (its ``spec_sha256`` tag).

    Versions registered before specs existed carry no tag; they were trained on the handbook
    schema and count as the shipped handbook spec.

    Raises:
        RegistryError: the hashes differ; the message names both specs and what to do.
    """
    ours = spec_sha256(spec)
    theirs = version.tags.get("spec_sha256") or spec_sha256(default_spec())
    if theirs != ours:
        raise RegistryError(
            f"version {version.version} of {version.name!r} was trained with another dataset "
            f"spec ({version.tags.get('spec_name', 'handbook')}, sha256 {theirs[:12]}); the "
            f"settings use {spec.name!r} ({ours[:12]}): train it under another "
            "FRAUDOPS_MODEL_NAME, or set FRAUDOPS_DATASET_SPEC to the version's spec "
            f"(artifact {SPEC_ARTIFACT} of its run)"
        )


def require_model(client: MlflowClient, name: str) -> None:
    """Raise :class:`RegistryError` naming the model if it is not registered."""
    try:
        client.get_registered_model(name)
    except MlflowException as exc:
        raise RegistryError(f"no model {name!r} is registered yet (train one)") from exc


def require_version(client: MlflowClient, name: str, version: str) -> ModelVersion:
    """The model version, or :class:`RegistryError` naming what is missing."""
    try:
        return client.get_model_version(name, str(version))
    except MlflowException as exc:
        raise RegistryError(f"model {name!r} has no version {version}") from exc
