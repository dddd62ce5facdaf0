"""Where the offline flows' Dask work runs, from the settings: an existing cluster
(``dask_address``, TLS with the client certificate in team mode), a ``LocalCluster`` of
``dask_workers`` processes started for the run, or none (this process alone)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from prefect.task_runners import TaskRunner

from fraudops.settings import Settings

#: A local cluster's options: worker processes of one thread, no dashboard, and TLS with
#: certificates made for the run (``security=True``), so no other local user can connect to
#: its scheduler and run code there.
LOCAL_CLUSTER: dict[str, Any] = {
    "threads_per_worker": 1,
    "processes": True,
    "dashboard_address": None,
    "security": True,
}


def wants_dask(settings: Settings) -> bool:
    """Whether the settings ask for Dask (an address, or local worker processes)."""
    return bool(settings.dask_address or settings.dask_workers)


def feature_task_runner(settings: Settings) -> TaskRunner[Any] | None:
    """The Dask task runner the settings ask for, or None (Prefect's default, one process).

    Raises:
        ValueError: never for valid settings (their validator checks the TLS files); the
            client's own errors (unreachable scheduler, refused certificate) surface when the
            flow starts.
    """
    from prefect_dask import DaskTaskRunner

    if settings.dask_address:
        return DaskTaskRunner(
            address=settings.dask_address, client_kwargs={"security": dask_security(settings)}
        )
    if settings.dask_workers:
        return DaskTaskRunner(
            cluster_class="distributed.LocalCluster",
            cluster_kwargs=LOCAL_CLUSTER | {"n_workers": settings.dask_workers},
        )
    return None


def dask_security(settings: Settings) -> Any:
    """``distributed.Security`` with the client certificate, encryption required; None
    without TLS files (a ``tcp://`` scheduler, allowed with a local registry only)."""
    if settings.dask_tls_ca_file is None:
        return None
    from distributed import Security

    return Security(
        tls_ca_file=str(settings.dask_tls_ca_file),
        tls_client_cert=str(settings.dask_tls_cert),
        tls_client_key=str(settings.dask_tls_key),
        require_encryption=True,
    )


@contextmanager
def dask_client(settings: Settings) -> Iterator[Any]:
    """A ``distributed.Client`` the settings ask for, current while the block runs (Dask
    collections computed inside use it); a local cluster is closed with it.

    Raises:
        ValueError: the settings ask for no Dask (:func:`wants_dask` is False).
        OSError: the scheduler cannot be reached (``distributed``'s timeout).
    """
    from distributed import Client, LocalCluster

    if settings.dask_address:
        with Client(settings.dask_address, security=dask_security(settings)) as client:
            yield client
        return
    if not settings.dask_workers:
        raise ValueError("no Dask cluster configured: set FRAUDOPS_DASK_ADDRESS or _DASK_WORKERS")
    with (
        LocalCluster(**LOCAL_CLUSTER, n_workers=settings.dask_workers) as cluster,
        Client(cluster) as client,
    ):
        yield client
