"""The features flow on a Dask cluster of processes: the same files as one process, even when
a worker dies in the middle.

Each test starts a ``LocalCluster`` of worker processes (with nannies, as a real deployment
has) and closes it; the flow reaches it by its ``tcp://`` address, as a laptop user's
``FRAUDOPS_DASK_ADDRESS`` would.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import psutil
import pytest

from fraudops.data.partitioned_history import simulate_by_day
from fraudops.data.simulator import SimulationConfig
from fraudops.settings import Settings
from fraudops.spec import load_spec
from pipelines.features import run_features
from tests.day_histories import cards_by_day

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def cluster() -> Iterator[object]:
    from distributed import Client, LocalCluster

    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        silence_logs=logging.ERROR,
    ) as local:
        yield local
        with Client(local.scheduler_address, timeout=30) as client:
            pids = set(client.run(os.getpid).values())
    time.sleep(1)
    assert pids and not [pid for pid in pids if psutil.pid_exists(pid)], "a worker outlived"


def _features(settings: Settings, history: Path, out: Path) -> pd.DataFrame:
    result = run_features(settings, history, out)
    assert result["path"] == str(out)
    return pd.read_parquet(out)


@pytest.mark.parametrize("name", ["handbook", "cards"])
def test_the_flow_on_a_cluster_writes_the_single_process_files_bit_for_bit(
    name: str, cluster, prefect_api: None, tmp_path: Path
) -> None:
    if name == "cards":  # text keys: card tokens, merchant ids, devices
        history = cards_by_day(tmp_path / "history", days=10, seed=4)
    else:
        config = SimulationConfig(days=20, n_customers=1_000, n_terminals=1_500, seed=2)
        history = simulate_by_day(config, scale=2, out=tmp_path / "history").path
    home = tmp_path / "home"
    one = _features(Settings(home=home, dataset_spec=name), history, tmp_path / "one")
    on_cluster = Settings(
        home=home, dataset_spec=name, dask_address=cluster.scheduler_address, feature_shards=5
    )
    distributed = _features(on_cluster, history, tmp_path / "dask")
    pd.testing.assert_frame_equal(distributed, one, check_exact=True)
    assert len(one) > 10_000 and one.columns[-1] == load_spec(name).feature_names()[-1]


def test_a_worker_killed_mid_computation_is_replaced_and_the_flow_gives_the_same_files(
    cluster, prefect_api: None, tmp_path: Path
) -> None:
    from distributed import Client

    config = SimulationConfig(days=40, n_customers=2_000, n_terminals=3_000, seed=6)
    history = simulate_by_day(config, scale=2, out=tmp_path / "history").path
    home = tmp_path / "home"
    expected = _features(Settings(home=home), history, tmp_path / "one")
    settings = Settings(home=home, dask_address=cluster.scheduler_address, feature_shards=8)
    killed: dict[str, object] = {}

    def kill_a_busy_worker() -> None:
        """SIGKILL a worker while it shuffles an entity's rows or computes a shard."""
        with Client(cluster.scheduler_address, timeout=30) as watcher:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and not killed:
                for address, keys in watcher.processing().items():
                    names = " ".join(str(key) for key in keys)
                    # once the entities' shuffle runs (past reading, before the join back),
                    # on a worker other than the one running the flow's task
                    busy = "shuffle" in names or "_entity_part" in names
                    if busy and "compute_features" not in names:
                        pid = watcher.run(os.getpid, workers=[address])[address]
                        os.kill(pid, signal.SIGKILL)
                        killed.update(pid=pid, address=address, at=time.monotonic(), keys=names)
                        return
                time.sleep(0.05)

    killer = threading.Thread(target=kill_a_busy_worker)
    killer.start()
    got = _features(settings, history, tmp_path / "dask")
    finished = time.monotonic()
    killer.join()

    assert killed, "no worker was seen computing a feature task"
    assert killed["at"] < finished  # type: ignore[operator]
    assert not psutil.pid_exists(killed["pid"])  # type: ignore[arg-type]
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    with Client(cluster.scheduler_address, timeout=30) as check:
        check.wait_for_workers(2, timeout=60)  # the nanny started a new worker
        pids = set(check.run(os.getpid).values())
    assert killed["pid"] not in pids and len(pids) == 2


def test_batch_scores_on_a_cluster_equal_one_process_and_land_whole(
    cluster, prefect_api: None, tmp_path: Path
) -> None:
    from pipelines.features import run_batch_score
    from pipelines.training import run_training

    config = SimulationConfig(days=62, n_customers=800, n_terminals=1_200, seed=8)
    history = simulate_by_day(config, scale=2, out=tmp_path / "history").path
    settings = Settings(home=tmp_path / "home", data_path=history, train_days=14)
    assert run_training(settings).promoted
    one = run_batch_score(settings, history, tmp_path / "one")
    on_cluster = settings.model_copy(
        update={"dask_address": cluster.scheduler_address, "feature_shards": 3}
    )
    spread = run_batch_score(on_cluster, history, tmp_path / "dask")

    assert one["rows"] == spread["rows"] > 100_000 and one["alerts"] == spread["alerts"] > 0
    expected = pd.read_parquet(tmp_path / "one")
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "dask"), expected, check_exact=True)
    assert len(list((tmp_path / "dask").glob("part-*.parquet"))) == 62
    assert set(expected["model_version"]) == {"1"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dask", "history", "home", "one"]


def test_the_commands_write_a_scaled_history_and_its_features_and_refuse_scoring_without_champion(
    prefect_api: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from fraudops_cli.main import app

    monkeypatch.setenv("FRAUDOPS_HOME", str(tmp_path / "home"))
    runner = CliRunner()
    history = tmp_path / "history"
    args = ["simulate", "--out", str(history), "--days", "8", "--scale", "2"]
    made = runner.invoke(app, [*args, "--customers", "300", "--terminals", "400"])
    assert made.exit_code == 0, made.output
    assert "8 day partitions" in made.output
    done = runner.invoke(app, ["features", "--history", str(history), "--out", str(tmp_path / "f")])
    assert done.exit_code == 0, done.output
    features = pd.read_parquet(tmp_path / "f")
    assert f"{len(features):,} rows, 8 files" in done.output
    assert list(features.columns[2:]) == load_spec("handbook").feature_names()
    # a local cluster started for the run, its scheduler behind TLS made for the run
    local = ["features", "--history", str(history), "--out", str(tmp_path / "local")]
    spread = runner.invoke(app, [*local, "--dask-workers", "1"])
    assert spread.exit_code == 0, spread.output
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "local"), features, check_exact=True)

    refused = runner.invoke(
        app, ["score-batch", "--input", str(history), "--output", str(tmp_path / "s")]
    )
    assert refused.exit_code == 2 and "no @champion" in refused.output
    assert not (tmp_path / "s").exists()


def test_training_on_a_cluster_fits_the_same_model_as_in_one_process(
    cluster, tmp_path: Path
) -> None:
    from pipelines.training import run_training

    config = SimulationConfig(days=62, n_customers=800, n_terminals=1_200, seed=11)
    history = simulate_by_day(config, scale=2, out=tmp_path / "history").path
    common = {"data_path": history, "train_days": 14, "train_max_rows": 60_000}
    one = run_training(Settings(home=tmp_path / "one", **common))
    spread = run_training(
        Settings(home=tmp_path / "dask", dask_address=cluster.scheduler_address, **common)
    )
    assert spread.windows == one.windows and spread.promoted and one.promoted
    assert spread.metrics == one.metrics  # same rows, same sample, same seed: the same model
    assert one.metrics["average_precision"] > 0.2
