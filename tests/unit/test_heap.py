"""The service's heap settling: the cycle collector skips what the process holds for long,
and a model replaced after a settle is still freed (at the settle after its swap)."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from fraudops.serving.heap import SettleAfterSwap, settle_heap, widen_young_generation

pytestmark = pytest.mark.unit


class Node:
    """A model stand-in: an object in a reference cycle, as fitted models often are."""

    def __init__(self) -> None:
        self.me = self


@pytest.fixture()
def unfrozen() -> Iterator[None]:
    yield
    gc.unfreeze()  # the rest of the test process is collected as before


def test_a_settled_object_is_skipped_by_collections_until_the_next_settle(unfrozen):
    held = Node()
    settle_heap()
    assert gc.get_freeze_count() > 0
    assert not any(o is held for o in gc.get_objects())  # collections no longer visit it
    watch = weakref.ref(held)
    del held
    gc.collect()
    assert watch() is not None  # a frozen cycle is not collected...
    settle_heap()
    assert watch() is None  # ...until the next settle unfreezes and collects first


def test_garbage_cycles_are_collected_before_the_freeze(unfrozen):
    watch = weakref.ref(Node())
    settle_heap()
    assert watch() is None


def test_a_swap_settles_at_the_following_poll_not_at_the_swap():
    calls: list[int] = []
    after = SettleAfterSwap(lambda: calls.append(1), loaded=("v1", None))
    assert not after.before_poll()
    after.after_poll(("v1", None))  # nothing changed
    assert not after.before_poll()
    after.after_poll(("v2", None))  # the poll swapped the champion
    assert calls == []  # a request may still hold v1
    assert after.before_poll() and calls == [1]
    after.after_poll(("v2", None))
    assert not after.before_poll() and calls == [1]  # once per swap
    after.after_poll(("v2", "c1"))  # a challenger loaded (or dropped) counts too
    assert after.before_poll() and calls == [1, 1]


def test_the_young_generation_threshold_is_set_and_the_older_ones_kept():
    before = gc.get_threshold()
    gc.set_threshold(700, 11, 12)  # older thresholds unlike CPython's defaults
    try:
        assert widen_young_generation(50_000) == (50_000, 11, 12)
        assert gc.get_threshold() == (50_000, 11, 12)
        with pytest.raises(ValueError, match="at least 1"):
            widen_young_generation(0)  # 0 would turn automatic collection off altogether
        assert gc.get_threshold()[0] == 50_000
    finally:
        gc.set_threshold(*before)
