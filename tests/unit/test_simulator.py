import datetime as dt

import pytest

from fraudops.data import contract as c
from fraudops.data.simulator import SCENARIO, SimulationConfig, simulate_transactions

pytestmark = pytest.mark.unit
SMALL = dict(days=40, n_customers=300, n_terminals=600)


def test_same_seed_same_history_and_other_seed_other_history():
    a = simulate_transactions(SimulationConfig(seed=1, **SMALL))
    b = simulate_transactions(SimulationConfig(seed=1, **SMALL))
    d = simulate_transactions(SimulationConfig(seed=2, **SMALL))
    assert a.equals(b)
    assert not a[c.TX_AMOUNT].equals(d[c.TX_AMOUNT])


def test_history_satisfies_the_contract_and_has_all_three_scenarios():
    frame = simulate_transactions(SimulationConfig(seed=3, **SMALL))
    valid = c.validate_transactions(frame)
    assert len(valid) == len(frame)
    assert set(frame[SCENARIO].unique()) == {0, 1, 2, 3}
    assert 0.002 < frame[c.LABEL].mean() < 0.05
    assert (frame.loc[frame[SCENARIO] == 1, c.TX_AMOUNT] > 220).all()


def test_amount_drift_scales_amounts_from_the_drift_date_only():
    start = dt.date(2018, 4, 1)
    drift = dt.date(2018, 4, 21)
    base = simulate_transactions(SimulationConfig(seed=4, start=start, **SMALL))
    drifted = simulate_transactions(
        SimulationConfig(seed=4, start=start, drift_from=drift, amount_scale=2.0, **SMALL)
    )
    before = base[c.TX_DATETIME] < str(drift)
    genuine = base[SCENARIO] != 3
    assert drifted.loc[before, c.TX_AMOUNT].equals(base.loc[before, c.TX_AMOUNT])
    ratio = (
        drifted.loc[~before & genuine, c.TX_AMOUNT].median()
        / base.loc[~before & genuine, c.TX_AMOUNT].median()
    )
    assert ratio == pytest.approx(2.0, rel=0.05)


def test_extra_compromised_terminals_raise_the_fraud_rate_after_the_drift_date():
    drift = dt.date(2018, 4, 21)
    base = simulate_transactions(SimulationConfig(seed=5, **SMALL))
    wave = simulate_transactions(
        SimulationConfig(seed=5, drift_from=drift, extra_compromised_terminals_per_day=5, **SMALL)
    )
    after = lambda f: f.loc[f[c.TX_DATETIME] >= str(drift), c.LABEL].mean()  # noqa: E731
    assert after(wave) > 2 * after(base)


def test_bad_configuration_is_refused():
    with pytest.raises(ValueError, match="amount_scale"):
        SimulationConfig(amount_scale=0)
