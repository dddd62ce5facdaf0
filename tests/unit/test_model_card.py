"""The model card writes a version's tags and reads them back, refusing unusable ones."""

from __future__ import annotations

import pytest

from fraudops.data import contract as c
from fraudops.registry.card import ModelCard, ModelCardError

pytestmark = pytest.mark.unit

CARD = ModelCard(
    features=("amount", "channel"),
    threshold=0.0342,
    label_delay_days=7,
    model_kind="hist_gradient_boosting",
    spec_name="cards",
    spec_sha256="ab" * 32,
    windows={"train_start": "2024-01-31", "test_end": "2024-03-31"},
    data_sha256="cd" * 32,
    git_commit="0123abc",
    model_params={"learning_rate": "0.05"},
    metrics={"average_precision": 0.69, "n_rows": 1000.0},
    feature_means={"amount": 52.25},
)


def test_a_card_survives_its_tags():
    tags = CARD.to_tags()
    assert all(isinstance(v, str) for v in tags.values())
    assert tags["holdout.average_precision"] == "0.69" and tags["spec_name"] == "cards"
    assert ModelCard.from_tags(tags) == CARD


def test_feature_means_are_one_short_list_in_feature_order_without_categories():
    card = ModelCard(
        features=("amount", "channel", "card_tx_1h"),
        threshold=0.5,
        label_delay_days=7,
        feature_means={"amount": 52.123456, "card_tx_1h": 0.4},
    )
    assert card.to_tags()["feature_means"] == "[52.12,null,0.4]"
    assert ModelCard.from_tags(card.to_tags()).feature_means == {"amount": 52.12, "card_tx_1h": 0.4}


@pytest.mark.parametrize("text", ["[1.0]", "{}", '[1, "x"]', "not json"])
def test_an_unreadable_feature_means_tag_is_refused_by_name(text):
    with pytest.raises(ModelCardError, match="tag 'feature_means'"):
        ModelCard.from_tags({**CARD.to_tags(), "feature_means": text})


def test_a_version_from_before_specs_reads_as_the_handbook():
    card = ModelCard.from_tags({"threshold": "0.5", "label_delay_days": "7"})
    assert card.features == c.FEATURES and card.spec_name == "handbook"
    assert card.spec_sha256 is None


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"threshold": None}, "'threshold' is missing"),
        ({"threshold": "nan"}, "'threshold'"),
        ({"threshold": "1.5"}, "'threshold'"),
        ({"threshold": "0"}, r"not a score in \(0, 1\)"),
        ({"threshold": "1.0"}, "alerts on every transaction, 1 on none"),
        ({"threshold": "high"}, "not a number"),
        ({"label_delay_days": None}, "'label_delay_days' is missing"),
        ({"label_delay_days": "-1"}, "negative"),
        ({"model_params": "{oops"}, "'model_params'"),
    ],
)
def test_unusable_tags_are_refused_naming_the_tag(change, words):
    tags = CARD.to_tags()
    for key, value in change.items():
        if value is None:
            del tags[key]
        else:
            tags[key] = value
    with pytest.raises(ModelCardError, match=words):
        ModelCard.from_tags(tags)
