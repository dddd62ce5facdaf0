"""The analyst console in-process (Starlette's test client): login, roles, CSRF, escaping,
claim and decide, the audit log."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from starlette.testclient import TestClient

from fraudops.cases.store import CaseStore, NewCase
from fraudops.offline.handbook import handbook_spec
from services.console.app import ConsoleConfig, create_app

pytestmark = pytest.mark.integration

NASTY = '<script>alert("x")</script>'


@pytest.fixture
def console(tmp_path):
    store = CaseStore.open(f"sqlite:///{tmp_path / 'cases.db'}")
    store.open_cases(
        [
            NewCase(
                7 + i,
                dt.datetime(2018, 6, 1, 12, i),
                0.9 - i / 10,
                0.5,
                "3",
                (("TX_AMOUNT", 2.5, f"amount 500 {NASTY}"),),
                {"customer": 987654321 + i, "terminal": 17},
                {"customer_hash": f"hash{i:028d}", "terminal_hash": "f" * 32},
            )
            for i in range(3)
        ]
    )
    tokens = {
        name: store.add_analyst(name, role)
        for name, role in (("ann", "analyst"), ("bob", "analyst"), ("rita", "read-only"))
    }
    config = ConsoleConfig(
        spec=handbook_spec(),
        prediction_log_dir=tmp_path / "predictions",
        capacity=10,
        lock=dt.timedelta(minutes=30),
        secret="test-only-console-secret-0123456789",
    )
    yield store, create_app(store, config), tokens
    store.close()


def _csrf(page: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)


def _login(app, name: str, token: str) -> TestClient:
    client = TestClient(app, base_url="http://127.0.0.1")
    page = client.get("/login").text
    answer = client.post("/login", data={"name": name, "token": token, "csrf": _csrf(page)})
    assert answer.status_code == 200 and "Open cases" in answer.text, answer.text
    return client


def test_pages_need_a_login_and_a_wrong_token_is_refused(console):
    _, app, _tokens = console
    client = TestClient(app, base_url="http://127.0.0.1")
    assert client.get("/", follow_redirects=False).headers["location"] == "/login"
    assert client.get("/cases/1", follow_redirects=False).status_code == 303
    page = client.get("/login").text
    wrong = client.post("/login", data={"name": "ann", "token": "x" * 43, "csrf": _csrf(page)})
    assert wrong.status_code == 401 and "wrong name or token" in wrong.text
    assert client.post("/cases/1/claim", data={"csrf": _csrf(page)}).status_code == 401


def test_a_form_without_the_sessions_csrf_token_changes_nothing(console):
    store, app, tokens = console
    client = _login(app, "ann", tokens["ann"])
    assert client.post("/cases/1/claim", data={}).status_code == 403
    assert client.post("/cases/1/claim", data={"csrf": "forged"}).status_code == 403
    assert store.get(1).state == "open"


def test_claim_then_decide_closes_the_case_once_and_the_audit_log_has_each_step(console):
    store, app, tokens = console
    ann = _login(app, "ann", tokens["ann"])
    page = ann.get("/cases/1").text
    assert ann.post("/cases/1/claim", data={"csrf": _csrf(page)}).status_code == 200
    page = ann.get("/cases/1").text
    key = re.search(r'name="idempotency_key" value="([^"]+)"', page).group(1)
    form = {"csrf": _csrf(page), "idempotency_key": key, "disposition": "fraud", "note": NASTY}
    assert ann.post("/cases/1/decide", data=form).status_code == 200
    assert ann.post("/cases/1/decide", data=form).status_code == 200  # a retry: same result
    case = store.get(1)
    assert (case.state, case.disposition, case.decided_by, case.note) == (
        "closed",
        "fraud",
        "ann",
        NASTY,
    )
    other = ann.post("/cases/1/decide", data={**form, "idempotency_key": "another-key-1"})
    assert other.status_code == 409 and "already decided" in other.text
    actions = [e.action for e in store.events(1)]
    assert [a for a in actions if a != "view"] == ["claim", "decide"]
    assert actions.count("view") == 3 and {e.actor for e in store.events(1)} == {"ann"}


def test_a_case_claimed_by_one_analyst_cannot_be_claimed_by_another(console):
    store, app, tokens = console
    ann, bob = _login(app, "ann", tokens["ann"]), _login(app, "bob", tokens["bob"])
    assert ann.post("/cases/2/claim", data={"csrf": _csrf(ann.get("/").text)}).status_code == 200
    page = bob.get("/cases/2").text
    assert 'id="claim"' not in page and "In review by ann" in page
    refused = bob.post("/cases/2/claim", data={"csrf": _csrf(page)})
    assert refused.status_code == 409 and "in review by ann" in refused.text
    assert store.get(2).claimed_by == "ann"


def test_html_in_reasons_and_notes_is_shown_as_text_never_as_markup(console):
    _store, app, tokens = console
    ann = _login(app, "ann", tokens["ann"])
    page = ann.get("/cases/1").text
    assert NASTY not in page and "&lt;script&gt;alert(" in page
    assert "script-src 'self'" in ann.get("/cases/1").headers["content-security-policy"]


def test_read_only_users_see_hashed_ids_and_cannot_act(console):
    _store, app, tokens = console
    rita = _login(app, "rita", tokens["rita"])
    queue = rita.get("/").text
    assert "987654321" not in queue and "hash" + "0" * 28 in queue
    page = rita.get("/cases/1").text
    assert "987654321" not in page and 'id="claim"' not in page
    assert rita.post("/cases/1/claim", data={"csrf": _csrf(page)}).status_code == 403
    ann = _login(app, "ann", tokens["ann"])
    assert "987654321" in ann.get("/").text


def test_the_queue_lists_undecided_cases_by_priority_within_the_days_capacity(console):
    _store, app, tokens = console
    ann = _login(app, "ann", tokens["ann"])
    order = re.findall(r'href="/cases/(\d+)">#', ann.get("/").text.split("Recently decided")[0])
    assert order == ["1", "2", "3"]
    assert ann.get("/?min_score=0.75").text.count('data-href="/cases/') == 2
    assert ann.get("/?min_score=high").status_code == 422


def test_a_disabled_analyst_loses_an_open_session_at_the_next_request(console):
    store, app, tokens = console
    ann = _login(app, "ann", tokens["ann"])
    store.disable_analyst("ann")
    assert ann.get("/", follow_redirects=False).headers["location"] == "/login"
