"""Prefect training flow: wires the steps of :mod:`fraudops.training` as tasks.

``run_training`` is the single wiring of the steps. The flow runs it with every step as a
Prefect task (retries on the registry steps); tests and benchmarks run it with plain calls.

Settings reach the flow as an object: in-process callers (the CLI, the demo, the monitoring
flow's retrain) pass ``settings=``; a deployment run on a worker passes none and the flow reads
:class:`~fraudops.settings.Settings` once from the worker's environment. See
:func:`flow_settings` for what of the object Prefect records.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NONE

from fraudops import partitioned_training, registry, report_step, training
from fraudops.data import history
from fraudops.settings import Settings
from pipelines.dask_cluster import dask_client, wants_dask

Fn = Callable[..., Any]

#: Fields no flow reads, reset before a Settings object becomes a flow parameter: Prefect stores
#: a run's parameters in its database and shows them in its UI.
_NOT_FOR_FLOWS: dict[str, Any] = {
    "api_token": None,
    "label_token": None,
    "hash_secret": None,
    "feature_store": "memory",
}

#: Steps that talk to the registry: retried, since a tracking server may blip.
_REGISTRY_STEPS: tuple[Callable[..., Any], ...] = (
    registry.configure_mlflow,
    training.champion_on_holdout,
    training.register_challenger,
    report_step.record_report,
    training.apply_decision,
)
_STEPS: tuple[Callable[..., Any], ...] = (
    history.load,
    training.validate,
    training.build_dataset,
    partitioned_training.build_partitioned_dataset,
    training.fit_challenger,
    training.evaluate_holdout,
    training.gate,
    *_REGISTRY_STEPS,
)
_TASKS = {
    step: task(
        name=step.__name__.replace("_", "-"),
        cache_policy=NONE,  # inputs are large frames: hashing them would cost seconds
        retries=3 if step in _REGISTRY_STEPS else 0,
        retry_delay_seconds=[1.0, 4.0, 10.0] if step in _REGISTRY_STEPS else 0,
    )(step)
    for step in _STEPS
}


def as_task(step: Fn) -> Fn:
    """The Prefect task that wraps ``step``."""
    return _TASKS[step]


def plain(step: Fn) -> Fn:
    """``step`` itself: run the pipeline without Prefect."""
    return step


#: The step names of one run, in order, as progress lines name them.
PROGRESS = (
    "load",
    "validate",
    "build_dataset",
    "fit_challenger",
    "evaluate_holdout",
    "configure_mlflow",
    "champion_on_holdout",
    "register_challenger",
    "gate",
    "record_report",
    "apply_decision",
)
#: Steps that stand in for another in the progress count (on Dask: load, validate and build).
_SAME_PLACE = {"build_partitioned_dataset": "build_dataset"}
#: The logger of the progress lines (the CLI and the demo show them).
PROGRESS_LOGGER = "fraudops.progress"
progress_log = logging.getLogger(PROGRESS_LOGGER)


def with_progress(step: Callable[[Fn], Fn]) -> Callable[[Fn], Fn]:
    """``step``, logging "training: <step> (i/n)" at INFO as each step starts (the CLI prints
    them; elsewhere they are ordinary log records)."""

    def wrapped(fn: Fn) -> Fn:
        name = fn.__name__
        place = _SAME_PLACE.get(name, name)
        position = PROGRESS.index(place) + 1 if place in PROGRESS else 0
        called = step(fn)

        def run(*args: Any, **kwargs: Any) -> Any:
            shown = name.replace("_", " ")
            progress_log.info("training: %s (%d/%d)", shown, position, len(PROGRESS))
            return called(*args, **kwargs)

        return run

    return wrapped


def run_training(settings: Settings, step: Callable[[Fn], Fn] = plain) -> training.TrainingResult:
    """Train, evaluate against the champion on the same holdout, register, gate, alias.

    With Dask configured (``dask_address`` or ``dask_workers``) the history under the data
    path stays partitioned: :func:`fraudops.partitioned_training.build_partitioned_dataset`
    replaces load, validate and build (the same dataset, from a cluster).

    Args:
        settings: the run's configuration.
        step: how each step is called: :func:`plain` or :func:`as_task`.

    Returns:
        The run's summary. The ``@champion`` alias moved only if ``result.promoted``.

    Raises:
        DataSourceError, DataValidationError, SplitError, EvaluationError, UnknownModelError:
            bad input (unreadable file, contract breach, a single class in the file or in a
            window, too short a history), raised by the steps before ``configure_mlflow``:
            no run is started, no version registered, no alias moved.
    """
    step = with_progress(step)
    started_ms = int(time.time() * 1000)  # the MLflow run spans the training, not its logging
    if wants_dask(settings):  # the history stays partitioned: features, split, sample on Dask
        with dask_client(settings):
            dataset = step(partitioned_training.build_partitioned_dataset)(settings)
    else:
        transactions = step(training.validate)(step(history.load)(settings), settings.spec)
        dataset = step(training.build_dataset)(transactions, settings)
    model = step(training.fit_challenger)(dataset, settings)
    challenger = step(training.evaluate_holdout)(model, dataset, settings)

    experiment_id = step(registry.configure_mlflow)(settings)
    client = registry.client_for(settings)
    champion_version, champion = step(training.champion_on_holdout)(client, dataset, settings)
    run_id, version = step(training.register_challenger)(
        experiment_id, client, model, dataset, challenger, settings, started_ms
    )
    decision = step(training.gate)(challenger, champion, champion_version, settings)
    step(report_step.record_report)(
        client, run_id, version, model, dataset, challenger, champion, decision, settings
    )
    decision, previous = step(training.apply_decision)(client, run_id, version, decision, settings)
    return training.TrainingResult(
        run_id=run_id,
        model_name=settings.model_name,
        version=version,
        model_kind=settings.model_kind,
        windows=dataset.windows.as_tags(),
        metrics=challenger.metrics.as_dict(),
        champion_metrics=None if champion is None else champion.metrics.as_dict(),
        gate=decision.as_dict(),
        promoted=decision.promote,
        champion_version=version if decision.promote else champion_version,
        previous_champion=previous,
        reasons=decision.reasons,
        stage=decision.extra.get("stage"),
    )


def _verdict(result: training.TrainingResult) -> str:
    if result.promoted:
        return "promoted"
    return f"passed, @challenger in {result.stage}" if result.stage else "kept champion"


def _link_runs(settings: Settings, run_id: str) -> None:
    """Tag the MLflow run with this Prefect flow run (its id and, on a server, its page)."""
    from prefect.runtime import flow_run

    url = flow_run.ui_url  # "None/flow-runs/..." on the ephemeral API, which has no UI
    links = {
        "prefect.flow_run_id": flow_run.id,
        "prefect.flow_run_url": url if url and url.startswith("http") else None,
    }
    client = registry.client_for(settings)
    for key, value in links.items():
        if value:
            client.set_tag(run_id, key, str(value))


def flow_settings(settings: Settings) -> Settings:
    """``settings`` as a flow parameter: the same object without the secrets flows never read.

    Prefect records a flow run's parameters (JSON) in its database and shows them in the UI.
    ``api_token``, ``label_token`` and ``hash_secret`` would be masked there (``SecretStr``),
    but neither the training nor the monitoring flow reads them, nor the feature store URL
    (which may embed a Redis password), so they are dropped rather than masked. The model
    signing key stays (training signs with it): a ``SecretStr``, it is masked in the record.
    The tracking URI stays (the flows need it): keep credentials out of it (MLflow reads them
    from ``MLFLOW_TRACKING_USERNAME``/``MLFLOW_TRACKING_PASSWORD``).
    """
    return settings.model_copy(update=_NOT_FOR_FLOWS)


def with_overrides(settings: Settings, **overrides: Any) -> Settings:
    """A validated copy of ``settings`` with the non-None ``overrides`` applied.

    Raises:
        pydantic.ValidationError: an override is not a valid value of its field.
    """
    given = {k: v for k, v in overrides.items() if v is not None}
    if not given:
        return settings
    fields = {name: getattr(settings, name) for name in Settings.model_fields}
    return Settings(**{**fields, **given})


def _run_name() -> str:
    """The flow run's name: what it trains on (Prefect's default is two random words)."""
    from prefect.runtime import flow_run

    given = flow_run.parameters
    settings = given.get("settings")
    kind = given.get("model_kind") or getattr(settings, "model_kind", None)
    end = given.get("test_end") or getattr(settings, "test_end", None)
    what = f"train {kind}" if kind else "train"
    return f"{what}, holdout ending {end}" if end else f"{what} on the latest window"


@flow(name="train-fraud-model", flow_run_name=_run_name)
def training_flow(
    settings: Settings | None = None,
    data_path: str | None = None,
    model_kind: str | None = None,
    train_days: int | None = None,
    train_start: str | None = None,
    test_end: str | None = None,
) -> dict[str, Any]:
    """Scheduled or on-demand training: train, gate against ``@champion``, register.

    Args:
        settings: the run's configuration, passed by in-process callers through
            :func:`flow_settings` (no secret is recorded as a parameter). None (a deployment
            run on a worker) reads ``Settings()`` once, here, from the worker's environment.
        data_path, model_kind, train_days, train_start, test_end: overrides of the same
            fields, for deployment runs and operators (``run_deployment(parameters=...)``).
    """
    settings = with_overrides(
        Settings() if settings is None else settings,
        data_path=data_path,
        model_kind=model_kind,
        train_days=train_days,
        train_start=train_start,
        test_end=test_end,
    )
    result = run_training(settings, step=as_task)
    _link_runs(settings, result.run_id)
    create_markdown_artifact(
        key="gate-decision",
        markdown=(
            f"## Gate: {_verdict(result)}"
            f" ({settings.model_name} v{result.version}, MLflow run {result.run_id})\n\n"
            + "\n".join(f"- {reason}" for reason in result.reasons)
            + f"\n\n```json\n{json.dumps(result.gate, indent=2)}\n```\n"
        ),
        description="Champion/challenger gate decision and figures",
    )
    return json.loads(result.as_json())
