"""Canary routing is sticky by entity and routes the configured share within a binomial bound."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fraudops.serving.routing import bucket, canary_rows, routing_column
from fraudops.spec import load_spec

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("share", [0.05, 0.1, 0.5])
def test_the_routed_share_of_entities_is_within_four_binomial_deviations(share):
    cards = 20_000
    routed = canary_rows([{"card": i} for i in range(cards)], "card", share, "7")
    bound = 4 * math.sqrt(share * (1 - share) / cards)
    assert abs(routed.mean() - share) < bound


def test_routing_is_sticky_for_an_entity_and_changes_with_the_challenger_version():
    events = [{"card": i % 500, "amount": i} for i in range(5_000)]
    first = canary_rows(events, "card", 0.3, "7")
    by_card = {}
    for event, routed in zip(events, first, strict=True):
        assert by_card.setdefault(event["card"], routed) == routed  # every event of a card
    assert np.array_equal(first, canary_rows(events, "card", 0.3, "7"))
    other = canary_rows(events, "card", 0.3, "8")
    assert not np.array_equal(first, other)


def test_text_and_integer_keys_spread_and_no_share_routes_nothing():
    assert 0.0 <= bucket("card-1", "3") < 1.0
    assert bucket(1, "3") != bucket("1", "3")
    assert not canary_rows([{"card": 1}], "card", 0.0, "3").any()


def test_the_shipped_specs_route_by_their_ranked_entity():
    assert routing_column(load_spec("handbook")) == "CUSTOMER_ID"
    cards = load_spec("cards")
    assert routing_column(cards) == cards.roles().entity
