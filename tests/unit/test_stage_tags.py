"""A stage is written so that a reader never sees a new stage with the previous one's details."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest

from fraudops.registry import audit
from fraudops.registry import stage as stages

pytestmark = pytest.mark.unit


class RecordingClient:
    """The two registry calls :func:`stages.write` makes on a version, recorded in order."""

    def __init__(self) -> None:
        self.tags: list[str] = []

    def get_model_version(self, name: str, version: str) -> SimpleNamespace:
        return SimpleNamespace(run_id=None, version=version, tags={})

    def set_model_version_tag(self, name: str, version: str, key: str, value: str) -> None:
        self.tags.append(key)


def test_the_stage_tag_is_written_after_its_details(monkeypatch):
    monkeypatch.setattr(audit, "record", lambda *_args, **_kwargs: None)
    client = RecordingClient()
    ended = stages.Stage(
        stage=stages.ROLLED_BACK,
        since=dt.datetime(2026, 12, 7, tzinfo=dt.UTC),
        champion_version="1",
        reason="guardrail: canary alert rate",
    )
    stages.write(client, "fraud-detector", "2", ended)  # type: ignore[arg-type]
    assert client.tags[-1] == stages.TAG
    assert set(client.tags) == set(ended.to_tags()) and len(client.tags) == len(set(client.tags))
