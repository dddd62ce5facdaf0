"""The champion's columns from a real MLflow registry: its features tag and stored spec."""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from fraudops import registry
from fraudops.drift import monitor
from fraudops.drift.monitor import MonitorInputError
from fraudops.drift.report import HANDBOOK_COLUMNS, SCORE, DriftColumns
from fraudops.settings import Settings
from fraudops.spec import load_spec, spec_sha256, spec_yaml
from monitoring.flow import run_monitoring
from tests.unit.test_drift_columns import cards_frame, handbook_log, write_log

pytestmark = pytest.mark.integration


def register(settings: Settings, reference: pd.DataFrame, tags: dict[str, str], spec: str | None):
    """A run holding ``reference`` (and ``spec`` as its spec artifact), registered and made
    ``@champion`` with ``tags``, as training does."""
    experiment = registry.configure_mlflow(settings)
    client = registry.client_for(settings)
    with mlflow.start_run(experiment_id=experiment) as run:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "reference.parquet"
            reference.to_parquet(path, index=False)
            mlflow.log_artifact(str(path), artifact_path="reference")
        if spec is not None:
            mlflow.log_text(spec, registry.SPEC_ARTIFACT)
    with contextlib.suppress(mlflow.exceptions.MlflowException):  # registered earlier
        client.create_registered_model(settings.model_name)
    made = client.create_model_version(
        settings.model_name, f"{run.info.artifact_uri}/reference", run.info.run_id, tags=tags
    )
    client.set_registered_model_alias(settings.model_name, registry.CHAMPION, made.version)
    return made.version


def test_champion_columns_come_from_the_version_in_the_registry(tmp_path, no_evidently):
    settings = Settings(home=tmp_path / "home")
    cards = load_spec("cards")
    # a cards-like user spec (another name and hash: no shipped fallback) in the run
    spec = cards.model_copy(update={"name": "my-cards"})
    tags = {
        "features": ",".join(spec.feature_names()),
        "spec_name": spec.name,
        "spec_sha256": spec_sha256(spec),
        "threshold": "0.4",
        "label_delay_days": "7",
    }
    cards_reference = cards_frame(1_000).assign(**{SCORE: 0.3})
    v1 = register(settings, cards_reference, tags, spec_yaml(spec))
    champion = monitor.load_champion_reference(settings)
    assert champion.version == str(v1)
    assert champion.columns == DriftColumns.from_spec(spec)
    assert champion.columns.features == tuple(cards.feature_names())
    assert champion.columns.spec_name == "my-cards"
    assert champion.columns.categorical == ("mcc", "channel", "country")
    assert len(champion.columns.numerical) == 41 and len(champion.columns.features) == 43

    # the service logs the handbook's features: the window is refused before Evidently
    write_log(settings, handbook_log())
    with pytest.raises(MonitorInputError, match=r"lacks column\(s\) \['amount', .*'mcc'"):
        run_monitoring(settings, retrain=lambda *_: pytest.fail("retrained"))
    assert monitor.read_decisions(settings) == []

    # the same spec tags without the artifact: its categories are unknown, so it is refused
    v2 = register(settings, cards_reference, tags, None)
    with pytest.raises(MonitorInputError, match=rf"v{v2} was trained .* 'my-cards'"):
        monitor.load_champion_reference(settings)

    # an older version: no spec tags, no artifact, the handbook's 18 features
    handbook_reference = handbook_log(1_000).drop(columns=["transaction_id", "tx_datetime"])
    v3 = register(settings, handbook_reference, {"threshold": "0.4", "label_delay_days": "7"}, None)
    champion = monitor.load_champion_reference(settings)
    assert champion.version == str(v3) and champion.columns == HANDBOOK_COLUMNS
    assert len(champion.columns.features) == 18 and champion.columns.categorical == ()


@pytest.fixture
def no_evidently(monkeypatch):
    from evidently import Report

    monkeypatch.setattr(Report, "run", lambda *_a, **_k: pytest.fail("Evidently ran"))
