import time

import numpy as np
import pandas as pd
import pytest

from fraudops.data import contract as c
from tests.conftest import make_transactions

pytestmark = pytest.mark.unit


@pytest.fixture
def valid() -> pd.DataFrame:
    return make_transactions(
        [
            ("2018-04-01 10:00", 1, 10, 20.0, 0),
            ("2018-04-01 09:00", 2, 11, 35.5, 1),
            ("2018-04-02 12:00", 1, 10, 12.0, 0),
        ]
    )


def test_valid_frame_passes_sorted_by_time_with_contract_dtypes(valid):
    out = c.validate_transactions(valid.assign(EXTRA=1))
    assert list(out.columns) == list(c.LABELLED_COLUMNS)
    assert out[c.TX_DATETIME].is_monotonic_increasing
    assert out[c.LABEL].dtype == np.int8


def test_missing_column_is_named(valid):
    with pytest.raises(c.DataValidationError, match="TERMINAL_ID"):
        c.validate_transactions(valid.drop(columns=[c.TERMINAL_ID]))


def test_wrong_dtype_names_column_and_value(valid):
    bad = valid.astype({c.TX_AMOUNT: object})
    bad.loc[1, c.TX_AMOUNT] = "twelve"
    with pytest.raises(c.DataValidationError, match=r"TX_AMOUNT.*twelve"):
        c.validate_transactions(bad)


@pytest.mark.parametrize("amount", [np.nan, np.inf, -1.0])
def test_nan_infinite_or_negative_amount_is_rejected_with_row(valid, amount):
    bad = valid.copy()
    bad.loc[2, c.TX_AMOUNT] = amount
    with pytest.raises(c.DataValidationError, match=r"TX_AMOUNT.*rows \[2\]"):
        c.validate_transactions(bad)


def test_duplicated_transaction_id_is_rejected(valid):
    bad = valid.copy()
    bad.loc[2, c.TRANSACTION_ID] = 0
    with pytest.raises(c.DataValidationError, match="TRANSACTION_ID"):
        c.validate_transactions(bad)


def test_label_outside_zero_one_is_rejected(valid):
    bad = valid.copy()
    bad.loc[0, c.LABEL] = 3
    with pytest.raises(c.DataValidationError, match="TX_FRAUD"):
        c.validate_transactions(bad)


def test_empty_frame_is_rejected(valid):
    with pytest.raises(c.DataValidationError, match="no rows"):
        c.validate_transactions(valid.iloc[0:0])


def test_label_not_required_for_scoring(valid):
    out = c.validate_transactions(valid.drop(columns=[c.LABEL]), require_label=False)
    assert c.LABEL not in out


def test_column_mapping_renames_user_columns(valid):
    user = valid.rename(columns={c.CUSTOMER_ID: "card", c.TX_DATETIME: "ts"})
    mapped = c.apply_column_mapping(user, {"card": c.CUSTOMER_ID, "ts": c.TX_DATETIME})
    assert len(c.validate_transactions(mapped)) == 3


def test_column_mapping_rejects_unknown_target_and_absent_source(valid):
    with pytest.raises(c.DataValidationError, match="not contract columns"):
        c.apply_column_mapping(valid, {c.CUSTOMER_ID: "CARD"})
    with pytest.raises(c.DataValidationError, match="not in the data"):
        c.apply_column_mapping(valid, {"card": c.CUSTOMER_ID})


def test_feature_list_is_the_handbook_fifteen_plus_three_ratios():
    assert len(c.HANDBOOK_FEATURES) == 15
    assert len(c.FEATURES) == 18 == len(set(c.FEATURES))
    assert "TX_FRAUD_SCENARIO" not in c.FEATURES


def test_amount_with_decimal_comma_is_named_with_a_hint_and_counts(valid):
    bad = valid.astype({c.TX_AMOUNT: object})
    bad[c.TX_AMOUNT] = ["20,00", "35.5", "12,50"]
    with pytest.raises(c.DataValidationError) as raised:
        c.validate_transactions(bad)
    message = str(raised.value)
    assert "column 'TX_AMOUNT' has values that are not numbers" in message
    assert "decimal point" in message and "2 of 3 row(s)" in message
    assert "['20,00', '12,50'] at rows [0, 2]" in message
    assert "TypeError" not in message and "dtype(" not in message  # no pandera noise


def test_text_columns_of_a_csv_are_parsed(valid):
    text = valid.astype(str)
    out = c.validate_transactions(text)
    pd.testing.assert_frame_equal(out, c.validate_transactions(valid))


def test_timestamps_other_than_iso_8601_are_refused_not_guessed(valid):
    # 01/04/2018 is 1 April to some and 4 January to others: never guess the day/month order
    text = valid.assign(**{c.TX_DATETIME: valid[c.TX_DATETIME].dt.strftime("%d/%m/%Y %H:%M")})
    with pytest.raises(c.DataValidationError, match=r"not timestamps \(write ISO 8601"):
        c.validate_transactions(text)
    iso = valid.assign(**{c.TX_DATETIME: valid[c.TX_DATETIME].dt.strftime("%Y-%m-%dT%H:%M")})
    pd.testing.assert_frame_equal(c.validate_transactions(iso), c.validate_transactions(valid))


def test_unparseable_timestamp_is_named_quickly_on_a_large_file():
    times = pd.date_range("2018-04-01", periods=200_000, freq="min").astype(str).to_numpy()
    times[7] = "2018-13-45 99:00"
    frame = pd.DataFrame(
        {
            c.TRANSACTION_ID: np.arange(len(times)),
            c.TX_DATETIME: times,
            c.CUSTOMER_ID: 1,
            c.TERMINAL_ID: 2,
            c.TX_AMOUNT: 1.0,
            c.LABEL: 0,
        }
    )
    began = time.perf_counter()
    with pytest.raises(
        c.DataValidationError,
        match=r"column 'TX_DATETIME' has values that are not timestamps.*1 of 200,000 .*rows \[7\]",
    ):
        c.validate_transactions(frame)
    assert time.perf_counter() - began < 10  # pandas' per-value fallback took minutes


def test_mixed_time_zone_offsets_are_rejected(valid):
    text = valid.astype({c.TX_DATETIME: object})
    text[c.TX_DATETIME] = ["2018-04-01T10:00+01:00", "2018-04-01T09:00+02:00", "2018-04-02T12:00Z"]
    with pytest.raises(c.DataValidationError, match="TX_DATETIME' mixes time-zone offsets"):
        c.validate_transactions(text)


@pytest.mark.parametrize("column", [c.TRANSACTION_ID, c.CUSTOMER_ID, c.TERMINAL_ID, c.LABEL])
def test_missing_or_fractional_ids_and_labels_are_rejected(valid, column):
    missing = valid.astype({column: np.float64})
    missing.loc[1, column] = np.nan
    with pytest.raises(c.DataValidationError, match=rf"'{column}' has missing values.*rows \[1\]"):
        c.validate_transactions(missing)
    fractional = valid.astype({column: np.float64})
    fractional.loc[1, column] = 0.5  # pandas would cast it to 0 without a word
    with pytest.raises(c.DataValidationError, match=rf"'{column}' has values that are not whole"):
        c.validate_transactions(fractional)


def test_every_broken_column_is_reported_at_once(valid):
    bad = valid.astype({c.TX_AMOUNT: object, c.TX_DATETIME: object})
    bad.loc[0, c.TX_AMOUNT] = "n/a"
    bad.loc[2, c.TX_DATETIME] = "yesterday"
    with pytest.raises(c.DataValidationError) as raised:
        c.validate_transactions(bad)
    assert "'TX_AMOUNT'" in str(raised.value) and "'TX_DATETIME'" in str(raised.value)


def test_row_order_does_not_matter(valid):
    shuffled = valid.sample(frac=1.0, random_state=0)
    pd.testing.assert_frame_equal(c.validate_transactions(shuffled), c.validate_transactions(valid))


@pytest.mark.parametrize("label", [0, 1])
def test_a_single_class_is_refused_for_training_naming_the_label(valid, label):
    c.require_both_classes(valid)
    with pytest.raises(c.DataValidationError, match=rf"'TX_FRAUD' holds only class {label}"):
        c.require_both_classes(valid.assign(**{c.LABEL: label}))
