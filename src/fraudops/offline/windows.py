"""Vectorised window machinery over one entity's events: bounds, exact sums, max, distinct counts.

Rows are ordered by (entity, time, input position); every window of a row is a contiguous
range ``[start, end)`` of that order, found by ``numpy.searchsorted`` on an (entity, second)
composite key. Per window:

- sums are differences of one int64 cumulative sum (exact; int64 wrap-around cancels in the
  difference as long as the window's own sum fits, which :meth:`EntityIndex.sums` checks);
- max is a sparse-table range query (Bender and Farach-Colton, 2000): O(n log m) to build for
  windows of at most m rows, O(1) a query;
- distinct count is the number of rows in the range whose previous row with the same value lies
  before the range, counted with a merge-sort tree walked bottom-up for all rows at once
  (O(n log m · log n)).

No per-entity Python loop: the cost is a few numpy passes over n rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

#: Largest exact window sum: int64, with one bit of headroom.
MAX_EXACT_SUM = 2**62


class SumOverflowError(ValueError):
    """A window sum would not fit in an int64; the message names the column."""


@dataclass(frozen=True)
class Window:
    """Sorted-order bounds of every row's window: rows ``start[i] .. end[i] - 1``."""

    start: np.ndarray
    end: np.ndarray

    @property
    def count(self) -> np.ndarray:
        """Rows in each window (int64)."""
        return self.end - self.start


class EntityIndex:
    """Rows of one entity column in (entity, time, input position) order.

    Args:
        ids: n entity keys (ints or strings; nulls are refused upstream).
        seconds: n event times as int64 seconds.
        reach: the longest look-back of any window (window + lag), in seconds.
    """

    def __init__(self, ids: np.ndarray, seconds: np.ndarray, reach: int) -> None:
        codes = pd.factorize(ids)[0].astype(np.int64)
        self.order = np.lexsort((np.arange(len(codes)), seconds, codes))
        offset = seconds - seconds.min()
        span = int(offset.max()) + reach + 1
        self.codes = codes[self.order]
        self.seconds = seconds[self.order]
        self.key = self.codes * span + offset[self.order]
        self.inverse = np.empty_like(self.order)
        self.inverse[self.order] = np.arange(len(self.order))
        self._windows: dict[tuple[int, int], Window] = {}
        #: Arrays derived from this order (sorted columns, exact sums), kept for reuse.
        self.memo: dict[tuple[object, ...], np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.order)

    def window(self, lag: int, width: int) -> Window:
        """Bounds of ``(t - lag - width, t - lag]``; with ``lag`` 0 up to the row itself.

        Computed once per (lag, width): blocks of the same entity share them.
        """
        if (lag, width) not in self._windows:
            self._windows[lag, width] = self._bounds(lag, width)
        return self._windows[lag, width]

    def _bounds(self, lag: int, width: int) -> Window:
        position = np.arange(len(self.key))
        end = np.minimum(np.searchsorted(self.key, self.key - lag, side="right"), position + 1)
        start = np.searchsorted(self.key, self.key - lag - width, side="right")
        return Window(start, np.maximum(end, start))

    def sorted(self, values: np.ndarray) -> np.ndarray:
        """``values`` (input order) in this index's order."""
        return values[self.order]

    def back(self, values: np.ndarray) -> np.ndarray:
        """Sorted-order ``values`` back in input order."""
        return values[self.inverse]

    def sums(self, window: Window, units: np.ndarray, column: str) -> np.ndarray:
        """Exact int64 sums of sorted-order ``units`` over each window.

        Raises:
            SumOverflowError: the largest |unit| times the largest window count reaches
                :data:`MAX_EXACT_SUM`; the message names ``column``.
        """
        if len(units):
            largest = int(np.abs(units).max()) * int(window.count.max(initial=0))
            if largest >= MAX_EXACT_SUM:
                raise SumOverflowError(
                    f"column {column!r}: window sums could reach {largest:.3g} units, beyond "
                    f"the exact int64 range ({MAX_EXACT_SUM:.3g}); lower its `max` or the windows"
                )
        running = np.concatenate([[0], np.cumsum(units, dtype=np.int64)])
        return running[window.end] - running[window.start]

    def arrived_counts(self, flags: np.ndarray, known: np.ndarray, width: int) -> np.ndarray:
        """Per row i (sorted order), the flagged earlier rows j of its window ``(t_i - width,
        t_i]`` whose ``known`` second is at most ``t_i``: the frauds known when row i happens.

        Each flagged row j adds 1 to the contiguous rows of its entity from the later of
        ``j + 1`` and the first row at or after ``known_j``, up to the last row before
        ``t_j + width``: a difference array, O(n log n) for all rows.

        Args:
            flags: n sorted-order 0/1 (the labels).
            known: n sorted-order int64 seconds at which each row's label became known
                (at or after its own time).
            width: the window, in seconds (at most the ``reach`` the index was built with).
        """
        n = len(self.key)
        rows = np.flatnonzero(flags)
        wait = np.minimum(known[rows] - self.seconds[rows], width)
        first = np.maximum(rows + 1, np.searchsorted(self.key, self.key[rows] + wait, side="left"))
        stop = np.searchsorted(self.key, self.key[rows] + width, side="left")
        live = first < stop
        change = np.bincount(first[live], minlength=n + 1) - np.bincount(
            stop[live], minlength=n + 1
        )
        return np.cumsum(change[:n])

    def previous_gap(self) -> np.ndarray:
        """Seconds since the same entity's previous row (sorted order); -1 for its first row."""
        gap = np.full(len(self.key), -1.0)
        same = self.codes[1:] == self.codes[:-1]
        gap[1:][same] = (self.seconds[1:] - self.seconds[:-1])[same]
        return gap


def range_max(values: np.ndarray, window: Window, empty: float = 0.0) -> np.ndarray:
    """Max of sorted-order float ``values`` over each window; ``empty`` where it holds no row."""
    count = window.count
    longest = int(count.max(initial=0))
    out = np.full(len(count), empty, dtype=np.float64)
    if longest == 0:
        return out
    levels = [values.astype(np.float64)]
    while 2 ** len(levels) <= longest:
        half = 2 ** (len(levels) - 1)
        previous = levels[-1]
        level = previous.copy()
        level[:-half] = np.maximum(previous[:-half], previous[half:])
        levels.append(level)
    filled = count > 0
    k = np.zeros(len(count), dtype=np.int64)
    k[filled] = np.floor(np.log2(count[filled])).astype(np.int64)
    for level_k in np.unique(k[filled]):
        rows = np.flatnonzero(filled & (k == level_k))
        level = levels[level_k]
        left = level[window.start[rows]]
        right = level[window.end[rows] - 2**level_k]
        out[rows] = np.maximum(left, right)
    return out


def distinct_counts(pair_codes: np.ndarray, window: Window) -> np.ndarray:
    """Distinct values per window, from sorted-order codes of (entity, value) pairs.

    A row is a value's first in the window when the previous row with the same pair code lies
    before the window's start; the count of such rows is taken with a merge-sort tree.
    """
    n = len(pair_codes)
    previous = _previous_same(pair_codes)
    start, end = window.start.copy(), window.end.copy()
    out = np.zeros(n, dtype=np.int64)
    threshold = window.start + 1  # count previous + 1 < start + 1, i.e. previous < start
    shifted = previous + 1  # in 0 .. n
    stride = n + 2
    node = np.arange(n, dtype=np.int64)  # each row's tree node at the current level
    active = start < end
    while active.any():
        keys = np.sort(node * stride + shifted)
        take_left = active & (start & 1 == 1)
        if take_left.any():
            rows = np.flatnonzero(take_left)
            out[rows] += _below(keys, start[rows], threshold[rows], stride)
            start[rows] += 1
        active = start < end
        take_right = active & (end & 1 == 1)
        if take_right.any():
            rows = np.flatnonzero(take_right)
            end[rows] -= 1
            out[rows] += _below(keys, end[rows], threshold[rows], stride)
        start >>= 1
        end >>= 1
        node >>= 1
        active = start < end
    return out


def _below(keys: np.ndarray, blocks: np.ndarray, threshold: np.ndarray, stride: int) -> np.ndarray:
    """Rows of each tree node whose shifted previous position is below ``threshold``.

    ``keys`` are ``node * stride + shifted previous`` sorted, so a node's rows are contiguous.
    """
    first = np.searchsorted(keys, blocks * stride, side="left")
    return np.searchsorted(keys, blocks * stride + threshold, side="left") - first


def _previous_same(codes: np.ndarray) -> np.ndarray:
    """Position of the previous row with the same code (sorted order), -1 for the first."""
    order = np.lexsort((np.arange(len(codes)), codes))
    previous = np.full(len(codes), -1, dtype=np.int64)
    same = codes[order][1:] == codes[order][:-1]
    previous[order[1:][same]] = order[:-1][same]
    return previous
