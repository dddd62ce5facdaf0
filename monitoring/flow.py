"""Prefect monitoring flow: drift of the recent window → debounced decision → retraining.

``run_monitoring`` wires the steps of :mod:`fraudops.drift.monitor` once; the flow runs them as
tasks, and, when it decides to retrain, runs the training flow on the most recent labelled
window — as a subflow by default, or with ``run_deployment`` when
``FRAUDOPS_RETRAIN_DEPLOYMENT`` names a deployment on a Prefect server. The gate of the
training flow still decides promotion; the service picks a new champion up by itself.

Settings reach the flow as an object (``settings=``, through
:func:`pipelines.training.flow_settings` so no secret is recorded as a Prefect parameter) and
go down to the retrain as the same object; a deployment run on a worker passes none and the flow
reads :class:`~fraudops.settings.Settings` once from the worker's environment.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NONE

from fraudops.drift import monitor
from fraudops.drift.dashboard import SnapshotLabels
from fraudops.drift.report import quality_snapshot, run_drift
from fraudops.online_promotion import online_gate
from fraudops.settings import Settings

Fn = Callable[..., Any]
logger = logging.getLogger(__name__)


def judge_challenger(settings: Settings) -> dict[str, Any] | None:
    """Run the online gate (:func:`fraudops.online_promotion.online_gate`) on a challenger in
    shadow or canary; its summary, or None when there is none. A failure is logged and
    returned as ``{"error": ...}``: drift monitoring still runs."""
    try:
        run = online_gate(settings)
    except Exception as exc:
        logger.error("online gate failed: %s", exc)
        return {"error": f"{type(exc).__name__}: {exc}"}
    if run is None:
        return None
    ap = run.decision.differences.get("average_precision")
    return {
        "version": run.version,
        "stage": run.stage.stage,
        "outcome": run.outcome,
        "summary": run.decision.summary,
        "frauds": run.decision.frauds,
        "ap_difference": None
        if ap is None
        else {"estimate": ap.estimate, "low": ap.low, "high": ap.high},
    }


_STEPS: tuple[Fn, ...] = (
    judge_challenger,
    monitor.load_champion_reference,
    monitor.current_window,
    monitor.labelled_window,
    run_drift,
    quality_snapshot,
    monitor.assess_risk,
    monitor.estimate_current,
    monitor.decide,
    monitor.record,
)
_TASKS = {
    step: task(name=step.__name__.replace("_", "-"), cache_policy=NONE)(step) for step in _STEPS
}


def as_task(step: Fn) -> Fn:
    """The Prefect task that wraps ``step``."""
    return _TASKS[step]


def plain(step: Fn) -> Fn:
    """``step`` itself: run the monitoring steps without Prefect."""
    return step


def retrain_in_process(settings: Settings, window_end: dt.date) -> dict[str, Any]:
    """Run the training flow (a subflow when called inside a flow) on the latest labelled window.

    The training flow gets ``settings`` itself (every field: home, data, windows, gate), with
    ``test_end`` moved to the last labelled day of the window.
    """
    from pipelines.training import flow_settings, training_flow, with_overrides

    test_end = monitor.last_labelled_day(settings, window_end)
    return training_flow(flow_settings(with_overrides(settings, test_end=test_end)))


#: The event a retrain decision emits in team mode; ``pipelines/prefect.yaml``'s deployment
#: ``train-on-drift`` is triggered by it.
DRIFT_EVENT = "fraudops.drift.detected"


def drift_event_payload(
    settings: Settings, window_end: dt.date, decision: dict[str, Any]
) -> dict[str, Any]:
    """The event's payload: the retrain's ``test_end`` (the last labelled day; the trigger
    passes it to the training flow), the window, the champion and the figures that decided."""
    test_end = monitor.last_labelled_day(settings, window_end)
    return {"test_end": test_end.isoformat(), "window_end": window_end.isoformat(), **decision}


def retrain_by_event(
    settings: Settings, window_end: dt.date, decision: dict[str, Any]
) -> dict[str, Any]:
    """Emit :data:`DRIFT_EVENT` for model ``settings.model_name``; the Prefect server's
    deployment trigger starts the training deployment with the payload's ``test_end``.

    Raises:
        RuntimeError: the event could not be emitted (no events client).
    """
    from prefect.events import emit_event

    event = emit_event(
        event=DRIFT_EVENT,
        resource={
            "prefect.resource.id": f"fraudops.model.{settings.model_name}",
            "prefect.resource.name": settings.model_name,
        },
        payload=drift_event_payload(settings, window_end, decision),
    )
    if event is None:
        raise RuntimeError(f"{DRIFT_EVENT} not emitted: Prefect has no events client here")
    return {"event": DRIFT_EVENT, "event_id": str(event.id)}


def retrain_by_deployment(settings: Settings, window_end: dt.date) -> dict[str, Any]:
    """Start the training deployment on a Prefect server; the worker runs it."""
    from prefect.deployments import run_deployment

    test_end = monitor.last_labelled_day(settings, window_end)
    run: Any = run_deployment(
        settings.retrain_deployment or "",
        parameters={"test_end": test_end.isoformat()},
        timeout=0,
    )
    return {"deployment": settings.retrain_deployment, "flow_run_id": str(run.id)}


def run_monitoring(
    settings: Settings,
    window_end: dt.date | None = None,
    step: Callable[[Fn], Fn] = plain,
    retrain: Callable[[Settings, dt.date], dict[str, Any]] | None = None,
) -> monitor.Decision:
    """One monitoring run; see the module docstring.

    The window is compared on the champion's columns (its recorded features, typed by its
    dataset spec; :func:`fraudops.drift.monitor.champion_columns`).

    Raises:
        MonitorInputError: no champion, no prediction log, empty window or missing columns
            (a champion whose features the log does not hold); nothing is recorded and nothing
            retrains.
    """
    online = step(judge_challenger)(settings)  # first: a promotion changes the champion
    champion = step(monitor.load_champion_reference)(settings)
    current, start, end = step(monitor.current_window)(
        settings, window_end, champion.columns, champion.version
    )
    labelled = step(monitor.labelled_window)(settings, end)
    labels = SnapshotLabels(start, end, champion.version, champion.columns.spec_name)
    snapshot, figures = step(run_drift)(
        champion.reference,
        current,
        threshold=champion.threshold,
        column_drift_share=settings.drift_share_threshold,
        min_labelled=settings.min_labelled_rows,
        labelled=labelled,
        columns=champion.columns,
        labels=labels,
        score_reference=champion.score_reference,
    )
    quality = step(quality_snapshot)(
        labelled, champion.threshold, settings.min_labelled_rows, labels
    )
    history = monitor.read_decisions(settings)
    days = monitor.days_with_rows(current)
    risk = step(monitor.assess_risk)(figures, champion, settings, days)
    estimated = step(monitor.estimate_current)(labelled, current, champion)
    wants_retrain, drifted, reasons = step(monitor.decide)(
        figures, champion, history, end, settings, risk, estimated
    )
    decision = monitor.Decision(
        window_start=start.isoformat(),
        window_end=end.isoformat(),
        champion_version=champion.version,
        drifted=drifted,
        retrain=wants_retrain,
        reasons=reasons,
        figures=figures.as_dict(),
        champion_spec=champion.columns.spec_name,
        days_with_rows=days,
        online_gate=online,
        risk=risk.as_dict(),
        estimated=None if estimated is None else estimated.as_dict(),
    )
    if wants_retrain:
        trigger = retrain or _retrain_trigger(settings, decision)
        try:
            decision.retrain_result = trigger(settings, end)
        except Exception as exc:  # a failed retrain is recorded; the champion stays
            decision.retrain_result = {"error": f"{type(exc).__name__}: {exc}", "promoted": False}
            decision.reasons.append(f"retrain failed: {exc}")
    return step(monitor.record)(settings, decision, snapshot, quality)


def _retrain_trigger(
    settings: Settings, decision: monitor.Decision
) -> Callable[[Settings, dt.date], dict[str, Any]]:
    """How a retrain decision retrains: the event (team mode), a deployment run, a subflow."""
    if settings.retrain_event:
        figures = {
            "champion_version": decision.champion_version,
            "window_start": decision.window_start,
            "drift_share": decision.figures.get("drift_share"),
            "drifted_columns": decision.figures.get("drifted_columns"),
            "reasons": decision.reasons,
        }
        return lambda s, end: retrain_by_event(s, end, figures)
    return retrain_by_deployment if settings.retrain_deployment else retrain_in_process


def _run_name() -> str:
    """The flow run's name: the window it monitors (Prefect's default is two random words)."""
    from prefect.runtime import flow_run

    end = flow_run.parameters.get("window_end")
    return f"monitor window to {end}" if end else "monitor latest window"


@flow(name="monitor-fraud-model", flow_run_name=_run_name)
def monitoring_flow(
    window_end: str | None = None,
    settings: Settings | None = None,
    steps_as_tasks: bool = True,
) -> dict[str, Any]:
    """Scheduled or on-demand drift check; retrains through the training flow when needed.

    Args:
        window_end: last day of the monitored window (ISO date); None: the log's last day.
        settings: the configuration, from in-process callers through
            :func:`pipelines.training.flow_settings` (no secret becomes a recorded parameter).
            None (a deployment run on a worker) reads ``Settings()`` once, here, from the
            worker's environment.
        steps_as_tasks: each step a Prefect task run (its own state and logs); False runs
            them as plain calls inside the flow run (the demo's daily runs: about 4 s less
            each on two cores, the flow run, its logs, tags and artifact still recorded).
    """
    if settings is None:
        settings = Settings()
    end = None if window_end is None else dt.date.fromisoformat(window_end)
    decision = run_monitoring(settings, end, step=as_task if steps_as_tasks else plain)
    create_markdown_artifact(
        key="drift-decision",
        markdown=(
            f"## {'Retrain' if decision.retrain else 'No retrain'}: window "
            f"{decision.window_start}..{decision.window_end}, champion v{decision.champion_version}"
            f" (spec {decision.champion_spec})\n\n"
            + "\n".join(f"- {r}" for r in decision.reasons)
            + f"\n\nReport: `{decision.report_html}`\n\n```json\n"
            + json.dumps(decision.figures, indent=2, default=str)[:20_000]
            + "\n```\n"
        ),
        description="Drift figures and the retraining decision",
    )
    return json.loads(json.dumps(decision.as_dict(), default=str))
