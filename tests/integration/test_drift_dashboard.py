"""The Evidently project's dashboard: panels created by code, snapshots stamped with their
window's end and tagged with champion, day and decision, and the panels' series built from
them by Evidently's own storage."""

from __future__ import annotations

import asyncio
import datetime as dt

import numpy as np
import pandas as pd
import pytest

from fraudops.drift.dashboard import (
    DRIFT_SHARE_PANEL,
    PROMOTION_PANEL,
    QUALITY_TAG,
    RECALL_PANEL,
    RETRAIN_PANEL,
    ROC_AUC_PANEL,
    SCORE_DRIFT_PANEL,
    SnapshotLabels,
)
from fraudops.drift.monitor import Decision, _add_to_workspace, _workspace_project, workspace_path
from fraudops.drift.report import DriftColumns, quality_snapshot, run_drift
from fraudops.settings import Settings

pytestmark = pytest.mark.integration
COLUMNS = DriftColumns(features=("amount",), spec_name="test")


def _window(rng, shift: float) -> pd.DataFrame:
    return pd.DataFrame({"amount": rng.normal(shift, 1, 2_000), "score": rng.random(2_000)})


def _labelled(rng, frauds_caught: float) -> pd.DataFrame:
    """1,000 labelled rows, 100 frauds: ``frauds_caught`` of them scored 0.9, the rest 0.1."""
    labels = np.repeat([1, 0], [100, 900])
    caught = np.arange(1000) < round(100 * frauds_caught)
    return pd.DataFrame({"score": np.where(caught, 0.9, 0.1), "is_fraud": labels})


def _decision(end: dt.date, champion: str, retrain: bool, drifted: bool) -> Decision:
    """A recorded decision; a retrain promotes (v2 follows v1)."""
    return Decision(
        window_start=(end - dt.timedelta(days=6)).isoformat(),
        window_end=end.isoformat(),
        champion_version=champion,
        drifted=drifted,
        retrain=retrain,
        reasons=[],
        figures={},
        retrain_result={"promoted": True, "version": "2"} if retrain else None,
    )


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    settings = Settings(home=tmp_path_factory.mktemp("dashboard"))
    rng = np.random.default_rng(0)
    reference = _window(rng, 0.0)
    days = [dt.date(2018, 6, d) for d in (7, 8, 9)]
    for day, shift, champion, retrain in zip(
        days, (0.0, 3.0, 3.0), ("1", "1", "2"), (False, True, False), strict=True
    ):
        labels = SnapshotLabels(day - dt.timedelta(days=6), day, champion, "test")
        snapshot, _ = run_drift(
            reference, _window(rng, shift), threshold=0.5, columns=COLUMNS, labels=labels
        )
        _add_to_workspace(settings, snapshot, _decision(day, champion, retrain, shift > 0))
        caught = {7: None, 8: 0.8, 9: 0.6}[day.day]  # day 7: too few labels, no snapshot
        labelled = _labelled(rng, caught) if caught else _labelled(rng, 0.5).head(10)
        quality = quality_snapshot(labelled, 0.5, 500, labels)
        assert (quality is None) == (caught is None)
        if quality is not None:
            _add_to_workspace(settings, quality)
    from evidently.ui.service.storage.local.base import InMemoryDataStorage

    path = str(workspace_path(settings))
    workspace, project = _workspace_project(path)
    # what the UI serves: Evidently's own storage, read from the files
    return InMemoryDataStorage(path=path), workspace.get_project(project.id), days


def test_the_dashboard_has_its_panels_once_each_and_one_per_champion(workspace):
    _, project, _ = workspace
    titles = [panel.title for panel in project.dashboard.model().panels]
    assert titles == [
        DRIFT_SHARE_PANEL,
        SCORE_DRIFT_PANEL,
        RETRAIN_PANEL,
        PROMOTION_PANEL,
        RECALL_PANEL,
        ROC_AUC_PANEL,
        "Drift share, champion v1",
        "Drift share, champion v2",
    ]


def test_snapshots_carry_the_window_end_and_champion_day_and_decision_tags(workspace):
    storage, project, days = workspace
    snapshots = sorted(storage.state.snapshots[project.id].values(), key=lambda s: s.timestamp)
    quality = [s for s in snapshots if QUALITY_TAG in s.tags]
    assert [sorted(s.tags) for s in quality] == [
        ["champion:v1", "day:2018-06-08", "quality"],
        ["champion:v2", "day:2018-06-09", "quality"],
    ]
    snapshots = [s for s in snapshots if QUALITY_TAG not in s.tags]
    assert [s.timestamp for s in snapshots] == [
        dt.datetime.combine(day, dt.time(23, 59, 59)) for day in days
    ]
    assert [sorted(s.tags) for s in snapshots] == [
        ["champion:v1", "day:2018-06-07", "decision:no-drift"],
        ["champion:v1", "day:2018-06-08", "decision:retrain", "promoted"],
        ["champion:v2", "day:2018-06-09", "decision:drift"],
    ]
    assert snapshots[0].metadata["window_start"] == "2018-06-01"


def test_each_panel_plots_the_snapshots_it_selects(workspace):
    storage, project, _ = workspace
    panels = {panel.title: panel for panel in project.dashboard.model().panels}

    def points(title: str) -> list[float]:
        from evidently.ui.service.base import SeriesFilter

        panel = panels[title]
        filters = [
            SeriesFilter(
                tags=v.tags, metadata=v.metadata, metric=v.metric, metric_labels=v.metric_labels
            )
            for v in panel.values
        ]
        series = asyncio.run(storage.get_data_series(project.id, filters, None, None))
        return [value for s in series.series for value in s.values]

    share = points(DRIFT_SHARE_PANEL)
    assert len(share) == 3 and share[0] == 0 and share[1] == share[2] == 0.5
    assert points(RETRAIN_PANEL) == [0.5]
    assert points(PROMOTION_PANEL) == [0.5]
    assert len(points("Drift share, champion v1")) == 2
    assert len(points(SCORE_DRIFT_PANEL)) == 3
    assert points(RECALL_PANEL) == pytest.approx([0.8, 0.6])  # frauds at or above 0.5
    assert len(points(ROC_AUC_PANEL)) == 2
