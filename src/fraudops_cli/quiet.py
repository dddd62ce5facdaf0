"""A quiet, fail-fast command line: third-party chatter off, one ``error:`` line on failure,
and the preconditions of a command checked before any flow or server starts.

Without ``--verbose``, :func:`quiet` sets the log levels Prefect and MLflow read at import
(their own environment variables, as ``_point_tools_home`` does for their folders) and
silences MLflow's known pickle warning, until the command ends; :func:`run` (the entry point)
turns an unexpected exception into one line naming its type (the traceback only with
``--verbose``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable, Iterator

from fraudops.settings import Settings

#: The third-party log levels of a quiet command (Prefect's flow-run failures are ERROR with a
#: traceback: the command says the error in one line itself).
QUIET_LEVELS = {
    "PREFECT_LOGGING_LEVEL": "CRITICAL",
    "MLFLOW_LOGGING_LEVEL": "ERROR",
    # read by dask when it is imported, in this process and the local cluster's workers
    "DASK_LOGGING__DISTRIBUTED": "error",
}
#: Loggers of libraries that log INFO lines a user does not need.
NOISY_LOGGERS = ("mlflow", "alembic", "httpx", "urllib3", "bentoml", "evidently", "distributed")


def quiet() -> Callable[[], None]:
    """Silence third-party logs and warnings for this command; one line for a crash.

    Returns:
        A function that restores what it changed (the command calls it when it ends, so an
        in-process caller, a test say, gets its environment back).
    """
    import warnings

    unset = [key for key in QUIET_LEVELS if key not in os.environ]
    levels = {name: logging.getLogger(name).level for name in NOISY_LOGGERS}
    filters = list(warnings.filters)
    for key in unset:
        os.environ[key] = QUIET_LEVELS[key]
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=".*pickle or cloudpickle format.*")
    warnings.filterwarnings("ignore", category=FutureWarning)

    def restore() -> None:
        for key in unset:
            os.environ.pop(key, None)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
        warnings.filters[:] = filters  # type: ignore[index]

    return restore


def run(app: Callable[[], object]) -> None:
    """Run the command line; without ``--verbose`` an unexpected exception is one line and
    exit code 1 (an expected failure already said its ``error:`` line and exited 2)."""
    if {"--verbose", "-v"} & set(sys.argv[1:]):
        app()
        return
    try:
        app()
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        raise SystemExit(130) from None
    except Exception as exc:
        sys.stderr.write(
            f"error: unexpected {type(exc).__name__}: {exc} (run with --verbose for the "
            "traceback)\n"
        )
        raise SystemExit(1) from None


@contextlib.contextmanager
def progress() -> Iterator[None]:
    """Print the flows' progress lines on stderr while the block runs."""
    from pipelines.training import PROGRESS_LOGGER

    logger = logging.getLogger(PROGRESS_LOGGER)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    level, propagate = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate


class Unmet(Exception):
    """A precondition of a command does not hold; the message says what to do."""


def data_file(settings: Settings) -> None:
    """The configured data file exists and has a readable format (or none is set).

    Raises:
        Unmet: naming the file and what is wrong with it.
    """
    from fraudops.data.sources import DataSourceError
    from fraudops.spec.data import check_source

    if settings.data_path is None:
        return
    try:
        check_source(settings.data_path, settings.spec)
    except DataSourceError as exc:
        raise Unmet(str(exc)) from None


def registry_exists(settings: Settings) -> None:
    """A local (sqlite) registry has been created: a command that reads it would otherwise
    spend seconds creating an empty one first.

    Raises:
        Unmet: no model was ever trained under this home.
    """
    uri = settings.resolved_tracking_uri
    if uri.startswith("sqlite:///") and not os.path.exists(uri.removeprefix("sqlite:///")):
        raise Unmet(
            f"no model is registered under {settings.home} yet: train one with `fraudops train` "
            "(or set FRAUDOPS_HOME to the home you trained in)"
        )


def champion(settings: Settings) -> None:
    """``@champion`` exists in the registry.

    Raises:
        Unmet: there is no registry yet, or no ``@champion``.
    """
    registry_exists(settings)
    from fraudops import registry

    client = registry.client_for(settings)
    if registry.version_by_alias(client, settings.model_name, registry.CHAMPION) is None:
        raise Unmet(
            f"no @champion for {settings.model_name!r} yet: train one with `fraudops train`"
        )


def check(settings: Settings, *conditions: Callable[[Settings], None]) -> None:
    """Run ``conditions`` in order; the first unmet one raises :class:`Unmet`."""
    for condition in conditions:
        condition(settings)
