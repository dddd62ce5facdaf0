"""Build the service's bento with a registry version inside (``fraudops build-bento``).

The bento then serves that version even where no registry is reachable, and still follows
``@champion`` when ``FRAUDOPS_TRACKING_URI`` points at one (see
:func:`fraudops.serving.scorer.load_bundled_model`).
"""

from __future__ import annotations

import importlib.metadata
import re
import tempfile
from pathlib import Path
from typing import Any

import bentoml
import yaml
from mlflow.artifacts import download_artifacts

from fraudops import registry
from fraudops.registry import integrity
from fraudops.settings import Settings

BENTOFILE = Path("services") / "bentofile.yaml"


def pinned_requirements(project: str = "fraudops") -> list[str]:
    """The project's direct dependencies pinned to their installed versions (``name==x.y.z``)."""
    pins = []
    for requirement in importlib.metadata.requires(project) or []:
        if ";" in requirement and "extra ==" in requirement:
            continue  # optional extras of the project itself
        name = re.split(r"[<>=!~; ]", requirement, maxsplit=1)[0]
        base = name.split("[", 1)[0]
        pins.append(f"{name}=={importlib.metadata.version(base)}")
    return pins


def import_version(settings: Settings, version: str | None = None) -> bentoml.Model:
    """Copy a registry version (default ``@champion``) into BentoML's model store.

    The BentoML model is named like the registered model; its metadata holds the version's
    registry tags plus ``registry_version``, its labels the version and alias.

    Raises:
        fraudops.registry.RegistryError: no ``@champion`` yet, or ``version`` does not exist.
        fraudops.registry.integrity.IntegrityError: the downloaded files or the card do not
            verify (see :func:`fraudops.registry.load_verified`); nothing is kept.
    """
    registry.configure_mlflow(settings)
    found = registry.resolve_version(registry.client_for(settings), settings.model_name, version)
    key = registry.verifying_key(settings, str(found.version))
    metadata: dict[str, Any] = {**found.tags, "registry_version": str(found.version)}
    with bentoml.models.create(
        settings.model_name,
        module="fraudops.registry",
        labels={"registry_version": str(found.version), "source": "mlflow-registry"},
        metadata=metadata,
    ) as stored:
        local = download_artifacts(
            artifact_uri=f"models:/{settings.model_name}/{found.version}",
            dst_path=stored.path_of("mlflow_model"),
        )
        integrity.verify(settings.model_name, str(found.version), Path(local), found.tags, key)
    return stored


def build_bento(
    settings: Settings, version: str | None = None, build_ctx: Path = Path(".")
) -> tuple[bentoml.Bento, bentoml.Model]:
    """Import a version (default ``@champion``) and build ``services/bentofile.yaml`` with it.

    Args:
        build_ctx: the repository root (holds ``services/`` and ``src/fraudops/``).

    Returns:
        The bento (tag ``fraudops:<generated>``, label ``model_version``) and the bundled model.

    Raises:
        FileNotFoundError: ``build_ctx`` has no ``services/bentofile.yaml``.
        fraudops.registry.RegistryError: see :func:`import_version`.
    """
    bentofile = Path(build_ctx) / BENTOFILE
    if not bentofile.is_file():
        raise FileNotFoundError(f"{bentofile} not found: run from the repository root")
    stored = import_version(settings, version)
    config = yaml.safe_load(bentofile.read_text())
    model_version = str(stored.info.labels["registry_version"])
    with tempfile.TemporaryDirectory() as tmp:
        config["python"]["packages"] = pinned_requirements()
        config["models"] = [str(stored.tag)]
        config["labels"] = {**config.get("labels", {}), "model_version": model_version}
        config["envs"] = [
            *config.get("envs", []),
            {"name": "FRAUDOPS_BUNDLED_MODEL", "value": str(stored.tag)},
            {"name": "FRAUDOPS_MODEL_NAME", "value": settings.model_name},
        ]
        filled = Path(tmp) / "bentofile.yaml"
        filled.write_text(yaml.safe_dump(config, sort_keys=False))
        bento = bentoml.bentos.build_bentofile(str(filled), build_ctx=str(Path(build_ctx)))
    return bento, stored
