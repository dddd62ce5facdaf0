import numpy as np
import pandas as pd
import pytest

from fraudops import contract as c
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
