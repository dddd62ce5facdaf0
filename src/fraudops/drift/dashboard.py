"""The Evidently UI project's dashboard, created by code, and what each snapshot carries.

Every monitoring run's snapshot is stamped with its window's end (not the wall clock of the
run), named after its window and champion, and tagged ``champion:v<N>``, ``day:<window end>``
and ``decision:<retrain|drift|no-drift>``; its metadata hold the window and the dataset spec.
The project's panels (added once each, found by title) plot from those snapshots:

- the share of drifted columns per window, with the retrain threshold in the subtitle;
- prediction drift: the score's drift value per window;
- the windows that decided a retrain (the drift share of snapshots tagged
  ``decision:retrain``: one bar per retrain), and those whose retrain promoted a new champion
  (tagged ``promoted`` too);
- per champion, its own drift share (snapshots tagged with its version), added when a
  champion is first seen;
- the labelled window's recall at the alert threshold and ROC AUC, from the quality snapshots
  (tagged ``quality``; :func:`fraudops.drift.report.quality_snapshot`), one label delay behind
  the drift windows.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

#: Tag prefixes of a snapshot.
CHAMPION_TAG, DAY_TAG, DECISION_TAG = "champion:v", "day:", "decision:"
DRIFT_SHARE_PANEL = "Drift share per window"
SCORE_DRIFT_PANEL = "Prediction drift: score"
RETRAIN_PANEL = "Windows that decided a retrain"
PROMOTION_PANEL = "Retrains that promoted a new champion"
#: Tag of a snapshot whose run's retrain promoted its version.
PROMOTED_TAG = "promoted"
RECALL_PANEL = "Labelled recall at the alert threshold"
ROC_AUC_PANEL = "Labelled ROC AUC"
#: Tag of the labelled-quality snapshots.
QUALITY_TAG = "quality"


@dataclass(frozen=True)
class SnapshotLabels:
    """What a monitoring run's snapshot carries besides its metrics.

    Attributes:
        window_start, window_end: the window's days; champion: its version; spec: its
            dataset spec's name.
    """

    window_start: dt.date
    window_end: dt.date
    champion: str
    spec: str

    def run_kwargs(self) -> dict[str, Any]:
        """``timestamp``, ``name``, ``tags`` and ``metadata`` of Evidently's ``Report.run``."""
        return {
            "timestamp": dt.datetime.combine(self.window_end, dt.time(23, 59, 59)),
            "name": f"drift {self.window_start}..{self.window_end}, champion v{self.champion}",
            "tags": [f"{CHAMPION_TAG}{self.champion}", f"{DAY_TAG}{self.window_end}"],
            "metadata": {
                "window_start": self.window_start.isoformat(),
                "window_end": self.window_end.isoformat(),
                "champion": self.champion,
                "spec": self.spec,
            },
        }


def tag_decision(snapshot: Any, verdict: str, promoted: bool = False) -> None:
    """Add ``decision:<verdict>`` (and ``promoted`` when the run's retrain promoted its
    version) to a snapshot's tags (the decision follows the metrics).

    Evidently 0.7 has no public setter for a run's tags once it ran; its ``_tags`` list is
    what ``Workspace.add_run`` stores (pinned below 0.8; ``tests/unit/test_dashboard.py``
    fails if that changes).
    """
    for tag in [f"{DECISION_TAG}{verdict}", *([PROMOTED_TAG] if promoted else [])]:
        if tag not in snapshot._tags:
            snapshot._tags.append(tag)


def _panels(champion: str, threshold: float) -> list[Any]:
    from evidently.sdk.models import DashboardPanelPlot, PanelMetric

    share = {"value_type": "share"}
    return [
        DashboardPanelPlot(
            title=DRIFT_SHARE_PANEL,
            subtitle=f"share of monitored columns that drifted; a window drifts above "
            f"{threshold:g}",
            size="full",
            values=[
                PanelMetric(legend="drift share", metric="DriftedColumnsCount", metric_labels=share)
            ],
            plot_params={"plot_type": "line"},
        ),
        DashboardPanelPlot(
            title=SCORE_DRIFT_PANEL,
            subtitle="drift of the fraud score (normed Wasserstein distance; drifts above 0.1)",
            size="half",
            values=[
                PanelMetric(
                    legend="score drift", metric="ValueDrift", metric_labels={"column": "score"}
                )
            ],
            plot_params={"plot_type": "line"},
        ),
        DashboardPanelPlot(
            title=RETRAIN_PANEL,
            subtitle="the drift share of each window whose decision was to retrain",
            size="half",
            values=[
                PanelMetric(
                    legend="retrain",
                    metric="DriftedColumnsCount",
                    metric_labels=share,
                    tags=[f"{DECISION_TAG}retrain"],
                )
            ],
            plot_params={"plot_type": "bar"},
        ),
        DashboardPanelPlot(
            title=PROMOTION_PANEL,
            subtitle="the drift share of each window whose retrain the gate promoted",
            size="half",
            values=[
                PanelMetric(
                    legend="promoted",
                    metric="DriftedColumnsCount",
                    metric_labels=share,
                    tags=[PROMOTED_TAG],
                )
            ],
            plot_params={"plot_type": "bar"},
        ),
        DashboardPanelPlot(
            title=RECALL_PANEL,
            subtitle="share of labelled frauds scored at or above the champion's threshold, "
            "in the window one label delay before each run",
            size="half",
            values=[PanelMetric(legend="recall", metric="Recall", tags=[QUALITY_TAG])],
            plot_params={"plot_type": "line"},
        ),
        DashboardPanelPlot(
            title=ROC_AUC_PANEL,
            subtitle="ROC AUC of the score on the labelled window (average precision: in "
            "each report's header)",
            size="half",
            values=[PanelMetric(legend="ROC AUC", metric="RocAuc", tags=[QUALITY_TAG])],
            plot_params={"plot_type": "line"},
        ),
        DashboardPanelPlot(
            title=f"Drift share, champion v{champion}",
            subtitle=f"the windows monitored while v{champion} was the champion",
            size="half",
            values=[
                PanelMetric(
                    legend=f"v{champion}",
                    metric="DriftedColumnsCount",
                    metric_labels=share,
                    tags=[f"{CHAMPION_TAG}{champion}"],
                )
            ],
            plot_params={"plot_type": "line"},
        ),
    ]


def ensure_panels(project: Any, champion: str, threshold: float) -> list[str]:
    """Add the panels the project lacks (by title); returns the titles added."""
    have = {panel.title for panel in project.dashboard.model().panels}
    added = []
    for panel in _panels(champion, threshold):
        if panel.title not in have:
            project.dashboard.add_panel(panel)
            added.append(panel.title)
    return added
