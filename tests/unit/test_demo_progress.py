"""The demo's progress bar names the training step running, from the flow's progress lines."""

from __future__ import annotations

import logging

import pytest

from fraudops_cli.demo import _steps_said
from pipelines.training import PROGRESS_LOGGER, plain, with_progress

pytestmark = pytest.mark.unit


def gate(value: int) -> int:  # named like the flow's step
    return value + 1


def test_each_step_reaches_the_bar_with_its_position():
    said: list[tuple[str, int, int]] = []
    with _steps_said(lambda *a: said.append(a), "training the first champion"):
        assert with_progress(plain)(gate)(1) == 2
    assert said == [("training the first champion: gate", 8, 11)]
    assert not logging.getLogger(PROGRESS_LOGGER).handlers  # removed after the block
