"""Nothing loads a model version it has not verified: a tampered or planted version is refused.

Attacks run against a real sqlite registry and its artifact store: the model file overwritten
in the store after training, a version planted by someone without the signing key, a card tag
edited after training. The service keeps its champion and says why; batch scoring and the
training gate refuse too; nothing is unpickled.
"""

from __future__ import annotations

from pathlib import Path

import mlflow
import mlflow.sklearn
import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.pipeline import Pipeline

from fraudops import registry
from fraudops.registry.integrity import ARTIFACT_TAG, SIGNATURE_TAG, IntegrityError
from fraudops.serving.batch import score_file
from fraudops.serving.scorer import ChampionRefused, Scorer, load_model_version
from fraudops.settings import Settings
from pipelines.training import run_training
from tests.integration.figures import record

pytestmark = [pytest.mark.integration, pytest.mark.slow]
KEY = "test-only-model-signing-key-0123456789"


@pytest.fixture
def signed(tmp_path, history) -> Settings:
    """A fresh home whose registry has v1 trained, signed and promoted."""
    settings = Settings(home=tmp_path / "home", data_path=history, model_signing_key=KEY)
    assert run_training(settings).promoted
    return settings


def promote_a_second_version(settings: Settings) -> str:
    """Train v2 with a gate that always passes; returns its version."""
    lenient = settings.model_copy(
        update={"train_days": 21, "gate_ap_tolerance": 1.0, "gate_recall_tolerance": 1.0}
    )
    result = run_training(lenient)
    assert result.promoted
    return result.version


def stored_model_file(settings: Settings, version: str) -> Path:
    """The version's pickle in the artifact store (what an attacker with store access edits)."""
    client = registry.client_for(settings)
    model_id = client.get_model_version(settings.model_name, version).source.rsplit("/", 1)[-1]
    (path,) = settings.home.rglob(f"{model_id}/artifacts/model.pkl")
    return path


def version_tags(settings: Settings, version: str) -> dict[str, str]:
    client = registry.client_for(settings)
    return dict(client.get_model_version(settings.model_name, version).tags)


def test_training_seals_every_version_and_the_sealed_version_loads(signed):
    tags = version_tags(signed, "1")
    assert len(tags[ARTIFACT_TAG]) == 64 and len(tags[SIGNATURE_TAG]) == 64
    assert load_model_version(signed, "1", tags).version == "1"


def test_a_champion_overwritten_in_the_store_is_refused_and_the_old_one_keeps_serving(signed):
    scorer = Scorer.start(signed, warm_up=False, poll=False)
    try:
        assert scorer.champion is not None and scorer.champion.version == "1"
        version = promote_a_second_version(signed)
        pickle = stored_model_file(signed, version)
        pickle.write_bytes(pickle.read_bytes() + b"\x00")  # tampered after training

        assert scorer.poll_once() is False
        assert scorer.champion.version == "1"
        assert scorer.counters.reload_failures == 1
        error = scorer.model_info()["last_reload_error"]
        assert f"version {version}: the model files' sha256" in error
        assert "artifact_sha256" in error
    finally:
        scorer.close()
    with pytest.raises(ChampionRefused, match="artifact_sha256"):
        score_file(signed, signed.data_path, signed.home / "scored.parquet")
    assert not (signed.home / "scored.parquet").exists()
    record(
        "integrity_tampered",
        {"loaders_tried": 2, "refused": 2, "served_after": scorer.champion.version},
    )


def test_a_tampered_champion_stops_the_training_gate_before_anything_is_registered(signed):
    pickle = stored_model_file(signed, "1")
    pickle.write_bytes(pickle.read_bytes()[:-1])
    client = registry.client_for(signed)
    before = len(client.search_model_versions(f"name='{signed.model_name}'"))
    with pytest.raises(IntegrityError, match="version 1: the model files' sha256"):
        run_training(signed)
    assert len(client.search_model_versions(f"name='{signed.model_name}'")) == before


def test_a_version_planted_without_the_key_is_refused(signed, tmp_path):
    """The attacker can write to the registry (copies v1's card, seals its own files with a
    correct digest) but does not hold the signing key."""
    attacker = Settings(home=signed.home, data_path=signed.data_path)  # no key
    registry.configure_mlflow(attacker)
    features = version_tags(signed, "1")["features"].split(",")
    planted = Pipeline([("model", DummyClassifier(strategy="constant", constant=0))])
    sample = pd.DataFrame([[0.0] * len(features), [1.0] * len(features)], columns=features)
    planted.fit(sample, [0, 1])
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(planted, name="model", serialization_format="cloudpickle")
    card = {k: v for k, v in version_tags(signed, "1").items() if k != SIGNATURE_TAG}
    card.update(registry.seal(attacker, info.model_uri, card))  # digest only: no key
    client = registry.client_for(attacker)
    version = mlflow.register_model(info.model_uri, attacker.model_name, tags=card).version
    client.set_registered_model_alias(attacker.model_name, registry.CHAMPION, str(version))

    with pytest.raises(ChampionRefused, match=f"version {version} has no signature tag"):
        Scorer.start(signed, warm_up=False, poll=False)  # the service refuses to start on it
    # a forged signature fares no better
    client.set_model_version_tag(attacker.model_name, str(version), SIGNATURE_TAG, "0" * 64)
    with pytest.raises(ChampionRefused, match="signature does not match"):
        load_model_version(signed, str(version), version_tags(signed, str(version)))
    record("integrity_planted", {"planted_versions_tried": 2, "refused": 2})


def test_a_card_tag_edited_after_training_is_refused(signed):
    client = registry.client_for(signed)
    client.set_model_version_tag(signed.model_name, "1", "threshold", "0.999")
    with pytest.raises(ChampionRefused, match="signature does not match"):
        load_model_version(signed, "1", version_tags(signed, "1"))
