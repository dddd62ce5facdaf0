"""The offline engine against a row-by-row reference, for every aggregation kind."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fraudops.offline.engine import compute_spec_features
from fraudops.offline.windows import SumOverflowError
from fraudops.spec.model import DatasetSpec

pytestmark = pytest.mark.unit

SPEC = DatasetSpec.model_validate(
    {
        "name": "every-kind",
        "event_id": {"column": "id"},
        "event_time": {"column": "ts"},
        "label": {"column": "y", "delay": "1h"},
        "entities": [{"name": "card", "column": "card"}, {"name": "shop", "column": "shop"}],
        "numeric": [{"column": "amt", "min": 0, "max": 100}],
        "categorical": [{"column": "channel"}],
        "calendar": [
            {"name": "hour", "kind": "hour"},
            {"name": "late", "kind": "night", "hours": [22, 5]},
        ],
        "aggregations": [
            {
                "entity": "card",
                "windows": ["10m", "1h", "1d"],
                "features": [
                    {"name": "n_{window}", "kind": "count"},
                    {"name": "sum_{window}", "kind": "sum", "of": "amt"},
                    {"name": "mean_{window}", "kind": "mean", "of": "amt"},
                    {"name": "max_{window}", "kind": "max", "of": "amt"},
                    {"name": "ratio_{window}", "kind": "ratio_to_mean", "of": "amt"},
                    {"name": "shops_{window}", "kind": "distinct_count", "of": "shop"},
                ],
            },
            {
                "entity": "shop",
                "windows": ["6h"],
                "lag": "label_delay",
                "features": [
                    {"name": "shop_n", "kind": "count"},
                    {"name": "shop_risk", "kind": "label_rate"},
                    {"name": "shop_max", "kind": "max", "of": "amt"},
                    {"name": "shop_cards", "kind": "distinct_count", "of": "card"},
                ],
            },
        ],
        "time_since_previous": [{"name": "card_gap", "entity": "card"}],
    }
)


def reference(events: pd.DataFrame, spec: DatasetSpec) -> pd.DataFrame:
    """Row by row, straight from the definitions (slow, obviously right)."""
    seconds = events["ts"].to_numpy().astype("datetime64[s]").astype(np.int64)
    position = np.arange(len(events))
    rows = []
    for i in range(len(events)):
        t = seconds[i]
        row: dict[str, float] = {}
        for block in spec.aggregations:
            column = spec.entity(block.entity).column
            same = events[column].to_numpy() == events[column].to_numpy()[i]
            lag = spec.label.delay if block.lag == "label_delay" else 0
            for name, width, feature in block.names():
                if lag == 0:
                    earlier = (seconds < t) | ((seconds == t) & (position <= i))
                    inside = same & (seconds > t - width) & earlier
                else:
                    inside = same & (seconds > t - lag - width) & (seconds <= t - lag)
                window = events[inside]
                n = len(window)
                amounts = window["amt"]
                mean = amounts.sum() / n if n else 0.0
                row[name] = {
                    "count": n,
                    "sum": amounts.sum(),
                    "mean": mean,
                    "max": amounts.max() if n else 0.0,
                    "ratio_to_mean": events["amt"].iloc[i] / mean if mean > 0 else 1.0,
                    "distinct_count": window[feature.of].nunique() if feature.of else 0,
                    "label_rate": window["y"].mean() if n else 0.0,
                }[feature.kind]
        same_card = events["card"].to_numpy() == events["card"].iloc[i]
        before = same_card & ((seconds < t) | ((seconds == t) & (position < i)))
        row["card_gap"] = t - seconds[before].max() if before.any() else -1
        rows.append(row)
    return pd.DataFrame(rows, index=events.index)


events_strategy = st.integers(min_value=1, max_value=60).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(0, 2 * 86_400), min_size=n, max_size=n),
        st.lists(st.sampled_from(["a", "b", "c"]), min_size=n, max_size=n),
        st.lists(st.integers(0, 4), min_size=n, max_size=n),
        st.lists(st.integers(0, 10_000), min_size=n, max_size=n),
        st.lists(st.integers(0, 1), min_size=n, max_size=n),
    )
)


def frame(seconds, cards, shops, cents, labels) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": np.arange(len(seconds)),
            "ts": pd.Timestamp("2024-03-01") + pd.to_timedelta(seconds, unit="s"),
            "card": cards,
            "shop": shops,
            "amt": np.asarray(cents) / 100,
            "channel": ["pos"] * len(seconds),
            "y": labels,
        }
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events_strategy)
def test_every_aggregation_kind_equals_the_row_by_row_definition(data):
    events = frame(*data)
    got = compute_spec_features(events, SPEC)
    expected = reference(events, SPEC)
    for column in expected.columns:
        np.testing.assert_allclose(
            got[column].to_numpy(dtype=float),
            expected[column].to_numpy(dtype=float),
            rtol=0,
            atol=1e-9,
            err_msg=column,
        )


def test_input_order_does_not_change_any_feature_of_a_row():
    rng = np.random.default_rng(3)
    n = 2_000
    events = frame(
        rng.choice(3 * 86_400, n, replace=False),  # distinct seconds: no tie to keep in order
        rng.choice(["a", "b", "c", "d"], n),
        rng.integers(0, 40, n),
        rng.integers(0, 10_000, n),
        rng.integers(0, 2, n),
    )
    shuffled = events.sample(frac=1.0, random_state=1)
    pd.testing.assert_frame_equal(
        compute_spec_features(events, SPEC), compute_spec_features(shuffled, SPEC).loc[events.index]
    )


def test_calendar_features_and_categorical_passthrough():
    events = frame([0, 23 * 3600, 12 * 3600], ["a", "a", "b"], [1, 1, 2], [100, 200, 300], [0] * 3)
    events["channel"] = ["pos", "web", "atm"]
    got = compute_spec_features(events, SPEC)
    assert got["hour"].tolist() == [0.0, 23.0, 12.0]
    assert got["late"].tolist() == [1.0, 1.0, 0.0]  # night 22:00 .. 05:59, across midnight
    assert got["channel"].tolist() == ["pos", "web", "atm"]
    assert list(got.columns) == SPEC.feature_names()


def test_a_window_sum_beyond_the_exact_range_is_refused_naming_the_column():
    events = frame([0, 1, 2], ["a", "a", "a"], [1, 1, 1], [0, 0, 0], [0, 0, 0])
    events["amt"] = 3e12  # 3e18 micro-units each: three in a window pass 2**62
    with pytest.raises(SumOverflowError, match="'amt'"):
        compute_spec_features(events, SPEC)


ARRIVAL_SPEC = DatasetSpec.model_validate(
    {
        "name": "arrival",
        "event_id": {"column": "id"},
        "event_time": {"column": "ts"},
        "label": {"column": "y", "delay": "1d", "known_at": "known"},
        "entities": [{"name": "shop", "column": "shop"}],
        "numeric": [{"column": "amt"}],
        "aggregations": [
            {
                "entity": "shop",
                "windows": ["1h", "2d"],
                "lag": "label_arrival",
                "features": [
                    {"name": "n_{window}", "kind": "count"},
                    {"name": "known_risk_{window}", "kind": "label_rate"},
                ],
            }
        ],
    }
)


def arrival_reference(events: pd.DataFrame) -> pd.DataFrame:
    """Row by row: frauds of the window (t - w, t] known by t (not the row's own) / rows."""
    seconds = events["ts"].to_numpy().astype("datetime64[s]").astype(np.int64)
    known = events["known"].to_numpy().astype("datetime64[s]").astype(np.int64)
    known = np.where(events["known"].isna(), seconds + 86_400, known)
    position = np.arange(len(events))
    shops, labels = events["shop"].to_numpy(), events["y"].to_numpy()
    rows = []
    for i in range(len(events)):
        t = seconds[i]
        earlier = (seconds < t) | ((seconds == t) & (position <= i))
        row = {}
        for name, width in (("1h", 3_600), ("2d", 2 * 86_400)):
            inside = (shops == shops[i]) & (seconds > t - width) & earlier
            frauds = inside & (position != i) & (labels == 1) & (known <= t)
            n = int(inside.sum())
            row[f"n_{name}"] = float(n)
            row[f"known_risk_{name}"] = frauds.sum() / n if n else 0.0
        rows.append(row)
    return pd.DataFrame(rows, index=events.index)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events_strategy, st.data())
def test_label_arrival_counts_a_fraud_from_the_second_its_label_is_known(data, more):
    events = frame(*data)
    waits = more.draw(
        st.lists(
            st.one_of(st.none(), st.integers(0, 3 * 86_400)),
            min_size=len(events),
            max_size=len(events),
        )
    )
    events["known"] = [
        pd.NaT if wait is None else t + pd.Timedelta(seconds=wait)
        for t, wait in zip(events["ts"], waits, strict=True)
    ]
    expected = arrival_reference(events)
    got = compute_spec_features(events, ARRIVAL_SPEC)[list(expected)]
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)


def test_an_analyst_label_counts_hours_after_its_event_a_chargeback_only_after_the_delay():
    events = pd.DataFrame(
        {
            "id": [1, 2, 3, 4, 5],
            "ts": pd.to_datetime(
                [
                    "2024-03-01 10:00",
                    "2024-03-01 11:00",
                    "2024-03-01 20:00",
                    "2024-03-02 10:30",
                    "2024-03-02 12:00",
                ]
            ),
            "shop": ["s"] * 5,
            "amt": [1.0] * 5,
            "y": [1, 1, 0, 0, 0],
            "known": pd.to_datetime(["2024-03-01 14:00", None, None, None, None]),
        }
    )
    risk = compute_spec_features(events, ARRIVAL_SPEC)["known_risk_2d"].tolist()
    # event 1's analyst label is known at 14:00: not at 11:00, yes at 20:00; event 2's at its
    # chargeback, one delay (1 d) after it: 03-02 11:00
    assert risk == [0.0, 0.0, 1 / 3, 1 / 4, 2 / 5]
    without = compute_spec_features(events.drop(columns="known"), ARRIVAL_SPEC)
    assert without["known_risk_2d"].tolist() == [0.0, 0.0, 0.0, 1 / 4, 2 / 5]
