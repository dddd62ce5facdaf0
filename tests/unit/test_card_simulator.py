import datetime as dt

import numpy as np
import pandas as pd
import pytest

from fraudops.data.card_simulator import (
    AMOUNT,
    CARD,
    CHANNEL,
    COLUMNS,
    COUNTRIES,
    COUNTRY,
    DEVICE,
    LABEL,
    MCC,
    MERCHANT,
    NO_DEVICE,
    PATTERN,
    PATTERNS,
    TX_ID,
    TX_TIME,
    CardSimulationConfig,
    simulate_card_payments,
)
from fraudops.offline.engine import compute_spec_features
from fraudops.spec import SHIPPED_SPECS, load_spec
from fraudops.spec.data import prepare_events

pytestmark = pytest.mark.unit
# every pattern at least a few times in 45 days of 400 cards
SMALL = dict(
    days=45,
    n_cards=400,
    n_merchants=300,
    merchant_compromise_rate=1 / 1_000,
    card_compromise_rate=1 / 200,
    card_testing_rate=1 / 200,
    cross_border_rate=1 / 200,
    takeover_rate=1 / 200,
)


@pytest.fixture(scope="module")
def history() -> pd.DataFrame:
    return simulate_card_payments(CardSimulationConfig(seed=3, **SMALL))


def test_same_seed_same_history_and_other_seed_other_history():
    a = simulate_card_payments(CardSimulationConfig(seed=1, **SMALL))
    b = simulate_card_payments(CardSimulationConfig(seed=1, **SMALL))
    d = simulate_card_payments(CardSimulationConfig(seed=2, **SMALL))
    pd.testing.assert_frame_equal(a, b)
    assert len(a) != len(d) or not a[AMOUNT].equals(d[AMOUNT])
    assert not set(a[CARD]) & set(d[CARD])  # tokens are random per seed


def test_columns_dtypes_and_string_ids(history):
    assert tuple(history.columns) == COLUMNS
    assert history[TX_TIME].dtype == "datetime64[ns]"
    assert history[AMOUNT].dtype == np.float64 and (history[AMOUNT] >= 0).all()
    assert history[LABEL].dtype == np.int8 and history[PATTERN].dtype == np.int8
    for column in (TX_ID, CARD, MERCHANT, MCC, CHANNEL, COUNTRY, DEVICE):
        assert history[column].map(type).eq(str).all(), column
    assert history[TX_ID].is_unique and history[TX_ID].iloc[0] == "tx-000001"
    assert history[CARD].str.match(r"^tok_[0-9a-f]{12}$").all()
    assert history[MERCHANT].str.match(r"^mer_\d{5}$").all()
    assert history[TX_TIME].is_monotonic_increasing
    start = pd.Timestamp(CardSimulationConfig().start)
    assert history[TX_TIME].min() >= start
    assert history[TX_TIME].max() < start + pd.Timedelta(days=SMALL["days"])
    assert set(history[CHANNEL]) == {"pos", "ecom", "atm"}
    assert set(history[COUNTRY]) <= set(COUNTRIES)
    assert 10 <= history[MCC].nunique() <= 15
    online = history[CHANNEL] == "ecom"
    assert (history.loc[~online, DEVICE] == NO_DEVICE).all()
    assert history.loc[online, DEVICE].str.match(r"^dev_[0-9a-f]{10}$").all()
    assert history[CARD].nunique() <= SMALL["n_cards"]


def test_every_pattern_occurs_and_the_label_is_pattern_above_zero(history):
    assert set(history[PATTERN].unique()) == {0, *PATTERNS}
    assert (history[LABEL] == (history[PATTERN] > 0)).all()
    assert (history.loc[history[PATTERN] == 1, AMOUNT] > 1_000).all()


def test_patterns_look_like_their_description(history):
    testing = history[history[PATTERN] == 4]
    assert (testing[CHANNEL] == "ecom").all() and testing[AMOUNT].between(0.5, 5).all()
    takeover = history[history[PATTERN] == 6]
    assert (takeover[CHANNEL] == "ecom").all() and (takeover[TX_TIME].dt.hour < 6).all()
    genuine_devices = set(history.loc[history[PATTERN] == 0, DEVICE])
    assert not set(takeover[DEVICE]) & genuine_devices  # a device never seen on the card
    home = history[history[PATTERN] == 0].groupby(CARD)[COUNTRY].agg(lambda s: s.mode()[0])
    spikes = history[history[PATTERN] == 5]
    assert (spikes[CHANNEL] != "ecom").all()
    assert (spikes[COUNTRY].to_numpy() != home.reindex(spikes[CARD]).to_numpy()).mean() > 0.9


def test_default_fraud_rate_and_size_are_as_documented():
    frame = simulate_card_payments(CardSimulationConfig(days=30, n_cards=2_000, seed=0))
    assert 40_000 < len(frame) < 70_000  # about 0.9 payments a card a day
    assert 0.005 < frame[LABEL].mean() < 0.015


@pytest.mark.parametrize(
    "bad",
    [dict(days=0), dict(n_cards=0), dict(travel_share=1.5), dict(takeover_rate=-1.0)],
)
def test_bad_config_is_refused(bad):
    with pytest.raises(ValueError):
        CardSimulationConfig(**bad)


def test_the_cards_spec_validates_the_frame_and_builds_its_features(history):
    assert "cards" in SHIPPED_SPECS
    spec = load_spec("cards")
    events = prepare_events(history, spec)
    assert len(events) == len(history)
    features = compute_spec_features(events, spec)
    assert list(features.columns) == spec.feature_names()
    assert len(features) == len(history)
    assert not features.isna().any().any()
    assert spec.categorical_features() == ["mcc", "channel", "country"]
    assert any(f.startswith("card_countries_") for f in features.columns)
    assert features["seconds_since_device_tx"].eq(-1).any()  # new devices show


def test_the_fraud_pattern_is_no_feature_nor_column_of_the_cards_spec():
    spec = load_spec("cards")
    assert PATTERN not in spec.feature_names()
    assert PATTERN not in spec.raw_columns()
    assert LABEL not in spec.feature_names()


def test_start_date_moves_the_history():
    config = CardSimulationConfig(seed=4, start=dt.date(2025, 6, 2), **SMALL)
    frame = simulate_card_payments(config)
    assert frame[TX_TIME].min().date() == dt.date(2025, 6, 2)
