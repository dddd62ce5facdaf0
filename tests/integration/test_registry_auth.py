"""The team MLflow server with its basic-auth app: nobody anonymous, readers cannot write.

Attacks against a real ``mlflow server --app-name basic-auth`` on 127.0.0.1: an anonymous
client, and the scoring service's read-only account trying to register a version or move
``@champion``. The trainer's account trains and promotes; the service's account serves.
"""

from __future__ import annotations

import httpx
import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from fraudops import registry
from fraudops.serving.scorer import load_champion
from fraudops.settings import Settings
from pipelines.training import run_training
from tests.integration.figures import record
from tests.integration.servers import SCORER, SIGNING_KEY, TRAINER, mlflow_server, mlflow_users

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def as_user(monkeypatch: pytest.MonkeyPatch, user: tuple[str, str] | None) -> None:
    """MLflow's client reads its credentials from these variables only."""
    for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    if user is not None:
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", user[0])
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", user[1])


@pytest.fixture(scope="module")
def secured(tmp_path_factory, history):
    """An authenticated MLflow server whose trainer registered and promoted v1."""
    root = tmp_path_factory.mktemp("mlflow-auth")
    with (
        pytest.MonkeyPatch.context() as patch,
        mlflow_server(
            f"sqlite:///{root / 'mlflow.db'}",
            root / "artifacts",
            root / "mlflow.log",
            auth_database=root / "users.db",
        ) as url,
    ):
        mlflow_users(url, TRAINER, SCORER)
        settings = Settings(
            home=root / "home", data_path=history, tracking_uri=url, model_signing_key=SIGNING_KEY
        )
        as_user(patch, TRAINER)
        assert run_training(settings).promoted
        yield settings


def test_an_anonymous_client_can_neither_read_nor_write_the_registry(secured):
    url = secured.resolved_tracking_uri
    search = httpx.get(f"{url}/api/2.0/mlflow/registered-models/search", timeout=30)
    assert search.status_code == 401
    alias = httpx.post(
        f"{url}/api/2.0/mlflow/registered-models/alias",
        json={"name": secured.model_name, "alias": "champion", "version": "1"},
        timeout=30,
    )
    assert alias.status_code == 401
    artifact = httpx.get(f"{url}/api/2.0/mlflow-artifacts/artifacts", timeout=30)
    assert artifact.status_code == 401
    record("registry_anonymous", {"requests": 3, "refused_401": 3})


def test_the_services_read_only_account_loads_the_champion_but_cannot_move_it(secured, monkeypatch):
    as_user(monkeypatch, SCORER)
    mlflow.set_tracking_uri(secured.resolved_tracking_uri)
    champion = load_champion(secured, registry.client_for(secured))
    assert champion is not None and champion.version == "1"

    client = MlflowClient(secured.resolved_tracking_uri, secured.resolved_tracking_uri)
    with pytest.raises(MlflowException, match="Permission denied"):
        client.set_registered_model_alias(secured.model_name, registry.CHAMPION, "1")
    source = client.get_model_version(secured.model_name, "1").source
    with pytest.raises(MlflowException, match="Permission denied"):
        client.create_model_version(secured.model_name, source)
    with pytest.raises(MlflowException, match="Permission denied"):
        client.set_model_version_tag(secured.model_name, "1", "threshold", "0.99")
    record("registry_reader_writes", {"writes_tried": 3, "refused_403": 3, "champion_loaded": 1})


def test_a_wrong_password_is_refused(secured, monkeypatch):
    as_user(monkeypatch, (SCORER[0], "guessed"))
    with pytest.raises(MlflowException):
        registry.client_for(secured).get_registered_model(secured.model_name)
