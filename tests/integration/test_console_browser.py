"""The review loop through a browser: the service's alerts open cases; an analyst logs in to
the console (a real process), claims a case, confirms fraud; the label reaches the service's
label store with its provenance and the case is closed; a second analyst cannot claim it."""

from __future__ import annotations

import sys
import time

import httpx
import pandas as pd
import pytest

from fraudops.cases.store import CaseStore
from fraudops.data import contract as c
from fraudops.logs.predlog import read_log
from fraudops.processes import free_port
from fraudops.settings import Settings
from pipelines.training import run_training
from tests.integration.servers import server

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.slow]
NASTY_NOTE = "<img src=x onerror=alert(1)> stolen card"


def _wait(condition, what: str, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)
    return value


@pytest.fixture(scope="module")
def loop(tmp_path_factory, small_history):
    """A trained home, the service scoring 20 large payments (alerts), and the console."""
    root = tmp_path_factory.mktemp("console")
    data, home = root / "history.parquet", root / "home"
    small_history.to_parquet(data)
    settings = Settings(home=home, data_path=data)
    assert run_training(settings).promoted
    service, console = f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"
    env = {
        "FRAUDOPS_HOME": str(home),
        "FRAUDOPS_DATA_PATH": str(data),
        "FRAUDOPS_LOG_FLUSH_SECONDS": "0.1",
        "FRAUDOPS_LABEL_SERVICE_URL": service,
        "FRAUDOPS_API_TOKEN": "",
        "FRAUDOPS_LABEL_TOKEN": "",
    }
    python = [sys.executable, "-m", "fraudops_cli"]
    with server(
        [*python, "serve", "--port", service.rsplit(":", 1)[1]],
        f"{service}/readyz",
        root / "service.log",
        env,
    ):
        start = small_history[c.TX_DATETIME].max() + pd.Timedelta(minutes=1)
        payments = [
            {
                "transaction_id": 70_000_000 + i,
                "tx_datetime": (start + pd.Timedelta(minutes=i)).isoformat(),
                "customer_id": int(row.CUSTOMER_ID),
                "terminal_id": int(row.TERMINAL_ID),
                "tx_amount": 900.0 + i,
            }
            for i, row in enumerate(small_history.tail(20).itertuples())
        ]
        scored = httpx.post(f"{service}/score_batch", json=payments, timeout=60).json()
        alerts = [row for row in scored if row["decision"] == "alert"]
        assert len(alerts) >= 3, scored
        store = CaseStore.open(settings.resolved_case_store_url)
        _wait(lambda: len(store.queue(100)[0]) == len(alerts), "the alerts' cases")
        tokens = {name: store.add_analyst(name, "analyst") for name in ("ann", "bob")}
        with server(
            [*python, "console", "--port", console.rsplit(":", 1)[1]],
            f"{console}/healthz",
            root / "console.log",
            env,
        ):
            yield settings, store, console, tokens, service
        store.close()


def _login(browser, console: str, name: str, token: str):
    page = browser.new_page()
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(console)
    assert page.url.endswith("/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=token]", token)
    page.click("button[type=submit]")
    page.wait_for_selector("#queue")
    return page, dialogs


def test_an_analyst_confirms_fraud_and_the_label_reaches_the_label_store(loop, browser):
    settings, store, console, tokens, service = loop
    ann, ann_dialogs = _login(browser, console, "ann", tokens["ann"])
    top = store.queue(100)[0][0]
    ann.keyboard.press("j")
    ann.keyboard.press("Enter")  # the first row, by keyboard
    ann.wait_for_url(f"{console}/cases/{top.id}")
    assert ann.inner_text("#event-id") == str(top.event_id)  # clear ids behind the login
    ann.keyboard.press("c")
    ann.wait_for_selector("#decide-fraud")
    assert "ann" in ann.inner_text("#claimed-by")

    bob, _ = _login(browser, console, "bob", tokens["bob"])
    bob.goto(f"{console}/cases/{top.id}")
    assert bob.locator("#claim").count() == 0 and "In review by ann" in bob.inner_text("#locked")

    ann.fill("#note-input", NASTY_NOTE)
    ann.click("#decide-fraud")
    ann.wait_for_selector("#queue")
    closed = store.get(top.id)
    assert (closed.state, closed.disposition, closed.decided_by) == ("closed", "fraud", "ann")

    def label_row():
        labels = read_log(settings.label_log_dir)
        if not len(labels):
            return None
        rows = labels[labels["transaction_id"] == top.event_id]
        return rows.iloc[-1].to_dict() if len(rows) else None

    label = _wait(label_row, "the analyst's label", 60)
    assert (label["is_fraud"], label["source"], label["labelled_by"]) == (1, "analyst", "ann")
    assert not label["external"]
    _wait(lambda: store.get(top.id).label_outcome == "held", "the delivery's record")

    ann.goto(f"{console}/cases/{top.id}")
    assert ann.inner_text("#state") == "closed"
    assert ann.inner_text("#note") == NASTY_NOTE and ann_dialogs == []  # text, not markup
    bob.goto(f"{console}/cases/{top.id}")
    assert bob.locator("#claim").count() == 0
    refused = bob.request.post(f"{console}/cases/{top.id}/claim", form={"csrf": "x"})
    assert refused.status == 403
    actions = [(e.actor, e.action) for e in store.events(top.id)]
    assert ("ann", "claim") in actions and ("ann", "decide") in actions
    assert ("bob", "view") in actions and ("label-outbox", "label") in actions

    # a chargeback confirms it weeks later: /metrics counts the agreement and the queue
    chargeback = {"transaction_id": top.event_id, "is_fraud": True, "source": "chargeback"}
    assert httpx.post(f"{service}/feedback", json=[chargeback]).status_code == 200

    def metric(name: str) -> float | None:
        text = httpx.get(f"{service}/metrics").text
        found = [line for line in text.splitlines() if line.startswith(f"{name} ")]
        return float(found[0].split()[1]) if found else None

    _wait(lambda: metric("fraudops_analyst_chargeback_agreed") == 1.0, "the agreement", 60)
    assert metric("fraudops_analyst_chargeback_compared") == 1.0
    assert metric("fraudops_cases_decided_last_hour") == 1.0
    assert metric("fraudops_cases_open") == len(store.queue(100)[0])
