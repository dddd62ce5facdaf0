"""Team mode: the case store on the real PostgreSQL server, with concurrent analysts."""

from __future__ import annotations

import datetime as dt
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from fraudops.cases.store import CaseConflict, CaseStore, NewCase
from tests.integration.servers import postgres_database, query

pytestmark = pytest.mark.integration
LOCK = dt.timedelta(minutes=30)


@pytest.fixture
def database():
    with postgres_database() as url:
        yield url


def _alert(event_id) -> NewCase:
    return NewCase(event_id, dt.datetime(2018, 6, 1), 0.9, 0.5, "1", (), {"card": "c-1"}, {})


def test_stores_opened_at_once_migrate_the_database_once(database):
    with ThreadPoolExecutor(4) as pool:
        stores = list(pool.map(lambda _: CaseStore.open(database), range(4)))
    assert query(database, "select version_num from alembic_version") == [("0001",)]
    for store in stores:
        store.close()


def test_of_eight_analysts_claiming_one_case_at_once_exactly_one_wins(database):
    store = CaseStore.open(database)
    store.open_cases([_alert(f"tx-{i}") for i in range(5)])
    for case_id in range(1, 6):
        start = threading.Barrier(8)

        def claim(analyst: str, case_id: int = case_id, start=start) -> str | None:
            start.wait()
            try:
                return store.claim(case_id, analyst, LOCK).claimed_by
            except CaseConflict:
                return None

        with ThreadPoolExecutor(8) as pool:
            winners = [w for w in pool.map(claim, [f"analyst-{i}" for i in range(8)]) if w]
        assert len(winners) == 1
        assert store.get(case_id).claimed_by == winners[0]
        claims = query(
            database, f"select count(*) from case_events where case_id={case_id} and action='claim'"
        )
        assert claims == [(1,)]
    store.close()


def test_a_decision_retried_at_once_is_written_once(database):
    store = CaseStore.open(database)
    store.open_cases([_alert("tx-1")])
    store.claim(1, "ann", LOCK)
    start = threading.Barrier(6)

    def decide(_: int):
        start.wait()
        return store.decide(1, "ann", "fraud", "retried", "idem-key-0001")

    with ThreadPoolExecutor(6) as pool:
        decided = list(pool.map(decide, range(6)))
    assert {(c.state, c.disposition, c.decided_at) for c in decided} == {
        ("closed", "fraud", decided[0].decided_at)
    }
    assert query(database, "select count(*) from case_events where action='decide'") == [(1,)]
    store.close()


def test_of_six_analysts_claiming_one_case_through_the_console_at_once_one_wins(database):
    import re

    import httpx
    import uvicorn

    from fraudops.offline.handbook import handbook_spec
    from fraudops.processes import free_port
    from services.console.app import ConsoleConfig, create_app

    store = CaseStore.open(database)
    store.open_cases([_alert("tx-1")])
    tokens = {f"analyst-{i}": store.add_analyst(f"analyst-{i}", "analyst") for i in range(6)}
    config = ConsoleConfig(handbook_spec(), Path("/nonexistent"), 100, LOCK, "k" * 40)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(store, config), "127.0.0.1", port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    clients = []
    try:
        while not server.started:
            time.sleep(0.05)
        for name, token in tokens.items():
            client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
            csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text)[1]
            client.post("/login", data={"name": name, "token": token, "csrf": csrf})
            page = client.get("/cases/1").text
            clients.append((client, re.search(r'name="csrf" value="([^"]+)"', page)[1]))
        start = threading.Barrier(len(clients))

        def claim(pair) -> int:
            client, csrf = pair
            start.wait()
            return client.post("/cases/1/claim", data={"csrf": csrf}).status_code

        with ThreadPoolExecutor(len(clients)) as pool:
            statuses = sorted(pool.map(claim, clients))
    finally:
        for client, _ in clients:
            client.close()
        server.should_exit = True
        thread.join(10)
        store.close()
    assert statuses == [303] + [409] * 5
