"""Positional structures over one entity's events (in time order): O(log n) appends and queries.

- :class:`Fenwick`: a binary indexed tree of ints (Fenwick, 1994); append, point update and
  prefix sum in O(log n). Label counts (labels arrive after their events) and the
  last-occurrence marks of :class:`DistinctFrontier` live in one.
- :class:`MaxTree`: an iterative segment tree of floats; append (amortised, the capacity
  doubles), range max in O(log n). A monotonic deque is not enough: lagged windows end in the
  past, so their right end is not the newest event.
- :class:`DistinctFrontier`: distinct values over ``[l, r)`` for right ends ``r`` that only
  grow (windows of later events end later): a value counts at its last position before the
  frontier ``r``, so the answer is a Fenwick range sum, O(log n) amortised per event. A query
  behind the frontier (a late event's window) is answered by scanning the window, O(r - l).

Numbers are kept in :class:`array.array` (machine int64 ``'q'`` or double ``'d'``) rather than
lists: a list of a million ints is a million objects that every full collection of CPython's
cycle collector visits (a stop-the-world pause of ~0.35 s with the handbook's warmed state), an
array is one untracked object, and a third of the memory.
"""

from __future__ import annotations

from array import array
from collections.abc import Hashable, Iterable, Sequence
from itertools import accumulate
from typing import Any

#: An int64 array, or a list of Python ints once a value left the int64 range.
Ints = array | list[Any]


def packed_ints(values: Iterable[Any] = ()) -> Ints:
    """``values`` (ints) in an int64 array; a list when one of them does not fit int64."""
    values = list(values)
    try:
        return array("q", values)
    except OverflowError:
        return values


def appended(values: Ints, value: Any) -> Ints:
    """``values`` with ``value`` appended: the same container, or a list copy of an int64
    array ``value`` does not fit in (Python ints are unbounded)."""
    try:
        values.append(value)
    except OverflowError:
        values = [*values, value]
    return values


def inserted(values: Ints, position: int, value: Any) -> Ints:
    """As :func:`appended`, ``value`` inserted at ``position``."""
    try:
        values.insert(position, value)
    except OverflowError:
        values = list(values)
        values.insert(position, value)
    return values


class Fenwick:
    """Prefix sums of a growing int sequence, with point updates."""

    __slots__ = ("_tree",)

    def __init__(self, values: Sequence[int] = ()) -> None:
        tree = array("q", [0])
        tree.extend(values)
        n = len(tree) - 1
        for i in range(1, n + 1):  # O(n) build: push each node into its parent
            parent = i + (i & -i)
            if parent <= n:
                tree[parent] += tree[i]
        self._tree = tree

    def __len__(self) -> int:
        return len(self._tree) - 1

    def prefix(self, i: int) -> int:
        """Sum of the first ``i`` values."""
        tree, total = self._tree, 0
        while i > 0:
            total += tree[i]
            i &= i - 1
        return total

    def add(self, position: int, delta: int) -> None:
        """Add ``delta`` to the value at 0-based ``position``."""
        tree, i, n = self._tree, position + 1, len(self._tree) - 1
        while i <= n:
            tree[i] += delta
            i += i & -i

    def append(self, value: int) -> None:
        """Append ``value``: its node covers ``(i - lowbit(i), i]``, two prefix sums away."""
        i = len(self._tree)
        low = i & -i
        self._tree.append(value + self.prefix(i - 1) - self.prefix(i - low))


class MaxTree:
    """Range max over a growing float sequence (bottom-up segment tree)."""

    __slots__ = ("_cap", "_n", "_tree")

    def __init__(self, values: Sequence[float] = ()) -> None:
        self._build(values)

    def _build(self, values: Sequence[float]) -> None:
        self._n = len(values)
        cap = 1
        while cap < max(self._n, 1):
            cap *= 2
        tree = array("d", [float("-inf")]) * (2 * cap)
        tree[cap : cap + self._n] = array("d", values)
        for i in range(cap - 1, 0, -1):
            left, right = tree[2 * i], tree[2 * i + 1]
            tree[i] = left if left >= right else right
        self._cap, self._tree = cap, tree

    def append(self, value: float) -> None:
        """Append ``value``; doubles the capacity (an O(n) rebuild) when full."""
        if self._n == self._cap:
            cap, tree = self._cap, self._tree
            self._build([*tree[cap : cap + self._n], value])
            return
        tree, i = self._tree, self._cap + self._n
        self._n += 1
        tree[i] = value
        i //= 2
        while i:
            left, right = tree[2 * i], tree[2 * i + 1]
            tree[i] = left if left >= right else right
            i //= 2

    def query(self, start: int, end: int) -> float:
        """Max of positions ``start .. end - 1`` (-inf when empty)."""
        tree, best = self._tree, float("-inf")
        lo, hi = start + self._cap, end + self._cap
        while lo < hi:
            if lo & 1:
                if tree[lo] > best:
                    best = tree[lo]
                lo += 1
            if hi & 1:
                hi -= 1
                if tree[hi] > best:
                    best = tree[hi]
            lo //= 2
            hi //= 2
        return best


class DistinctFrontier:
    """Distinct values of ``values[l:r]`` for non-decreasing ``r`` (see the module docstring).

    ``values`` is the entity's sequence, shared and appended to by the owner; after an insertion in
    the middle or a compaction the owner builds a new frontier.
    """

    __slots__ = ("_last", "_marks", "_values")

    def __init__(self, values: Sequence[Hashable]) -> None:
        self._values = values
        self._last: dict[Hashable, int] = {}
        self._marks = Fenwick()

    def count(self, start: int, end: int) -> int:
        """Distinct values among positions ``start .. end - 1``."""
        marks = self._marks
        upto = len(marks)
        if end < upto:  # behind the frontier: only a late event's window
            return len(set(self._values[start:end]))
        last, values = self._last, self._values
        for position in range(upto, end):
            value = values[position]
            before = last.get(value)
            if before is not None:
                marks.add(before, -1)
            marks.append(1)
            last[value] = position
        return marks.prefix(end) - marks.prefix(start)


def running_sums(units: Iterable[int]) -> Ints:
    """``[0, u0, u0 + u1, ...]``: exact prefix sums of integer micro-units, packed
    (:func:`packed_ints`)."""
    return packed_ints(accumulate(units, initial=0))
