"""Real servers for the team-server tests: PostgreSQL, Redis, `mlflow server`, `prefect server`.

PostgreSQL (127.0.0.1:5432, trust auth) and Redis (127.0.0.1:6379) run on every machine of this
project, CI's included; elsewhere the tests that need them are skipped with a message saying
what is missing and how to start it. The MLflow and Prefect servers are started as processes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from fraudops.processes import free_port, stop, wait_http_ok

POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER = "127.0.0.1", 5432, "postgres"
REDIS_URL = "redis://127.0.0.1:6379"
#: The model signing key of every test that trains or serves through a tracking server.
SIGNING_KEY = "test-only-model-signing-key-0123456789"
BIN = Path(sys.executable).parent
QUIET = {
    "DO_NOT_TRACK": "true",
    "BENTOML_DO_NOT_TRACK": "true",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
}


def _postgres_admin():  # type: ignore[no-untyped-def]
    import psycopg2

    try:
        connection = psycopg2.connect(
            host=POSTGRES_HOST,
            port=POSTGRES_PORT,
            user=POSTGRES_USER,
            dbname="postgres",
            connect_timeout=3,
        )
    except psycopg2.OperationalError as exc:
        pytest.skip(
            f"PostgreSQL is not reachable at {POSTGRES_HOST}:{POSTGRES_PORT} with trust auth "
            f"for user {POSTGRES_USER} ({exc}); start it, e.g. "
            "`pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`"
        )
    connection.autocommit = True
    return connection


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh, empty PostgreSQL database; yields its SQLAlchemy URL; dropped afterwards."""
    name = f"fraudops_test_{uuid.uuid4().hex[:10]}"
    admin = _postgres_admin()
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://{POSTGRES_USER}@{POSTGRES_HOST}:{POSTGRES_PORT}/{name}"
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def query(database_url: str, sql: str) -> list[tuple]:
    """Rows of one SQL query on ``database_url``."""
    import psycopg2

    with psycopg2.connect(database_url) as connection, connection.cursor() as cursor:
        cursor.execute(sql)
        return list(cursor.fetchall())


def redis_url(db: int) -> str:
    """URL of one Redis database, emptied first; skips when Redis is not reachable."""
    import redis

    client = redis.Redis.from_url(f"{REDIS_URL}/{db}", socket_connect_timeout=3)
    try:
        client.flushdb()
    except redis.ConnectionError as exc:
        pytest.skip(
            f"Redis is not reachable at {REDIS_URL} ({exc}); start it, e.g. "
            "`redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save ''`"
        )
    finally:
        client.close()
    return f"{REDIS_URL}/{db}"


@contextmanager
def server(
    command: list[str], ready_url: str, log: Path, env: dict[str, str], timeout: float = 180
) -> Iterator[subprocess.Popen]:
    """Run ``command`` until the block ends; wait for ``ready_url`` to answer 200 first."""
    with log.open("w") as out:
        process = subprocess.Popen(
            command, env={**os.environ, **QUIET, **env}, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        try:
            wait_http_ok(ready_url, process, timeout=timeout, log=log)
        except RuntimeError as exc:
            pytest.fail(str(exc))
        yield process
    finally:
        stop(process, timeout=30)


#: The team MLflow server's admin in the authenticated tests (its own users database).
MLFLOW_ADMIN = ("admin", "test-only-mlflow-admin-password")
#: Its writer account (the trainer) and read-only account (the scoring service).
TRAINER = ("trainer", "test-only-trainer-password-1")
SCORER = ("scorer", "test-only-scorer-password-22")


def mlflow_users(url: str, *users: tuple[str, str]) -> None:
    """Create ``users`` (name, password) on an authenticated MLflow server, as its admin."""
    for name, password in users:
        response = httpx.post(
            f"{url}/api/2.0/mlflow/users/create",
            json={"username": name, "password": password},
            auth=MLFLOW_ADMIN,
            timeout=30,
        )
        assert response.status_code == 200, response.text


def mlflow_account(user: tuple[str, str]) -> dict[str, str]:
    """The environment with which MLflow's client (the only way it reads them) logs in."""
    return {"MLFLOW_TRACKING_USERNAME": user[0], "MLFLOW_TRACKING_PASSWORD": user[1]}


@contextmanager
def mlflow_server(
    database_url: str,
    artifacts: Path,
    log: Path,
    port: int | None = None,
    *,
    auth_database: Path | None = None,
) -> Iterator[str]:
    """``mlflow server`` on ``database_url`` (PostgreSQL, sqlite) with proxied local artifacts.

    ``port`` lets a test restart the server where its clients expect it; default a free one.
    With ``auth_database``, MLflow's basic-auth app runs on it: every request needs a user
    (:data:`MLFLOW_ADMIN` is created), new users read by default and write only what they own.
    """
    port = port or free_port()
    env = {"PATH": f"{BIN}:{os.environ['PATH']}"}
    app: list[str] = []
    if auth_database is not None:
        config = auth_database.with_suffix(".ini")
        config.write_text(
            "[mlflow]\n"
            "default_permission = READ\n"
            f"database_uri = sqlite:///{auth_database}\n"
            f"admin_username = {MLFLOW_ADMIN[0]}\n"
            "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        )
        env |= {
            "MLFLOW_AUTH_CONFIG_PATH": str(config),
            "MLFLOW_AUTH_ADMIN_PASSWORD": MLFLOW_ADMIN[1],
            "MLFLOW_FLASK_SERVER_SECRET_KEY": "test-only-csrf-secret-key",  # its CSRF tokens
        }
        app = ["--app-name", "basic-auth"]
    command = [
        str(BIN / "mlflow"),
        "server",
        "--backend-store-uri",
        database_url,
        "--artifacts-destination",
        artifacts.as_uri(),
        "--serve-artifacts",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        *app,
    ]
    url = f"http://127.0.0.1:{port}"
    with server(command, f"{url}/health", log, env=env):
        yield url


@contextmanager
def prefect_server(home: Path, log: Path, auth: str | None = None) -> Iterator[str]:
    """``prefect server start`` (its own sqlite database under ``home``); yields the API URL.

    With ``auth`` (``user:password``) every request but the health probe needs it
    (``PREFECT_SERVER_API_AUTH_STRING``; clients send ``PREFECT_API_AUTH_STRING``), CSRF
    protection is on and only the server's own origin may make cross-origin requests.
    """
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    command = [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    api = f"http://127.0.0.1:{port}/api"
    env = {"PREFECT_HOME": str(home)}
    if auth is not None:
        env |= {
            "PREFECT_SERVER_API_AUTH_STRING": auth,
            "PREFECT_SERVER_CSRF_PROTECTION_ENABLED": "true",
            "PREFECT_SERVER_CORS_ALLOWED_ORIGINS": f"http://127.0.0.1:{port}",
        }
    with server(command, f"{api}/health", log, env=env):
        yield api
