import numpy as np
import pandas as pd
import pytest

from fraudops.data import contract as c
from fraudops.drift.report import (
    MIN_ROWS,
    MONITORED,
    SCORE,
    DriftInputError,
    allocate_by_day,
    reference_sample,
    run_drift,
    sample_by_day,
)
from fraudops.offline.handbook import compute_features

pytestmark = pytest.mark.unit


def daily(per_day: list[int], start: str = "2018-05-01", seed: int = 0) -> pd.DataFrame:
    """Monitored columns (uniform noise) and TX_DATETIME, ``per_day[i]`` rows on day i."""
    rng = np.random.default_rng(seed)
    stamps = [
        pd.Timestamp(start) + pd.Timedelta(days=day, minutes=int(m))
        for day, rows in enumerate(per_day)
        for m in rng.integers(0, 1440, rows)
    ]
    frame = pd.DataFrame(rng.random((len(stamps), len(MONITORED))), columns=list(MONITORED))
    return frame.assign(**{c.TX_DATETIME: stamps})


@pytest.fixture
def no_evidently(monkeypatch):
    """Evidently's ``Report.run`` fails the test if it is called."""
    from evidently import Report

    def called(*_args, **_kwargs):
        pytest.fail("Evidently's Report.run was called")

    monkeypatch.setattr(Report, "run", called)


@pytest.fixture(scope="module")
def windows(small_history):
    features = compute_features(small_history)
    frame = features.assign(
        **{
            SCORE: np.random.default_rng(0).random(len(features)),
            c.TX_DATETIME: small_history[c.TX_DATETIME],
        }
    )
    days = small_history[c.TX_DATETIME]
    reference = frame[(days >= "2018-05-01") & (days < "2018-05-29")]
    current = frame[days >= "2018-06-01"]
    return reference, current


def test_same_process_gives_a_clean_window(windows):
    reference, current = windows
    _, figures = run_drift(reference, current, threshold=0.5)
    assert figures.drift_share < 0.3
    assert set(figures.column_scores) == set(MONITORED)


def test_shifted_amounts_drift_the_amount_columns(windows):
    reference, current = windows
    shifted = current.copy()
    for column in [c.TX_AMOUNT, *(c.customer_mean_amount_feature(w) for w in c.WINDOWS_DAYS)]:
        shifted[column] = shifted[column] * 3
    _, figures = run_drift(reference, shifted, threshold=0.5)
    assert {c.TX_AMOUNT, c.customer_mean_amount_feature(30)} <= set(figures.drifted_columns)


def test_missing_columns_and_empty_windows_are_named(windows):
    reference, current = windows
    with pytest.raises(DriftInputError, match=r"current window lacks column.*TX_AMOUNT"):
        run_drift(reference, current.drop(columns=[c.TX_AMOUNT]), threshold=0.5)
    with pytest.raises(DriftInputError, match="reference window has no rows"):
        run_drift(reference.iloc[0:0], current, threshold=0.5)


def test_day_stratified_sample_keeps_every_day_share():
    frame = pd.DataFrame({"t": pd.date_range("2018-06-01", periods=10_000, freq="min")})
    sample = sample_by_day(frame, "t", 1_000)
    per_day = sample["t"].dt.date.value_counts(normalize=True).sort_index()
    full = frame["t"].dt.date.value_counts(normalize=True).sort_index()
    assert len(sample) == 1_000 and sample.index.is_unique
    np.testing.assert_allclose(per_day.to_numpy(), full.to_numpy(), atol=0.002)


@pytest.mark.parametrize(
    ("per_day", "total"),
    [
        ([3] * 30, 45),  # small daily volume: the old share rounded each day to 0 or 2
        ([3] * 30, 30),
        ([1] * 29 + [1_000], 50),  # one busy day must not crowd out the quiet ones
        ([2, 7, 1, 40, 3, 1, 12], 20),
    ],
)
def test_small_daily_volumes_keep_every_day_and_the_exact_total(per_day, total):
    frame = daily(per_day)
    sample = sample_by_day(frame, c.TX_DATETIME, total)
    counts = sample[c.TX_DATETIME].dt.floor("D").value_counts()
    assert len(sample) == total and sample.index.is_unique
    assert len(counts) == len(per_day)  # no day left empty
    assert (sample[list(MONITORED)].notna().sum() == total).all()  # no empty column
    # proportional: each day gets 1 + its share of the other rows, rounded down or up
    spare = total - len(per_day)
    quota = spare * (np.array(per_day) - 1) / (sum(per_day) - len(per_day))
    got = counts.sort_index().to_numpy() - 1
    assert ((got >= np.floor(quota)) & (got <= np.ceil(quota))).all()


def test_fewer_rows_than_days_gives_the_exact_total_one_row_per_day():
    frame = daily([3] * 30)  # 30 days × 3 rows, a sample of 20
    sample = sample_by_day(frame, c.TX_DATETIME, 20)
    counts = sample[c.TX_DATETIME].dt.floor("D").value_counts()
    assert len(sample) == 20 and len(counts) == 20 and (counts == 1).all()
    assert (sample[list(MONITORED)].notna().sum() == 20).all()


def test_allocation_is_exact_bounded_and_deterministic():
    rng = np.random.default_rng(1)
    for _ in range(300):
        sizes = rng.integers(1, rng.choice([3, 50, 5_000]), rng.integers(1, 60))
        total = int(rng.integers(0, sizes.sum() + 5))
        alloc = allocate_by_day(sizes, total, seed=3)
        assert alloc.sum() == min(total, sizes.sum())
        assert ((alloc >= 0) & (alloc <= sizes)).all()
        if total >= len(sizes):
            assert (alloc >= 1).all()
        np.testing.assert_array_equal(alloc, allocate_by_day(sizes, total, seed=3))
    with pytest.raises(ValueError, match="total must be >= 0"):
        allocate_by_day(np.array([3, 3]), -1)


def test_sample_is_deterministic_for_a_seed():
    frame = daily([3] * 30)
    first = sample_by_day(frame, c.TX_DATETIME, 40, seed=5)
    pd.testing.assert_frame_equal(first, sample_by_day(frame, c.TX_DATETIME, 40, seed=5))
    assert not first.index.equals(sample_by_day(frame, c.TX_DATETIME, 40, seed=6).index)


def test_reference_that_used_to_round_to_no_rows_now_compares():
    # 90 training days × 50 rows against 40 current rows: the old frac-per-day sample kept
    # round(50 × 40 / 4,500) = 0 rows of every day, and Evidently failed on an empty column.
    reference, current = daily([50] * 90), daily([8] * 5, start="2018-08-01", seed=1)
    assert round(50 * len(current) / len(reference)) == 0
    _, figures = run_drift(reference, current, threshold=0.5)
    assert figures.reference_rows == figures.current_rows == 40
    assert set(figures.column_scores) == set(MONITORED)


@pytest.mark.parametrize(
    ("current_rows", "reference_rows"), [(MIN_ROWS - 1, 500), (500, MIN_ROWS - 1), (1, 1)]
)
def test_too_few_rows_end_with_not_enough_rows_before_evidently(
    no_evidently, current_rows, reference_rows
):
    reference = daily([1] * reference_rows)
    current = daily([1] * current_rows, start="2018-08-01")
    expected = (
        rf"not enough rows to compare: current {current_rows}, reference {reference_rows}, "
        rf"at least {MIN_ROWS} needed"
    )
    with pytest.raises(DriftInputError, match=expected):
        run_drift(reference, current, threshold=0.5)


@pytest.mark.parametrize("window", ["reference", "current"])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_a_column_without_finite_values_is_named_before_evidently(no_evidently, window, bad):
    frames = {"reference": daily([20] * 5), "current": daily([20] * 5, start="2018-08-01")}
    frames[window][c.TX_AMOUNT] = bad
    with pytest.raises(
        DriftInputError,
        match=rf"not enough rows: column\(s\) \['TX_AMOUNT'\] have no finite value in the 100 "
        rf"{window} rows",
    ):
        run_drift(frames["reference"], frames["current"], threshold=0.5)


def test_the_evidently_guard_does_catch_a_call(no_evidently):
    # the guard of the tests above is live: enough rows reach Report.run, and it fails
    with pytest.raises(pytest.fail.Exception, match=r"Report\.run was called"):
        run_drift(daily([20] * 5), daily([20] * 5, start="2018-08-01"), threshold=0.5)


def test_small_daily_training_volume_gives_a_full_reference():
    frame = daily([2] * 60)
    reference = reference_sample(
        frame[list(c.FEATURES)], frame[c.TX_DATETIME], lambda f: np.zeros(len(f)), max_rows=90
    )
    assert len(reference) == 90
    assert reference[c.TX_DATETIME].dt.floor("D").nunique() == 60


def test_reference_is_a_bounded_day_sample_scored_by_the_model(small_history):
    features = compute_features(small_history)
    scored_rows = []

    def score(frame):
        scored_rows.append(len(frame))
        assert list(frame.columns) == list(c.FEATURES)
        return np.full(len(frame), 0.25)

    reference = reference_sample(features, small_history[c.TX_DATETIME], score, max_rows=3_000)
    assert len(reference) == 3_000 and scored_rows == [3_000]
    assert set(MONITORED) | {c.TX_DATETIME} <= set(reference.columns)
    assert (reference[SCORE] == 0.25).all()
