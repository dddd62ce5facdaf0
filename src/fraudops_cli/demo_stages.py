"""The demo's staged promotion: challengers go through shadow and the online gate.

The demo runs with ``promotion: staged``: a version that passes the offline gate becomes
``@challenger`` in shadow, the service scores it beside the champion, and each day's monitoring
run judges it on the paired, labelled events first (:mod:`fraudops.online_promotion`). To show
both outcomes on clean data, the demo adds two things a team would do:
- on the first replayed day it stages by hand (as ``fraudops stage N shadow`` does) a
  label-free isolation forest the offline gate refused: the online gate rejects it once a week
  of labels has arrived;
- scheduled retrains (every four weeks from day 14, as the weekly deployment would, when no
  challenger is live) whose versions, when the offline gate passes them, enter shadow and are
  promoted or rejected online.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pandas as pd

from fraudops import registry
from fraudops.drift import monitor
from fraudops.registry import stage as stages
from fraudops.settings import Settings


@dataclass(frozen=True)
class StagePlan:
    """Which replay days (1 = the first) stage challengers.

    Attributes:
        weak_challenger_day: the day a label-free isolation forest is staged by hand (None: not).
        retrain_days: days of a scheduled retrain (skipped while a challenger is live).
    """

    weak_challenger_day: int | None = 1
    retrain_days: tuple[int, ...] = (14, 42, 70, 98)


def stage_weak_challenger(first: Settings) -> str:
    """Train an isolation forest on the first champion's window and put it in shadow by hand
    (the offline gate refuses it: it never saw a label); its version."""
    from pipelines.training import flow_settings, training_flow, with_overrides

    result = training_flow(flow_settings(with_overrides(first, model_kind="isolation_forest")))
    version = str(result["version"])
    if result.get("stage") is None:
        client = registry.client_for(first)
        stages.enter(
            client,
            first.model_name,
            version,
            stages.SHADOW,
            reason="demo: a label-free isolation forest, staged by hand to be judged online",
        )
    return version


def live_challenger(settings: Settings) -> bool:
    """A challenger is in shadow or canary."""
    return stages.current(registry.client_for(settings), settings.model_name) is not None


def scheduled_retrain(settings: Settings, day: dt.date) -> dict[str, Any]:
    """The training flow on the latest labelled window (as a scheduled deployment run)."""
    from pipelines.training import flow_settings, training_flow, with_overrides

    test_end = monitor.last_labelled_day(settings, day)
    return training_flow(flow_settings(with_overrides(settings, test_end=test_end)))


def week_stages(in_week: pd.DataFrame) -> dict[str, Any]:
    """The week table's stage columns from a week's monitoring decisions (their ``online_gate``
    entries): each challenger judged that week with its last state (``shadow``/``canary``
    while waiting, else ``promoted``/``rejected``) and its last paired AP difference with its
    interval (challenger − champion), in order, comma-separated."""
    entries = in_week.get("online_gate", pd.Series(dtype=object))
    last: dict[str, dict[str, Any]] = {}
    for gate in entries:
        if isinstance(gate, dict) and "version" in gate:
            last.pop(gate["version"], None)  # re-inserted: ordered by its last judgement
            last[gate["version"]] = gate
    if not last:
        return {"stage": "-", "challenger": "-", "paired_ap_difference": "-"}

    def interval(gate: dict[str, Any]) -> str:
        ap = gate.get("ap_difference")
        return "-" if not ap else f"{ap['estimate']:+.3f} [{ap['low']:+.3f}, {ap['high']:+.3f}]"

    return {
        "stage": ", ".join(
            g["stage"] if g["outcome"] == "waiting" else g["outcome"] for g in last.values()
        ),
        "challenger": ", ".join(f"v{v}" for v in last),
        "paired_ap_difference": ", ".join(interval(g) for g in last.values()),
    }
