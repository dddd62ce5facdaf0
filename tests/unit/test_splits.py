import dataclasses
import datetime as dt

import numpy as np
import pandas as pd
import pytest

from fraudops.data import contract as c
from fraudops.data.splits import SplitError, plan_windows, split
from tests.conftest import make_transactions

pytestmark = pytest.mark.unit


def _times(first: str, last: str) -> pd.Series:
    return pd.Series(pd.to_datetime([first, last]))


def test_default_windows_end_the_test_window_on_the_last_day():
    w = plan_windows(
        _times("2018-04-01 00:01", "2018-09-30 23:59"),
        train_days=28,
        label_delay_days=7,
        test_days=7,
    )
    assert (w.train_start, w.train_end) == (dt.date(2018, 8, 20), dt.date(2018, 9, 17))
    assert (w.test_start, w.test_end) == (dt.date(2018, 9, 24), dt.date(2018, 10, 1))


def test_training_inside_the_warm_up_is_refused_with_dates():
    with pytest.raises(SplitError, match=r"too short.*earliest 2018-05-01"):
        plan_windows(
            _times("2018-04-01", "2018-05-30"), train_days=28, label_delay_days=7, test_days=7
        )


def test_explicit_start_places_training_there_and_refuses_a_test_window_past_the_data():
    w = plan_windows(
        _times("2018-04-01", "2018-09-30"),
        train_days=31,
        label_delay_days=7,
        test_days=7,
        train_start=dt.date(2018, 5, 1),
    )
    assert w.test_start == dt.date(2018, 6, 8)
    with pytest.raises(SplitError, match="ends after"):
        plan_windows(
            _times("2018-04-01", "2018-09-30"),
            train_days=28,
            label_delay_days=7,
            test_days=7,
            train_start=dt.date(2018, 9, 10),
        )


def test_split_leaves_the_delay_gap_out_and_drops_cards_known_compromised():
    rows = [
        ("2018-05-01 10:00", 1, 1, 5.0, 1),  # train: card 1 fraud -> known
        ("2018-05-01 11:00", 2, 1, 5.0, 0),  # train
        ("2018-05-03 10:00", 3, 1, 5.0, 1),  # delay gap, first day: known from test day 2 on
        ("2018-05-05 10:00", 4, 1, 5.0, 1),  # delay gap, last day: known too late for the test
        ("2018-05-06 10:00", 1, 1, 5.0, 0),  # test day 1, card 1 known -> dropped
        ("2018-05-06 11:00", 3, 1, 5.0, 0),  # test day 1, card 3 not yet known -> kept
        ("2018-05-07 11:00", 3, 1, 5.0, 0),  # test day 2, card 3 now known -> dropped
        ("2018-05-07 12:00", 4, 1, 5.0, 1),  # test day 2, card 4 not known -> kept
    ]
    tx = make_transactions(rows)
    w = plan_windows(
        tx[c.TX_DATETIME],
        train_days=2,
        label_delay_days=3,
        test_days=2,
        warmup_days=0,
        train_start=dt.date(2018, 5, 1),
    )
    train, test = split(tx, w)
    assert np.flatnonzero(train).tolist() == [0, 1]
    assert np.flatnonzero(test).tolist() == [5, 7]
    _, all_test = split(tx, w, exclude_known_compromised=False)
    assert np.flatnonzero(all_test).tolist() == [4, 5, 6, 7]


def test_an_analyst_label_known_early_drops_its_card_from_the_next_day():
    rows = [
        ("2018-05-01 10:00", 1, 1, 5.0, 0),  # train
        ("2018-05-05 10:00", 4, 1, 5.0, 1),  # delay gap: chargeback too late for the test...
        ("2018-05-06 10:00", 4, 1, 5.0, 0),  # ...but an analyst confirmed it on 05-05
        ("2018-05-06 11:00", 5, 1, 5.0, 1),  # test day 1, confirmed the same day
        ("2018-05-07 11:00", 5, 1, 5.0, 0),  # test day 2: card 5 now known -> dropped
    ]
    tx = make_transactions(rows)
    tx["KNOWN_AT"] = pd.to_datetime([None, "2018-05-05 14:00", None, "2018-05-06 15:00", None])
    w = plan_windows(
        tx[c.TX_DATETIME],
        train_days=2,
        label_delay_days=3,
        test_days=2,
        warmup_days=0,
        train_start=dt.date(2018, 5, 1),
    )
    by_arrival = dataclasses.replace(c.HANDBOOK_ROLES, known_at="KNOWN_AT")
    _, test = split(tx, w, roles=by_arrival)
    assert np.flatnonzero(test).tolist() == [3]  # card 4 known on test day 1, card 5 on day 2
    _, by_delay = split(tx, w)  # the same rows without arrival times: delay only
    assert np.flatnonzero(by_delay).tolist() == [2, 3, 4]


def test_retrain_window_ends_on_test_end_and_shrinks_training_after_the_warm_up():
    times = _times("2018-04-01", "2018-06-30")
    w = plan_windows(
        times, train_days=28, label_delay_days=7, test_days=7, test_end=dt.date(2018, 6, 2)
    )
    assert (w.test_start, w.test_end) == (dt.date(2018, 5, 27), dt.date(2018, 6, 3))
    assert (w.train_start, w.train_end) == (dt.date(2018, 5, 1), dt.date(2018, 5, 20))
    with pytest.raises(SplitError, match="labelled training days"):
        plan_windows(
            times, train_days=28, label_delay_days=7, test_days=7, test_end=dt.date(2018, 5, 15)
        )
