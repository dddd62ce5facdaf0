"""A model's files and card verify only as training sealed them (digest, HMAC signature)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from fraudops import registry
from fraudops.registry.card import ModelCard
from fraudops.registry.integrity import (
    ARTIFACT_TAG,
    SIGNATURE_TAG,
    IntegrityError,
    artifact_digest,
    sign,
    verify,
)
from fraudops.settings import Settings

pytestmark = pytest.mark.unit
KEY = b"k" * 32
CARD = ModelCard(features=("TX_AMOUNT", "TX_DURING_NIGHT"), threshold=0.03, label_delay_days=7)


@pytest.fixture
def model_dir(tmp_path):
    root = tmp_path / "model"
    (root / "sub").mkdir(parents=True)
    (root / "MLmodel").write_text("flavors: {}\n")
    (root / "model.pkl").write_bytes(b"\x80\x05pickled")
    (root / "sub" / "extra.txt").write_text("x")
    return root


def sealed_tags(root, key=KEY, name="fraud-detector"):
    tags = CARD.to_tags()
    digest = artifact_digest(root)
    return {**tags, ARTIFACT_TAG: digest, SIGNATURE_TAG: sign(key, name, digest, tags)}


def test_the_digest_is_stable_and_ignores_mlflows_download_metadata(model_dir):
    before = artifact_digest(model_dir)
    (model_dir / "registered_model_meta").write_text("model_name: x\nmodel_version: 9\n")
    assert artifact_digest(model_dir) == before


@pytest.mark.parametrize(
    "change",
    [
        lambda root: (root / "model.pkl").write_bytes(b"\x80\x05pickleD"),
        lambda root: (root / "planted.py").write_text("import os"),
        lambda root: (root / "sub" / "extra.txt").rename(root / "sub" / "moved.txt"),
        lambda root: (root / "sub" / "extra.txt").rename(root / "extra.txt"),
        lambda root: (root / "sub" / "extra.txt").unlink(),
    ],
    ids=["byte changed", "file added", "file renamed", "file moved", "file removed"],
)
def test_any_change_to_the_files_changes_the_digest(model_dir, change):
    before = artifact_digest(model_dir)
    change(model_dir)
    assert artifact_digest(model_dir) != before


def test_a_symbolic_link_or_an_empty_directory_is_refused(model_dir, tmp_path):
    (model_dir / "link").symlink_to(model_dir / "model.pkl")
    with pytest.raises(IntegrityError, match="symbolic link"):
        artifact_digest(model_dir)
    (tmp_path / "empty").mkdir()
    with pytest.raises(IntegrityError, match="holds no file"):
        artifact_digest(tmp_path / "empty")


def test_a_sealed_version_verifies_with_and_without_the_key(model_dir):
    tags = sealed_tags(model_dir)
    assert verify("fraud-detector", "3", model_dir, tags, KEY) == tags[ARTIFACT_TAG]
    assert verify("fraud-detector", "3", model_dir, tags, None) == tags[ARTIFACT_TAG]


def test_tags_outside_the_card_may_change_after_training(model_dir):
    tags = {**sealed_tags(model_dir), "gate": "promoted", "gate_reasons": "ap ok"}
    verify("fraud-detector", "3", model_dir, tags, KEY)


def test_changed_files_are_refused_naming_the_tag(model_dir):
    tags = sealed_tags(model_dir)
    (model_dir / "model.pkl").write_bytes(b"\x80\x05evil")
    with pytest.raises(IntegrityError, match=r"version 3: the model files' sha256 .* artifact_sha"):
        verify("fraud-detector", "3", model_dir, tags, None)


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        ({"threshold": "0.99"}, "does not match"),
        ({"features": "TX_AMOUNT"}, "does not match"),
        ({"holdout.average_precision": "0.99"}, "does not match"),
        ({SIGNATURE_TAG: ""}, "no signature tag"),
        ({ARTIFACT_TAG: ""}, "no artifact_sha256 tag"),
    ],
)
def test_edited_card_tags_or_a_missing_seal_are_refused_under_the_key(model_dir, edit, words):
    tags = {**sealed_tags(model_dir), **edit}
    with pytest.raises(IntegrityError, match=words):
        verify("fraud-detector", "3", model_dir, tags, KEY)


def test_a_version_signed_with_another_key_or_for_another_model_is_refused(model_dir):
    with pytest.raises(IntegrityError, match="does not match"):
        verify("fraud-detector", "3", model_dir, sealed_tags(model_dir, key=b"o" * 32), KEY)
    with pytest.raises(IntegrityError, match="does not match"):
        verify("fraud-detector", "3", model_dir, sealed_tags(model_dir, name="other"), KEY)


def test_a_planted_version_whose_digest_matches_its_own_files_has_no_valid_signature(model_dir):
    (model_dir / "model.pkl").write_bytes(b"\x80\x05attacker's model")
    planted = {**CARD.to_tags(), ARTIFACT_TAG: artifact_digest(model_dir), SIGNATURE_TAG: "0" * 64}
    verify("fraud-detector", "4", model_dir, planted, None)  # a digest alone proves nothing
    with pytest.raises(IntegrityError, match="does not match"):
        verify("fraud-detector", "4", model_dir, planted, KEY)


def test_a_short_signing_key_is_refused_by_the_settings_and_by_sign(tmp_path):
    with pytest.raises(ValidationError, match="model_signing_key"):
        Settings(home=tmp_path, model_signing_key="change-me")
    with pytest.raises(IntegrityError, match="at least 32"):
        sign(b"short", "fraud-detector", "0" * 64, CARD.to_tags())
    assert Settings(home=tmp_path, model_signing_key="x" * 32).signing_key == b"x" * 32


def test_a_remote_registry_without_a_signing_key_loads_nothing(tmp_path):
    settings = Settings(home=tmp_path, tracking_uri="http://127.0.0.1:9")  # never contacted
    with pytest.raises(IntegrityError, match="FRAUDOPS_MODEL_SIGNING_KEY is not set"):
        registry.load_verified(settings, "1", {})
