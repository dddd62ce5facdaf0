"""The one data contract: raw transaction columns, the label, the feature list, validation.

Training, the service's request model and the drift job's column mapping all derive from the
names defined here. Column names follow the Fraud Detection Handbook's simulated data
(Le Borgne et al., *Reproducible Machine Learning for Credit Card Fraud Detection*, 2022).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

TRANSACTION_ID: Final = "TRANSACTION_ID"
TX_DATETIME: Final = "TX_DATETIME"
CUSTOMER_ID: Final = "CUSTOMER_ID"
TERMINAL_ID: Final = "TERMINAL_ID"
TX_AMOUNT: Final = "TX_AMOUNT"
LABEL: Final = "TX_FRAUD"

#: Raw columns a transaction carries when it is scored (the label arrives later).
RAW_COLUMNS: Final[tuple[str, ...]] = (
    TRANSACTION_ID,
    TX_DATETIME,
    CUSTOMER_ID,
    TERMINAL_ID,
    TX_AMOUNT,
)
#: Columns the pipelines need: raw columns plus the label.
LABELLED_COLUMNS: Final[tuple[str, ...]] = (*RAW_COLUMNS, LABEL)

#: Look-back windows of the behavioural features, in days.
WINDOWS_DAYS: Final[tuple[int, ...]] = (1, 7, 30)
#: The longest window: history shorter than this only warms features up.
MAX_WINDOW_DAYS: Final = max(WINDOWS_DAYS)


def customer_count_feature(window: int) -> str:
    """Name of the card's transaction count over the last ``window`` days."""
    return f"CUSTOMER_ID_NB_TX_{window}DAY_WINDOW"


def customer_mean_amount_feature(window: int) -> str:
    """Name of the card's mean amount over the last ``window`` days."""
    return f"CUSTOMER_ID_AVG_AMOUNT_{window}DAY_WINDOW"


def amount_ratio_feature(window: int) -> str:
    """Name of amount ÷ the card's mean amount over the last ``window`` days."""
    return f"CUSTOMER_ID_AMOUNT_RATIO_{window}DAY_WINDOW"


def terminal_count_feature(window: int) -> str:
    """Name of the terminal's transaction count over ``window`` days before the label delay."""
    return f"TERMINAL_ID_NB_TX_{window}DAY_WINDOW"


def terminal_risk_feature(window: int) -> str:
    """Name of the terminal's known fraud share over ``window`` days before the label delay."""
    return f"TERMINAL_ID_RISK_{window}DAY_WINDOW"


TX_DURING_WEEKEND: Final = "TX_DURING_WEEKEND"
TX_DURING_NIGHT: Final = "TX_DURING_NIGHT"

#: The handbook's 15 features, in its order.
HANDBOOK_FEATURES: Final[tuple[str, ...]] = (
    TX_AMOUNT,
    TX_DURING_WEEKEND,
    TX_DURING_NIGHT,
    *(
        f
        for w in WINDOWS_DAYS
        for f in (customer_count_feature(w), customer_mean_amount_feature(w))
    ),
    *(f for w in WINDOWS_DAYS for f in (terminal_count_feature(w), terminal_risk_feature(w))),
)
#: Every model input: the handbook's features plus the amount ratios (18 columns).
FEATURES: Final[tuple[str, ...]] = (
    *HANDBOOK_FEATURES,
    *(amount_ratio_feature(w) for w in WINDOWS_DAYS),
)


class DataValidationError(ValueError):
    """Input data breaks the contract; the message names the columns and sample rows."""


def _schema(require_label: bool) -> pa.DataFrameSchema:
    finite = pa.Check(lambda s: np.isfinite(s), error="must be finite (no NaN or infinity)")
    columns = {
        TRANSACTION_ID: pa.Column("int64", unique=True, coerce=True),
        TX_DATETIME: pa.Column("datetime64[ns]", coerce=True),
        CUSTOMER_ID: pa.Column("int64", coerce=True),
        TERMINAL_ID: pa.Column("int64", coerce=True),
        TX_AMOUNT: pa.Column("float64", checks=[finite, pa.Check.ge(0)], coerce=True),
    }
    if require_label:
        columns[LABEL] = pa.Column("int8", checks=pa.Check.isin([0, 1]), coerce=True)
    return pa.DataFrameSchema(columns, strict=False, name="transactions")


def validate_transactions(frame: pd.DataFrame, *, require_label: bool = True) -> pd.DataFrame:
    """Check ``frame`` against the contract and return the contract columns only.

    Args:
        frame: n rows × at least the columns of :data:`LABELLED_COLUMNS` (or
            :data:`RAW_COLUMNS` when ``require_label`` is false); extra columns are dropped.
        require_label: whether ``TX_FRAUD`` (0 or 1) must be present.

    Returns:
        n rows × the contract columns with contract dtypes, sorted by time then transaction id.

    Raises:
        DataValidationError: no rows, a missing column, a dtype that cannot be coerced, a
            duplicated transaction id, a NaN/infinite/negative amount or a label outside {0, 1};
            the message names each offending column with up to five failing values.
    """
    columns = LABELLED_COLUMNS if require_label else RAW_COLUMNS
    if frame.empty:
        raise DataValidationError("transactions: the data has no rows")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataValidationError(
            f"transactions: missing column(s) {missing}; found {list(frame.columns)}. "
            "Map your names with FRAUDOPS_COLUMN_MAPPING."
        )
    try:
        valid = _schema(require_label).validate(frame[list(columns)], lazy=True)
    except SchemaErrors as exc:
        raise DataValidationError(_describe(exc)) from None
    return valid.sort_values([TX_DATETIME, TRANSACTION_ID], kind="stable").reset_index(drop=True)


def _describe(exc: SchemaErrors) -> str:
    cases = exc.failure_cases
    lines = []
    for (column, check), group in cases.groupby(["column", "check"], sort=False, dropna=False):
        rows = group["index"].dropna().head(5).tolist()
        values = group["failure_case"].head(5).tolist()
        lines.append(f"column {column!r} fails {check}: values {values} at rows {rows}")
    return "transactions: " + "; ".join(lines)


def apply_column_mapping(frame: pd.DataFrame, mapping: Mapping[str, str]) -> pd.DataFrame:
    """Rename a user's columns to the contract's names.

    Args:
        frame: any table.
        mapping: user column name -> contract column name, e.g. ``{"card": "CUSTOMER_ID"}``.

    Raises:
        DataValidationError: a mapped source column is absent, or a target is not a contract column.
    """
    unknown_targets = sorted(set(mapping.values()) - set(LABELLED_COLUMNS))
    if unknown_targets:
        raise DataValidationError(
            f"column mapping: {unknown_targets} are not contract columns {list(LABELLED_COLUMNS)}"
        )
    absent = sorted(set(mapping) - set(frame.columns))
    if absent:
        raise DataValidationError(f"column mapping: source column(s) {absent} not in the data")
    return frame.rename(columns=dict(mapping))
