"""Feature phrases: every model input of a spec is said in words from its definition."""

from __future__ import annotations

import pytest

from fraudops.spec import load_spec
from fraudops.spec.describe import feature_phrases

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("name", ["handbook", "cards"])
def test_every_feature_of_a_shipped_spec_has_a_phrase_in_model_input_order(name):
    spec = load_spec(name)
    assert list(feature_phrases(spec)) == spec.feature_names()


@pytest.mark.parametrize(
    ("feature", "value", "usual", "said"),
    [
        ("card_tx_1h", 12.0, 0.4, "12 events of this card in the last 1 hour (usual: 0.4)"),
        (
            "merchant_fraud_rate_30d",
            0.25,
            None,
            "25% of this merchant's labelled events in the 30 days ending 7 days ago were fraud",
        ),
        (
            "card_amount_ratio_1d",
            3.5,
            1.02,
            "amount 3.5× this card's average in the last 1 day (usual: 1.02)",
        ),
        ("card_countries_7d", 3.0, None, "3 distinct country for this card in the last 7 days"),
        (
            "card_max_amount_30d",
            1234.6,
            None,
            "largest amount 1,235 for this card in the last 30 days",
        ),
        (
            "seconds_since_card_tx",
            5400.0,
            86_400.0,
            "1.5 hours since this card's previous event (usual: 1 day)",
        ),
        (
            "seconds_since_device_tx",
            -1.0,
            None,
            "no earlier event since this device's previous event",
        ),
        ("night", 1.0, 0.12, "at night (0–5 h): yes (usual: 12% of events)"),
        ("hour", 3.0, None, "at hour 3 of the day"),
        ("channel", "ecom", None, "channel 'ecom'"),
        ("amount", 80.0, 52.25, "amount 80 (usual: 52.2)"),
    ],
)
def test_a_phrase_says_the_value_and_the_usual_one(feature, value, usual, said):
    assert feature_phrases(load_spec("cards"))[feature].say(value, usual) == said
