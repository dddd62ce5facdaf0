"""Prefect flows over a partitioned history, on Dask when one is configured: its features
(:func:`fraudops.offline.partitioned.write_features`) and its batch scores
(:func:`fraudops.serving.batch.score_history`), one task each. Where the task runs follows the
settings (:func:`feature_task_runner`):

- ``dask_address``: an existing cluster (``tls://`` with the client certificate in team mode),
  through ``prefect-dask``'s ``DaskTaskRunner``; the task computes its Dask graph on that
  cluster with ``get_dask_client``;
- ``dask_workers`` > 0: a ``LocalCluster`` of that many processes, started for the flow run
  and closed with it;
- neither: this process alone, the whole history in memory (the single-process engine).

Each way writes the same files, bit for bit.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NONE

from fraudops.offline import partitioned
from fraudops.serving import batch
from fraudops.settings import Settings
from pipelines.dask_cluster import dask_client, feature_task_runner, wants_dask
from pipelines.training import flow_settings


@contextmanager
def _cluster(settings: Settings) -> Iterator[object]:
    """The Dask client a task computes its graph with: its worker's cluster when the task runs
    on one (``DaskTaskRunner``), else a client the settings ask for (a deployment run, whose
    flow keeps Prefect's default task runner)."""
    from distributed import get_worker

    try:
        worker = get_worker()
    except ValueError:  # not on a Dask worker
        with dask_client(settings) as client:
            yield client
        return
    from prefect_dask import get_dask_client

    # the worker's own credentials: prefect-dask connects a new client to the scheduler
    # (its annotation types every keyword argument as a dict)
    credentials: Any = worker.security
    with get_dask_client(security=credentials) as client:
        yield client


@task(name="compute-features", cache_policy=NONE)
def compute_features(
    settings: Settings, history: Path, output: Path, on_dask: bool
) -> partitioned.FeatureOutput:
    """Read, compute and write; on Dask the graph runs on the cluster (:func:`_cluster`)."""
    files = partitioned.history_parts(history)
    if not on_dask:
        return partitioned.write_features_in_process(files, settings.spec, output)
    with _cluster(settings):
        return partitioned.write_features(files, settings.spec, output, settings.feature_shards)


@flow(name="compute-features", flow_run_name="features of {history}")
def feature_flow(history: str, output: str, settings: Settings | None = None) -> dict[str, Any]:
    """Features of the partitioned Parquet history under ``history`` into ``output``.

    In-process callers use :func:`run_features`, which picks the task runner from the
    settings; a deployment run (``settings`` None: read once from the worker's environment)
    reaches the cluster from its task.
    """
    settings = Settings() if settings is None else settings
    on_dask = wants_dask(settings)
    # submitted, not called: a called task runs in the flow's thread, not on the task runner
    result = compute_features.submit(settings, Path(history), Path(output), on_dask).result()
    return {**asdict(result), "path": str(result.path)}


@task(name="score-history", cache_policy=NONE)
def score_history(
    settings: Settings, history: Path, output: Path, version: str | None, on_dask: bool
) -> batch.BatchResult:
    """Load and verify the version here, then score every partition (on Dask: the verified
    model travels inside the graph; workers never read the registry)."""
    from fraudops import registry

    registry.configure_mlflow(settings)
    if not on_dask:
        return batch.score_history(settings, history, output, version)
    with _cluster(settings):
        return batch.score_history(settings, history, output, version, on_dask=True)


@flow(name="batch-score", flow_run_name="score {history}")
def score_flow(
    history: str, output: str, version: str | None = None, settings: Settings | None = None
) -> dict[str, Any]:
    """Scores of ``version`` (default ``@champion``) for the partitioned history under
    ``history``, written to ``output``. In-process callers use :func:`run_batch_score`; a
    deployment run reads its settings from the worker's environment."""
    settings = Settings() if settings is None else settings
    on_dask = wants_dask(settings)
    job = score_history.submit(settings, Path(history), Path(output), version, on_dask)
    result = job.result()
    return {**asdict(result), "output": str(result.output)}


def run_features(settings: Settings, history: Path, output: Path) -> dict[str, Any]:
    """Run :func:`feature_flow` on the task runner the settings ask for."""
    runner = feature_task_runner(settings)
    chosen = feature_flow if runner is None else feature_flow.with_options(task_runner=runner)
    return chosen(settings=flow_settings(settings), history=str(history), output=str(output))


def run_batch_score(
    settings: Settings, history: Path, output: Path, version: str | None = None
) -> dict[str, Any]:
    """Run :func:`score_flow` on the task runner the settings ask for."""
    runner = feature_task_runner(settings)
    chosen = score_flow if runner is None else score_flow.with_options(task_runner=runner)
    return chosen(
        settings=flow_settings(settings), history=str(history), output=str(output), version=version
    )
