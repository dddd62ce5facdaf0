"""`fraudops build-bento` (a bento with the champion inside) and `fraudops score-batch`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from fraudops.data import contract as c
from fraudops.offline.handbook import compute_features
from fraudops.processes import free_port
from fraudops.serving.batch import OUTPUT_COLUMNS
from fraudops.settings import Settings
from fraudops_cli.main import app
from pipelines.training import run_training
from tests.integration.servers import BIN, QUIET, server

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, small_history):
    """A home whose sqlite registry has v1 as @champion; the history file it was trained on."""
    root = tmp_path_factory.mktemp("trained")
    data = root / "history.parquet"
    small_history.to_parquet(data)
    settings = Settings(home=root / "home", data_path=data)
    assert run_training(settings).promoted
    return settings


@pytest.mark.slow
def test_built_bento_holds_the_champion_and_serves_it_with_the_registry_down(trained, tmp_path):
    env = {
        **os.environ,
        **QUIET,
        "FRAUDOPS_HOME": str(trained.home),
        "BENTOML_HOME": str(tmp_path / "bentoml"),
    }
    built = subprocess.run(
        [sys.executable, "-m", "fraudops_cli", "build-bento"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    assert "(registry v1)" in built.stdout
    [bento_dir] = [
        p for p in (tmp_path / "bentoml" / "bentos" / "fraudops").iterdir() if p.is_dir()
    ]
    manifest = yaml.safe_load((bento_dir / "bento.yaml").read_text())
    [model] = manifest["models"]
    assert model["tag"].startswith(f"{trained.model_name}:")
    assert manifest["labels"]["model_version"] == "1"
    assert (bento_dir / "src" / "fraudops" / "serving" / "scorer.py").is_file()  # src flattened
    assert (bento_dir / "src" / "fraudops" / "spec" / "specs" / "handbook.yaml").is_file()
    assert (bento_dir / "src" / "services" / "service.py").is_file()
    assert not (bento_dir / "src" / "tests").exists()
    bundled = {e["name"]: e["value"] for e in manifest["envs"]}["FRAUDOPS_BUNDLED_MODEL"]
    assert bundled == model["tag"]
    requirements = (bento_dir / "env" / "python" / "requirements.txt").read_text()
    assert "scikit-learn==" in requirements and "bentoml==" in requirements

    port = free_port()
    serve_env = {
        "FRAUDOPS_HOME": str(tmp_path / "container-home"),
        "FRAUDOPS_DATA_PATH": str(trained.data_path),
        "BENTOML_HOME": str(tmp_path / "bentoml"),
        "FRAUDOPS_TRACKING_URI": f"http://127.0.0.1:{free_port()}",  # nothing listens there
        "FRAUDOPS_BUNDLED_MODEL": bundled,  # what the container's environment sets
    }
    command = [str(BIN / "bentoml"), "serve", "fraudops:latest", "--port", str(port)]
    with server(command, f"http://127.0.0.1:{port}/readyz", tmp_path / "bento.log", serve_env):
        info = httpx.get(f"http://127.0.0.1:{port}/model", timeout=10).json()
        assert info["version"] == "1"
        answer = httpx.post(
            f"http://127.0.0.1:{port}/score",
            json={
                "transaction_id": 1,
                "tx_datetime": "2018-06-20T10:00:00",  # within a day of the history
                "customer_id": 3,
                "terminal_id": 5,
                "tx_amount": 42.0,
            },
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["model_version"] == "1"


@pytest.fixture(autouse=True)
def _restored_tool_env(monkeypatch):
    """The CLI sets these tool variables for its process; undo that after each test."""
    for key in ("MLFLOW_TRACKING_URI", "PREFECT_HOME", "BENTOML_HOME"):
        monkeypatch.setenv(key, "")
        monkeypatch.delenv(key)


def _run(args: list[str], home: Path):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, args, env={"FRAUDOPS_HOME": str(home)})


def test_score_batch_writes_offline_features_scores_and_no_customer_or_terminal_id(
    trained, tmp_path
):
    source = pd.read_parquet(trained.data_path)
    tail = source[source[c.TX_DATETIME] >= source[c.TX_DATETIME].max() - pd.Timedelta(days=40)]
    as_csv = tmp_path / "transactions.csv"
    tail.sample(frac=1.0, random_state=0).to_csv(as_csv, index=False)  # any row order
    out = tmp_path / "scored.parquet"
    result = _run(["score-batch", "--input", str(as_csv), "--output", str(out)], trained.home)
    assert result.exit_code == 0, result.output
    assert f"{len(tail):,} rows scored by v1" in result.output
    scored = pd.read_parquet(out)
    assert list(scored.columns) == list(OUTPUT_COLUMNS)
    assert len(scored) == len(tail)
    assert not {c.CUSTOMER_ID, c.TERMINAL_ID} & set(scored.columns)
    assert scored[c.TX_DATETIME].is_monotonic_increasing
    assert scored["fraud_probability"].between(0, 1).all()
    alerts = scored["fraud_probability"] >= scored["threshold"]
    assert (scored["decision"] == alerts.map({True: "alert", False: "pass"})).all()
    expected = compute_features(c.validate_transactions(tail), trained.label_delay_days)
    pd.testing.assert_frame_equal(
        scored[list(c.FEATURES)].reset_index(drop=True), expected.reset_index(drop=True)
    )
    again = tmp_path / "again.csv"
    assert (
        _run(
            ["score-batch", "--input", str(as_csv), "--output", str(again), "--version", "1"],
            trained.home,
        ).exit_code
        == 0
    )
    assert pd.read_csv(again)["fraud_probability"].to_numpy() == pytest.approx(
        scored["fraud_probability"].to_numpy()
    )


def test_score_batch_with_bad_input_exits_2_and_writes_nothing(trained, tmp_path):
    bad = tmp_path / "bad.csv"
    pd.read_parquet(trained.data_path).head(100).drop(columns=[c.TX_AMOUNT]).to_csv(bad)
    out = tmp_path / "scored.parquet"
    result = _run(["score-batch", "--input", str(bad), "--output", str(out)], trained.home)
    assert result.exit_code == 2
    assert "TX_AMOUNT" in result.output
    assert list(tmp_path.iterdir()) == [bad]
    good = tmp_path / "good.csv"
    pd.read_parquet(trained.data_path).head(100).to_csv(good)
    unknown = _run(
        ["score-batch", "--input", str(good), "--output", str(out), "--version", "9"], trained.home
    )
    assert unknown.exit_code == 2, unknown.output
    assert "9" in unknown.output and not out.exists()
