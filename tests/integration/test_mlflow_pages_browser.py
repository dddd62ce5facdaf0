"""A person opens MLflow's UI on a trained registry (Playwright driving Debian's Chromium): the
version page says what the gate decided, the run is named after its window and holds the
training window as its dataset input."""

from __future__ import annotations

import pytest

from fraudops import registry
from fraudops.processes import free_port
from fraudops.settings import Settings
from pipelines.training import run_training
from tests.integration.servers import mlflow_server

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def mlflow_ui(tmp_path_factory, small_history):
    """``mlflow server`` on the registry of one training run (v1, promoted)."""
    root = tmp_path_factory.mktemp("mlflow-ui")
    data = root / "history.parquet"
    small_history.to_parquet(data)
    settings = Settings(home=root / "home", data_path=data)
    result = run_training(settings)
    assert result.promoted
    with mlflow_server(
        settings.resolved_tracking_uri,
        settings.home / "mlartifacts",
        root / "mlflow.log",
        free_port(),
    ) as url:
        yield url, settings, result.run_id


def test_the_version_page_shows_the_gate_decision_in_words(mlflow_ui, browser):
    url, settings, _ = mlflow_ui
    page = browser.new_page()
    try:
        page.goto(f"{url}/#/models/{settings.model_name}/versions/1")
        described = page.get_by_text("Gate: promoted to @champion", exact=False)
        described.first.wait_for(timeout=60_000)
        assert described.count() >= 1
    finally:
        page.close()


def test_the_run_page_names_the_window_and_its_dataset_input(mlflow_ui, browser):
    url, settings, run_id = mlflow_ui
    run = registry.client_for(settings).get_run(run_id)
    page = browser.new_page()
    try:
        page.goto(f"{url}/#/experiments/{run.info.experiment_id}/runs/{run_id}")
        page.get_by_text(run.info.run_name, exact=False).first.wait_for(timeout=60_000)
        assert page.get_by_text("handbook training window", exact=False).count() >= 1
    finally:
        page.close()
