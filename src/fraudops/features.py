"""Behavioural features, computed offline and vectorised (no per-group Python loop).

The features are the Fraud Detection Handbook's (chapter 3.4, "Baseline feature
transformation"): per card, the number of transactions and the mean amount over the last 1, 7
and 30 days; per terminal, the number of transactions and the share of known frauds over 1, 7
and 30 days that end ``label_delay_days`` before the transaction (labels inside the delay are
not known yet); amount, weekend and night flags. We add the amount relative to the card's own
mean amount over each window, since compromised cards show multiplied amounts.

Window semantics match pandas' time-based ``rolling`` used by the handbook: the card window of
transaction *i* at time *t* holds the card's transactions with time in ``(t - w, t]`` up to and
including *i* itself; the terminal window holds the terminal's transactions with time in
``(t - delay - w, t - delay]``. Times are truncated to whole seconds.

Method: rows are ordered by (entity, time, input order) and each window's start is found by
``numpy.searchsorted`` on an (entity, second) composite key; window sums are differences of
per-entity cumulative sums. O(n log n), about 1 s for the 1.75 M-row handbook file.

Sums are exact: amounts are summed as whole micro-units (:func:`amount_units`, int64) on both
the offline and the online path, so the two give bit-identical features. Float sums differed
by about 1e-12 between a difference of cumulative sums and a direct sum, and that was enough
to flip tree splits (about 6 % of scores changed, by up to 0.11, on the handbook file).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fraudops import contract as c

SECONDS_PER_DAY = 86_400
AMOUNT_UNITS_PER_CURRENCY = 1_000_000


def amount_units(amounts: np.ndarray | list[float]) -> np.ndarray:
    """Amounts (currency, 0 .. :data:`contract.MAX_AMOUNT`) as int64 micro-units.

    Window sums of these are exact integers (up to 9.2e12 currency per card history); the mean
    derived from them is bit-identical offline and online while a window holds less than about
    9e9 currency (2**53 micro-units). Amounts are rounded to 1e-6.
    """
    return np.rint(np.asarray(amounts, dtype=np.float64) * AMOUNT_UNITS_PER_CURRENCY).astype(
        np.int64
    )


def mean_amount(total_units: np.ndarray | int, count: np.ndarray | int) -> np.ndarray | float:
    """Mean amount in currency from a window's exact sum of micro-units and its count (≥ 1)."""
    return total_units / AMOUNT_UNITS_PER_CURRENCY / count


def _sorted_key(
    codes: np.ndarray, seconds: np.ndarray, reach: int
) -> tuple[np.ndarray, np.ndarray]:
    """Order by (entity, time, input position) and the sorted (entity, second) composite key.

    Entities are spaced ``reach`` seconds further apart than the data's time span, so a window
    reaching back ``reach`` seconds never crosses into the previous entity's keys.
    """
    order = np.lexsort((np.arange(len(codes)), seconds, codes))
    offset = seconds - seconds.min()
    span = int(offset.max()) + reach + 1
    key = codes[order].astype(np.int64) * span + offset[order]
    return order, key


def _window_sums(
    key: np.ndarray, running: np.ndarray, entity_first: np.ndarray, lag: int, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """Count and sum over ``(t - lag - width, t - lag]`` per sorted row, own position included.

    ``running[p]`` is the entity's cumulative int64 sum through sorted position ``p`` (it
    restarts per entity); sums are exact integers.
    """
    position = np.arange(len(key))
    end = np.minimum(np.searchsorted(key, key - lag, side="right"), position + 1)
    start = np.searchsorted(key, key - lag - width, side="right")
    upper = np.where(end > entity_first, running[np.maximum(end - 1, 0)], 0)
    lower = np.where(start > entity_first, running[np.maximum(start - 1, 0)], 0)
    return (end - start).astype(np.float64), upper - lower


def _entity_windows(
    ids: np.ndarray, seconds: np.ndarray, values: np.ndarray, lag_days: int
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """For every window of :data:`contract.WINDOWS_DAYS`: (count, int64 sum of ``values``).

    ``values`` are int64 (micro-units of amount, or 0/1 labels); results are in input order.
    """
    codes = pd.factorize(ids)[0]
    lag = lag_days * SECONDS_PER_DAY
    order, key = _sorted_key(codes, seconds, reach=lag + c.MAX_WINDOW_DAYS * SECONDS_PER_DAY)
    sorted_codes = codes[order]
    running = pd.Series(values[order]).groupby(sorted_codes, sort=False).cumsum().to_numpy()
    first_rows = np.r_[0, np.flatnonzero(sorted_codes[1:] != sorted_codes[:-1]) + 1]
    entity_first = np.repeat(first_rows, np.diff(np.r_[first_rows, len(order)]))
    inverse = np.empty_like(order)
    inverse[order] = np.arange(len(order))
    out = {}
    for window in c.WINDOWS_DAYS:
        count, total = _window_sums(key, running, entity_first, lag, window * SECONDS_PER_DAY)
        out[window] = (count[inverse], total[inverse])
    return out


def compute_features(transactions: pd.DataFrame, label_delay_days: int = 7) -> pd.DataFrame:
    """Compute :data:`contract.FEATURES` for every transaction from the history in the frame.

    Args:
        transactions: n rows × the contract's raw columns (``TX_DATETIME``, ``CUSTOMER_ID``,
            ``TERMINAL_ID``, ``TX_AMOUNT``) and optionally ``TX_FRAUD`` (0/1, NaN = unknown);
            any row order. Rows earlier than 30 days after the first one have partly empty windows.
        label_delay_days: days before a label is known (≥ 0); terminal windows end this long
            before each transaction, so no label from inside the delay is used.

    Returns:
        n rows × 18 float64 columns named as :data:`contract.FEATURES`, same index and order as
        the input. Counts are transactions; mean amounts are in the data's currency; risks and
        the weekend/night flags are in [0, 1]; amount ratios are ≥ 0 (1.0 where the mean is 0).

    Raises:
        ValueError: ``label_delay_days`` is negative.
    """
    if label_delay_days < 0:
        raise ValueError(f"label_delay_days must be >= 0, got {label_delay_days}")
    times = pd.DatetimeIndex(transactions[c.TX_DATETIME])
    seconds = times.values.astype("datetime64[s]").astype(np.int64)
    amount = transactions[c.TX_AMOUNT].to_numpy(dtype=np.float64)
    if c.LABEL in transactions:
        labels = transactions[c.LABEL].to_numpy(dtype=np.float64, na_value=0.0).astype(np.int64)
    else:
        labels = np.zeros(len(transactions), dtype=np.int64)

    features: dict[str, np.ndarray] = {
        c.TX_AMOUNT: amount,
        c.TX_DURING_WEEKEND: (times.weekday >= 5).astype(np.float64),
        c.TX_DURING_NIGHT: (times.hour <= 6).astype(np.float64),
    }
    card = _entity_windows(
        transactions[c.CUSTOMER_ID].to_numpy(), seconds, amount_units(amount), lag_days=0
    )
    for window, (count, total) in card.items():
        mean = np.asarray(mean_amount(total, count))  # count >= 1: the row itself is inside
        features[c.customer_count_feature(window)] = count
        features[c.customer_mean_amount_feature(window)] = mean
        features[c.amount_ratio_feature(window)] = np.divide(
            amount, mean, out=np.ones_like(amount), where=mean > 0
        )
    terminal = _entity_windows(
        transactions[c.TERMINAL_ID].to_numpy(), seconds, labels, lag_days=label_delay_days
    )
    for window, (count, fraud_count) in terminal.items():
        if label_delay_days == 0:  # the window ends at the row itself, whose label is not known
            fraud_count = fraud_count - labels
        frauds = fraud_count.astype(np.float64)
        features[c.terminal_count_feature(window)] = count
        features[c.terminal_risk_feature(window)] = np.divide(
            frauds, count, out=np.zeros_like(frauds), where=count > 0
        )
    return pd.DataFrame(features, index=transactions.index)[list(c.FEATURES)]
