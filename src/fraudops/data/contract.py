"""The one data contract: raw transaction columns, the label, the feature list, validation.

Training, the service's request model and the drift job's column mapping all derive from the
names defined here. Column names follow the Fraud Detection Handbook's simulated data
(Le Borgne et al., *Reproducible Machine Learning for Credit Card Fraud Detection*, 2022).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Final

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandas.api.types import is_datetime64_any_dtype, is_float_dtype, is_numeric_dtype
from pandera.errors import SchemaErrors

from fraudops.spec.model import Roles

TRANSACTION_ID: Final = "TRANSACTION_ID"
TX_DATETIME: Final = "TX_DATETIME"
CUSTOMER_ID: Final = "CUSTOMER_ID"
TERMINAL_ID: Final = "TERMINAL_ID"
TX_AMOUNT: Final = "TX_AMOUNT"
LABEL: Final = "TX_FRAUD"

#: The handbook's roles for splits and metrics (the shipped spec's ``roles()``).
HANDBOOK_ROLES: Final = Roles(
    event_id=TRANSACTION_ID, time=TX_DATETIME, label=LABEL, entity=CUSTOMER_ID, drop_known=True
)

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


#: Columns read as whole numbers (ids and the label); every other contract column but the
#: time is a float.
_WHOLE_NUMBER_COLUMNS: Final = frozenset({TRANSACTION_ID, CUSTOMER_ID, TERMINAL_ID, LABEL})
#: Failing values and rows quoted per problem in an error message.
_SAMPLES: Final = 5


#: Largest amount of one transaction, in currency units. Window sums are exact int64 sums of
#: micro-units (:func:`fraudops.offline.handbook.amount_units`), which hold 9.2e12 currency per card
#: history: 9,200 transactions at this bound.
MAX_AMOUNT: Final = 1e9


def _schema(require_label: bool) -> pa.DataFrameSchema:
    finite = pa.Check(lambda s: np.isfinite(s), error="must be finite (no NaN or infinity)")
    columns = {
        TRANSACTION_ID: pa.Column("int64", unique=True, coerce=True),
        TX_DATETIME: pa.Column("datetime64[ns]", coerce=True),
        CUSTOMER_ID: pa.Column("int64", coerce=True),
        TERMINAL_ID: pa.Column("int64", coerce=True),
        TX_AMOUNT: pa.Column(
            "float64", checks=[finite, pa.Check.ge(0), pa.Check.le(MAX_AMOUNT)], coerce=True
        ),
    }
    if require_label:
        columns[LABEL] = pa.Column("int8", checks=pa.Check.isin([0, 1]), coerce=True)
    return pa.DataFrameSchema(columns, strict=False, name="transactions")


def validate_transactions(frame: pd.DataFrame, *, require_label: bool = True) -> pd.DataFrame:
    """Check ``frame`` against the contract and return the contract columns only.

    Row order carries no meaning: the result is sorted by time then transaction id, so a
    shuffled file and the sorted file give the same frame, the same features and the same data
    fingerprint (files and Parquet folders come in no guaranteed order; the offline features
    are computed over the whole history, not in arrival order).

    Args:
        frame: n rows × at least the columns of :data:`LABELLED_COLUMNS` (or
            :data:`RAW_COLUMNS` when ``require_label`` is false); extra columns are dropped.
            Text columns (a CSV's) are parsed: numbers with a ``.`` decimal point, timestamps in
            ISO 8601 only (``01/04/2018`` is ambiguous).
        require_label: whether ``TX_FRAUD`` (0 or 1) must be present.

    Returns:
        n rows × the contract columns with contract dtypes, sorted by time then transaction id.

    Raises:
        DataValidationError: no rows, a missing column, a value that is missing (NaN, NaT,
            empty), not a number or not a timestamp, a fractional id or label, a duplicated
            transaction id, an infinite or negative amount or a label outside {0, 1}; the
            message names each offending column with the count and up to five failing values
            and rows (0-based positions in the input).
    """
    columns = LABELLED_COLUMNS if require_label else RAW_COLUMNS
    if len(frame) == 0:
        raise DataValidationError(
            f"transactions: the data has no rows (columns found: {list(frame.columns)})"
        )
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataValidationError(
            f"transactions: missing column(s) {missing}; found {list(frame.columns)}. "
            "Map your names with FRAUDOPS_COLUMN_MAPPING."
        )
    parsed, problems = _parse(frame[list(columns)].reset_index(drop=True))
    if problems:
        raise DataValidationError("transactions: " + "; ".join(problems))
    try:
        valid = _schema(require_label).validate(parsed, lazy=True)
    except SchemaErrors as exc:
        raise DataValidationError(_describe(exc, len(parsed))) from None
    return valid.sort_values([TX_DATETIME, TRANSACTION_ID], kind="stable").reset_index(drop=True)


def problem_message(column: str, what: str, bad: np.ndarray, values: pd.Series) -> str:
    """``column 'X' <what>: k of n row(s), values [...] at rows [...]`` for the mask ``bad``."""
    rows = np.flatnonzero(bad)
    sample = values.iloc[rows[:_SAMPLES]].tolist()
    return (
        f"column {column!r} {what}: {len(rows):,} of {len(values):,} row(s), "
        f"values {sample} at rows {rows[:_SAMPLES].tolist()}"
    )


def parse_iso_times(raw: pd.Series) -> pd.Series:
    """Text timestamps (ISO 8601) to datetimes, vectorised; anything else becomes NaT.

    Only ISO 8601 is read: ``01/04/2018`` is 1 April or 4 January depending on who wrote it,
    and a silent day/month swap would corrupt every window. (pandas' per-value fallback would
    also take minutes on a large file.)
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas' mixed-offset FutureWarning: reported below
        return pd.to_datetime(raw.astype("string"), errors="coerce", format="ISO8601")


def _parse(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Parse text columns; report missing, unparseable and fractional values per column.

    The checks here are the ones pandera would do value by value (slow) or not at all
    (pandas casts 0.5 to the integer 0 without a word).
    """
    out = {}
    problems = []
    for column in frame.columns:
        raw = frame[column]
        value = raw
        is_text = not (is_numeric_dtype(raw) or is_datetime64_any_dtype(raw))
        if is_text and column == TX_DATETIME:
            value = parse_iso_times(raw)
            if not is_datetime64_any_dtype(value):
                problems.append(
                    f"column {column!r} mixes time-zone offsets; give every timestamp in one "
                    f"time zone, e.g. {raw.dropna().head(2).tolist()}"
                )
                continue
        elif is_text:
            value = pd.to_numeric(raw.astype("string").str.strip(), errors="coerce")
        absent = raw.isna().to_numpy()
        if absent.any():
            problems.append(
                problem_message(column, "has missing values (NaN, NaT or empty)", absent, raw)
            )
        unparsed = value.isna().to_numpy() & ~absent
        if unparsed.any():
            kind = "numbers"
            hint = ""
            if column == TX_DATETIME:
                kind, hint = "timestamps", " (write ISO 8601, e.g. 2018-04-01 10:00:00)"
            elif column == TX_AMOUNT and raw[unparsed].astype(str).str.contains(",").any():
                hint = " (use '.' as the decimal point, e.g. 12.50, not 12,50)"
            what = f"has values that are not {kind}{hint}"
            problems.append(problem_message(column, what, unparsed, raw))
        if column in _WHOLE_NUMBER_COLUMNS and is_float_dtype(value):
            numbers = value.to_numpy(dtype=np.float64, na_value=0.0)
            fractional = np.isfinite(numbers) & (numbers != np.floor(numbers))
            if fractional.any():
                problems.append(
                    problem_message(
                        column, "has values that are not whole numbers", fractional, raw
                    )
                )
        out[column] = value
    return pd.DataFrame(out, index=frame.index), problems


#: Pandera's check names, as a person would say them.
_CHECK_WORDS: Final[dict[str, str]] = {
    "field_uniqueness": "has duplicated values",
    "not_nullable": "has missing values (NaN, NaT or empty)",
    "greater_than_or_equal_to(0)": "must be >= 0",
    "isin([0, 1])": "must be 0 or 1",
}


def _describe(exc: SchemaErrors, n_rows: int) -> str:
    cases = exc.failure_cases
    coercions = cases["check"].astype(str).str.startswith("coerce_dtype")
    uncoercible = set(cases.loc[coercions, "column"])
    lines = []
    for (column, check), group in cases.groupby(["column", "check"], sort=False, dropna=False):
        check = str(check)
        if column in uncoercible and not check.startswith("coerce_dtype"):
            continue  # the dtype and value checks only repeat the coercion failure
        rows = group["index"].dropna().astype(int).head(_SAMPLES).tolist()
        values = group["failure_case"].head(_SAMPLES).tolist()
        what = _CHECK_WORDS.get(check, check)
        if check.startswith("coerce_dtype"):
            what = f"cannot be read as {check.removeprefix('coerce_dtype')}"
        lines.append(
            f"column {column!r} {what}: {len(group):,} of {n_rows:,} row(s), "
            f"values {values} at rows {rows}"
        )
    return "transactions: " + "; ".join(lines)


def require_both_classes(transactions: pd.DataFrame, label: str = LABEL) -> None:
    """Raise unless the ``label`` column holds both frauds (1) and genuine events (0).

    Raises:
        DataValidationError: every label is the same; the message gives the counts.
    """
    labels = transactions[label].to_numpy()
    frauds = int((labels == 1).sum())
    if 0 < frauds < len(labels):
        return
    raise DataValidationError(
        f"transactions: column {label!r} holds only class {int(labels[0])}: "
        f"{frauds:,} fraud(s) (1) and {len(labels) - frauds:,} genuine (0) in "
        f"{len(labels):,} rows; training needs both classes"
    )


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
