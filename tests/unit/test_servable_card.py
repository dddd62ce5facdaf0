"""The service serves only versions of its own dataset spec, with a readable card."""

from __future__ import annotations

import pytest

from fraudops.data import contract as c
from fraudops.offline.handbook import handbook_spec
from fraudops.serving.scorer import ChampionRefused, Scorer, servable_card
from fraudops.settings import Settings
from fraudops.spec import load_spec, spec_sha256

pytestmark = pytest.mark.unit


def tags(**extra: str) -> dict[str, str]:
    return {"threshold": "0.03", "label_delay_days": "7", **extra}


def test_a_version_from_before_specs_is_served_as_the_handbook(tmp_path):
    settings = Settings(home=tmp_path)
    card = servable_card(settings, "1", tags())
    assert card.features == c.FEATURES and card.threshold == 0.03


def test_a_version_of_the_handbook_spec_is_served(tmp_path):
    settings = Settings(home=tmp_path)
    recorded = tags(spec_name="handbook", spec_sha256=spec_sha256(handbook_spec(7)))
    assert servable_card(settings, "2", recorded).spec_name == "handbook"


@pytest.mark.parametrize(
    ("recorded", "words"),
    [
        (tags(spec_name="cards", spec_sha256=spec_sha256(load_spec("cards"))), "'cards'"),
        (tags(label_delay_days="3"), "label delay 3 d"),
        ({"label_delay_days": "7"}, "'threshold' is missing"),
        (tags(threshold="nan"), "'threshold'"),
        (tags(features="TX_AMOUNT,merchant_country"), r"lacks: \['merchant_country'\]"),
    ],
)
def test_a_version_the_service_cannot_serve_is_refused_saying_why(tmp_path, recorded, words):
    with pytest.raises(ChampionRefused, match=words):
        servable_card(Settings(home=tmp_path), "5", recorded)


def test_the_service_starts_on_any_spec_with_the_in_process_store(tmp_path):
    scorer = Scorer.start(Settings(home=tmp_path, dataset_spec="cards"), warm_up=False, poll=False)
    try:
        assert scorer.champion is None and scorer.api.id_field == "tx_id"
    finally:
        scorer.close()
