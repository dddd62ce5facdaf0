import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fraudops.data import contract as c
from fraudops.offline.handbook import compute_features
from fraudops.offline.reference import handbook_features
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


# Properties over random small histories: several cards and terminals, both labels, amounts
# of any size a payment has; whole-second times (features truncate times to seconds). Dense
# histories put most times on an hour grid over 6 days, so rows often share a second or sit
# exactly one delay or one window apart (or an hour off): where a leak would show.
delays = st.integers(0, 3)
seconds = st.one_of(
    st.integers(0, 6 * 24).map(lambda hour: hour * 3_600),
    st.integers(0, 60 * 86_400),
)
history = st.lists(
    st.tuples(
        seconds,
        st.integers(0, 3),
        st.integers(0, 2),
        st.floats(0, 1e7, allow_nan=False, allow_infinity=False),
        st.integers(0, 1),
    ),
    min_size=1,
    max_size=60,
)
PROPERTY = settings(max_examples=75, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TERMINAL_FEATURES = [
    f for w in c.WINDOWS_DAYS for f in (c.terminal_count_feature(w), c.terminal_risk_feature(w))
]


def _history(rows) -> pd.DataFrame:
    """A validated frame: contract dtypes, sorted by time then transaction id."""
    return c.validate_transactions(_frame(rows))


@PROPERTY
@given(history, delays, st.randoms(use_true_random=False))
def test_features_are_finite_and_in_range_for_any_row_order(rows, delay, rnd):
    frame = _frame(rows)
    order = list(frame.index)
    rnd.shuffle(order)
    f = compute_features(frame.loc[order], label_delay_days=delay)
    assert f.index.equals(pd.Index(order))
    values = f.to_numpy()
    assert np.isfinite(values).all()
    counts = [c.customer_count_feature(w) for w in c.WINDOWS_DAYS]
    assert (f[counts] >= 1).all().all()  # a card window always holds the row itself
    risks = f[[c.terminal_risk_feature(w) for w in c.WINDOWS_DAYS]]
    assert ((risks >= 0) & (risks <= 1)).all().all()
    assert (f[[c.amount_ratio_feature(w) for w in c.WINDOWS_DAYS]] >= 0).all().all()


@PROPERTY
@given(history, history, delays, st.integers(0, 60 * 86_400), st.booleans())
def test_rows_after_t_never_change_features_at_or_before_t(rows, other, delay, cut, replace):
    """Adding rows after t, or changing every column of the rows after t (ids, amounts,
    labels), leaves the features of the rows at or before t as they were."""
    start = pd.Timestamp("2018-04-01")
    frame = _history(rows)
    t = start + pd.Timedelta(seconds=cut)
    past = frame[frame[c.TX_DATETIME] <= t]
    if past.empty:
        return
    expected = compute_features(frame, label_delay_days=delay).loc[past.index]
    # rows strictly after t: random ids, amounts and labels, times shifted past t
    future = make_transactions(
        [(t + pd.Timedelta(seconds=1 + s), cu, te, am, lb) for s, cu, te, am, lb in other]
    ).assign(**{c.TRANSACTION_ID: lambda x: x[c.TRANSACTION_ID] + 10_000})
    kept = past if replace else frame
    changed = pd.concat([kept, future], ignore_index=True)
    actual = compute_features(changed, label_delay_days=delay).iloc[: len(past)]
    np.testing.assert_allclose(actual.to_numpy(), expected.to_numpy(), rtol=1e-12, atol=1e-9)


def _with_probes(rows, data, days: int, offsets) -> tuple[pd.DataFrame, int]:
    """The history plus up to six probe rows on a drawn row's terminal, at the row's time
    + ``days`` days + ``offsets`` seconds; the validated frame and the row's position in it."""
    i = data.draw(st.integers(0, len(rows) - 1), label="row")
    second, _, terminal, _, _ = rows[i]
    probes = data.draw(
        st.lists(st.tuples(offsets, st.integers(0, 3), st.integers(0, 1)), max_size=6),
        label="probes (offset, card, label)",
    )
    extra = [(second + days * 86_400 + o, card, terminal, 1.0, lb) for o, card, lb in probes]
    frame = _history([*rows, *extra])
    return frame, int(np.flatnonzero(frame[c.TRANSACTION_ID] == i)[0])


near = st.one_of(st.sampled_from([-1, 0, 1]), st.integers(-2 * 3_600, 2 * 3_600))


@PROPERTY
@given(history, st.integers(1, 3), st.data())
def test_labels_inside_the_delay_or_later_never_reach_a_row(rows, delay, data):
    """Flipping every label after ``t - delay``, the row's own included, changes no feature
    of the row at t: its terminal windows end ``delay`` days before t. Probe rows on its
    terminal sit within seconds or hours of that boundary."""
    frame, i = _with_probes(rows, data, -delay, near)
    t = frame[c.TX_DATETIME].iloc[i]
    unknown = frame[c.TX_DATETIME] > t - pd.Timedelta(days=delay)
    flipped = frame.assign(**{c.LABEL: np.where(unknown, 1 - frame[c.LABEL], frame[c.LABEL])})
    before = compute_features(frame, label_delay_days=delay).iloc[i]
    after = compute_features(flipped, label_delay_days=delay).iloc[i]
    np.testing.assert_array_equal(after.to_numpy(), before.to_numpy())


@PROPERTY
@given(history, delays, st.data())
def test_labels_after_a_row_never_reach_it_whatever_the_delay(rows, delay, data):
    """Rows after it (later time, or the same second and a later transaction id) keep their
    labels from the row's features, even with no delay. Probes land within seconds of it."""
    frame, i = _with_probes(rows, data, 0, st.integers(0, 2 * 3_600))
    later = np.arange(len(frame)) > i
    flipped = frame.assign(**{c.LABEL: np.where(later, 1 - frame[c.LABEL], frame[c.LABEL])})
    before = compute_features(frame, label_delay_days=delay).iloc[i]
    after = compute_features(flipped, label_delay_days=delay).iloc[i]
    np.testing.assert_array_equal(after.to_numpy(), before.to_numpy())


@PROPERTY
@given(history, delays, st.randoms(use_true_random=False))
def test_a_shuffled_file_gives_the_sorted_file_features(rows, delay, rnd):
    """The offline pipeline sorts by (time, transaction id) at validation: a file's row order
    never changes a feature, same-second ties included."""
    frame = _frame(rows)
    order = list(frame.index)
    rnd.shuffle(order)
    shuffled = c.validate_transactions(frame.loc[order])
    ordered = c.validate_transactions(frame)
    pd.testing.assert_frame_equal(shuffled, ordered)
    pd.testing.assert_frame_equal(
        compute_features(shuffled, label_delay_days=delay),
        compute_features(ordered, label_delay_days=delay),
    )


def test_own_label_never_feeds_terminal_risk_even_without_delay():
    tx = make_transactions(
        [("2018-04-01 10:00", 1, 5, 10.0, 0), ("2018-04-02 10:00", 2, 5, 10.0, 1)]
    )
    assert compute_features(tx, label_delay_days=0)[c.terminal_risk_feature(1)].iloc[1] == 0.0
