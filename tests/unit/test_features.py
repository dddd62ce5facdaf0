import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fraudops import contract as c
from fraudops.features import compute_features
from fraudops.handbook import handbook_features
from tests.conftest import make_transactions

pytestmark = pytest.mark.unit


def test_card_windows_count_and_average_the_card_own_recent_transactions():
    tx = make_transactions(
        [
            ("2018-04-01 10:00:00", 1, 7, 10.0, 0),
            ("2018-04-01 12:00:00", 2, 7, 99.0, 0),  # another card: never counted for card 1
            ("2018-04-02 09:00:00", 1, 7, 30.0, 0),  # 23 h after the first: same 1-day window
            ("2018-04-03 10:00:00", 1, 7, 50.0, 0),  # the first is now 2 days old
        ]
    )
    f = compute_features(tx)
    assert f[c.customer_count_feature(1)].tolist() == [1, 1, 2, 1]
    assert f[c.customer_mean_amount_feature(1)].tolist() == [10.0, 99.0, 20.0, 50.0]
    assert f[c.customer_count_feature(7)].tolist() == [1, 1, 2, 3]
    assert f[c.customer_mean_amount_feature(7)].iloc[3] == pytest.approx(30.0)
    assert f[c.amount_ratio_feature(7)].iloc[3] == pytest.approx(50.0 / 30.0)


def test_window_excludes_a_transaction_exactly_one_window_old():
    tx = make_transactions(
        [("2018-04-01 10:00:00", 1, 7, 10.0, 0), ("2018-04-02 10:00:00", 1, 7, 30.0, 0)]
    )
    assert compute_features(tx)[c.customer_count_feature(1)].tolist() == [1, 1]


def test_terminal_risk_ignores_labels_inside_the_label_delay():
    tx = make_transactions(
        [
            ("2018-04-01 10:00", 1, 5, 10.0, 1),  # fraud, 9 days before the last row
            ("2018-04-05 10:00", 2, 5, 10.0, 1),  # fraud, 5 days before: label not known yet
            ("2018-04-10 10:00", 3, 5, 10.0, 0),
        ]
    )
    f = compute_features(tx, label_delay_days=7)
    last = f.iloc[2]
    # window (t-7-1d, t-7d] is empty; (t-7-7d, t-7d] holds only the first fraud.
    assert last[c.terminal_count_feature(1)] == 0 and last[c.terminal_risk_feature(1)] == 0
    assert last[c.terminal_count_feature(7)] == 1 and last[c.terminal_risk_feature(7)] == 1.0
    assert last[c.terminal_count_feature(30)] == 1  # the 5-day-old fraud is still unknown


def test_weekend_and_night_flags_follow_the_handbook():
    tx = make_transactions(
        [("2018-04-07 06:59", 1, 1, 1.0, 0), ("2018-04-09 07:00", 1, 1, 1.0, 0)]  # Sat, Mon
    )
    f = compute_features(tx)
    assert f[c.TX_DURING_WEEKEND].tolist() == [1.0, 0.0]
    assert f[c.TX_DURING_NIGHT].tolist() == [1.0, 0.0]


def test_output_keeps_input_order_and_index_for_unsorted_input(small_history):
    sample = small_history.sample(2000, random_state=1)
    f = compute_features(sample)
    assert f.index.equals(sample.index)
    expected = compute_features(small_history).loc[sample.index]
    # the sample lacks the other rows, so only row-local features must agree
    assert np.array_equal(f[c.TX_AMOUNT], expected[c.TX_AMOUNT])
    assert list(f.columns) == list(c.FEATURES)


def test_features_equal_the_handbook_reference_implementation(small_history):
    head = small_history[small_history[c.TX_DATETIME] < "2018-05-01"].reset_index(drop=True)
    ours = compute_features(head, label_delay_days=7)[list(c.HANDBOOK_FEATURES)]
    reference = handbook_features(head, delay=7)
    np.testing.assert_allclose(ours.to_numpy(), reference.to_numpy(), rtol=0, atol=1e-9)


def test_negative_label_delay_is_rejected(small_history):
    with pytest.raises(ValueError, match="label_delay_days"):
        compute_features(small_history.head(10), label_delay_days=-1)


transactions = st.lists(
    st.tuples(
        st.integers(0, 60 * 86_400),  # seconds since start
        st.integers(0, 4),  # card
        st.integers(0, 3),  # terminal
        st.floats(0, 5_000, allow_nan=False, allow_infinity=False),
        st.integers(0, 1),
    ),
    min_size=1,
    max_size=60,
)


def _frame(rows):
    start = pd.Timestamp("2018-04-01")
    return make_transactions(
        [(start + pd.Timedelta(seconds=s), cu, te, am, lb) for s, cu, te, am, lb in rows]
    ).sort_values(c.TX_DATETIME, kind="stable")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(transactions)
def test_valid_input_gives_finite_features(rows):
    f = compute_features(_frame(rows))
    assert np.isfinite(f.to_numpy()).all()
    assert (f[[c.terminal_risk_feature(w) for w in c.WINDOWS_DAYS]] >= 0).all().all()
    assert (f[[c.terminal_risk_feature(w) for w in c.WINDOWS_DAYS]] <= 1).all().all()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(transactions, st.integers(0, 59))
def test_features_never_use_future_rows_or_labels_inside_the_delay(rows, cut_day):
    frame = _frame(rows).reset_index(drop=True)
    cut = pd.Timestamp("2018-04-01") + pd.Timedelta(days=cut_day)
    past = frame[frame[c.TX_DATETIME] <= cut]
    if past.empty:
        return
    full = compute_features(frame).loc[past.index]
    # Labels of the last 7 days before the cut are hidden: features must not change.
    hidden = past.copy()
    recent = hidden[c.TX_DATETIME] > cut - pd.Timedelta(days=7)
    hidden.loc[recent, c.LABEL] = 1 - hidden.loc[recent, c.LABEL]
    last = past.index[-1]
    np.testing.assert_allclose(compute_features(past).loc[past.index], full, rtol=0, atol=1e-9)
    np.testing.assert_allclose(
        compute_features(hidden, label_delay_days=7).loc[last],
        full.loc[last],
        rtol=0,
        atol=1e-9,
    )
