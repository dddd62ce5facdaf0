"""Shared fixtures: small simulated histories and slices of the shared handbook data."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from fraudops.data import contract as c
from fraudops.data.simulator import SimulationConfig, simulate_transactions

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
HANDBOOK_FILE = SHARED_DATA / "handbook_transactions.parquet"


def pytest_configure(config: pytest.Config) -> None:
    """Under ``pytest-xdist`` each worker gets its share of the cores for OpenMP and BLAS.

    Two workers each running 2-thread OpenMP regions (HistGradientBoosting's fit and predict)
    on 2 cores oversubscribe them, and OpenMP's waiting threads then cost more than a single
    thread: with one core kept busy, permutation importance took 9.6 s on 2 threads against
    4.1 s on one. scikit-learn's own test suite limits its xdist workers the same way
    (``sklearn/conftest.py``, ``pytest_configure``). The variable reaches the processes a test
    starts (services, the CLI, the demo); ``threadpoolctl`` the libraries already loaded here.
    """
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        from threadpoolctl import threadpool_limits

        threads = max(1, (os.cpu_count() or 1) // workers)
        os.environ["OMP_NUM_THREADS"] = str(threads)
        threadpool_limits(threads)


def make_transactions(rows: list[tuple[str, int, int, float, int]]) -> pd.DataFrame:
    """A labelled frame from (timestamp, customer, terminal, amount, label) tuples."""
    frame = pd.DataFrame(
        rows, columns=[c.TX_DATETIME, c.CUSTOMER_ID, c.TERMINAL_ID, c.TX_AMOUNT, c.LABEL]
    )
    frame[c.TX_DATETIME] = pd.to_datetime(frame[c.TX_DATETIME])
    frame.insert(0, c.TRANSACTION_ID, range(len(frame)))
    return frame


@pytest.fixture(scope="session")
def small_history() -> pd.DataFrame:
    """About 40,000 simulated transactions over 80 days (400 cards, 800 terminals)."""
    config = SimulationConfig(days=80, n_customers=400, n_terminals=800, seed=7)
    return simulate_transactions(config)


@pytest.fixture(scope="session")
def history(small_history: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """:func:`small_history` as a Parquet file, for ``FRAUDOPS_DATA_PATH`` (never written to)."""
    out = tmp_path_factory.mktemp("history") / "history.parquet"
    small_history.to_parquet(out)
    return out


@pytest.fixture(scope="session")
def handbook_slice(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Days 2018-04-01 .. 2018-05-21 (51 days) of the shared file; simulated where absent."""
    out = tmp_path_factory.mktemp("data") / "transactions.parquet"
    if HANDBOOK_FILE.is_file():
        frame = pd.read_parquet(HANDBOOK_FILE)
        frame = frame[frame[c.TX_DATETIME] < pd.Timestamp("2018-05-22")]
    else:  # a user's fresh clone without ../shared: same shape from the simulator
        frame = simulate_transactions(
            SimulationConfig(days=51, start=dt.date(2018, 4, 1), n_customers=2000, n_terminals=4000)
        )
    frame.to_parquet(out, index=False)
    return out


@pytest.fixture(autouse=True)
def _environment_restored() -> Iterator[None]:
    """Each test leaves the process environment as it found it: a command run in-process
    (typer's ``CliRunner``) points ``PREFECT_HOME``, ``BENTOML_HOME`` and ``MLFLOW_TRACKING_URI``
    at its own home, as the CLI does for its process, and that must not leak into later tests
    or the processes they start (a demo started later kept a leaked ``PREFECT_HOME``)."""
    saved = dict(os.environ)
    yield
    for key in set(os.environ) - set(saved):
        del os.environ[key]
    os.environ.update(saved)


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[None]:
    """A Prefect API for flows run in the test process: started once, with its own database.

    Request it in every test that runs a flow in-process. Without it the first flow of the
    process starts Prefect's ephemeral server itself, with Prefect's default startup timeout
    (``PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS``, 20 s, read when ``prefect`` is
    imported, so setting the variable later does nothing); on a loaded 2-core machine with a
    fresh ``PREFECT_HOME`` the start (migrations included) takes longer, and the flow fails
    with "Timed out while attempting to connect to ephemeral Prefect API server". Here the
    harness starts the server once per session, up front, with 120 s.
    """
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield
