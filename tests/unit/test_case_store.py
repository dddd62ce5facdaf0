"""The case store on SQLite: intake, claims with expiring locks, decisions written once, the
queue by priority within the day's capacity, analysts' tokens, and the label outbox."""

from __future__ import annotations

import datetime as dt
import time

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from fraudops.cases.intake import CaseIntake
from fraudops.cases.outbox import deliver
from fraudops.cases.store import CaseConflict, CaseNotFound, CaseStore, NewCase
from fraudops.cases.tables import metadata

pytestmark = pytest.mark.unit
NOW = dt.datetime(2026, 12, 6, 10, 0)
LOCK = dt.timedelta(minutes=30)


def alert(event_id, score=0.9) -> NewCase:
    return NewCase(
        event_id,
        dt.datetime(2018, 6, 1),
        score,
        0.5,
        "3",
        (("TX_AMOUNT", 1.2, "amount"),),
        {"customer": 42},
        {"customer_hash": "ab" * 16},
    )


@pytest.fixture
def store(tmp_path):
    store = CaseStore.open(f"sqlite:///{tmp_path / 'cases.db'}")
    yield store
    store.close()


def test_the_migrations_build_exactly_the_tables_the_code_uses(store):
    with store.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), metadata)
    assert differences == []


def test_an_alert_opens_one_case_even_when_its_request_is_retried(store):
    assert store.open_cases([alert(1), alert("1")], NOW) == 2  # int and text ids differ
    assert store.open_cases([alert(1)], NOW) == 0
    cases, beyond = store.queue(10, NOW)
    assert sorted(map(str, (c.event_id for c in cases))) == ["1", "1"] and beyond == 0
    assert {type(c.event_id) for c in cases} == {int, str}


def test_a_claim_holds_until_it_expires_then_another_analyst_may_take_it(store):
    store.open_cases([alert(1)], NOW)
    store.claim(1, "ann", LOCK, NOW)
    with pytest.raises(CaseConflict, match="in review by ann") as refused:
        store.claim(1, "bob", LOCK, NOW + dt.timedelta(minutes=29))
    assert refused.value.reason == "claimed"
    assert store.claim(1, "ann", LOCK, NOW + dt.timedelta(minutes=29)).claimed_by == "ann"
    taken = store.claim(1, "bob", LOCK, NOW + dt.timedelta(minutes=60))
    assert taken.claimed_by == "bob"
    with pytest.raises(CaseConflict, match="not in review by ann"):
        store.decide(1, "ann", "fraud", "", "retry-key-1", NOW + dt.timedelta(minutes=61))


def test_a_decision_is_written_once_and_a_retry_returns_it(store):
    store.open_cases([alert(1)], NOW)
    with pytest.raises(CaseConflict, match="claim it first"):
        store.decide(1, "ann", "fraud", "", "key-0000001", NOW)
    store.claim(1, "ann", LOCK, NOW)
    first = store.decide(1, "ann", "fraud", "card stolen", "key-0000001", NOW)
    again = store.decide(1, "ann", "fraud", "card stolen", "key-0000001", NOW)
    assert first == again and first.state == "closed" and first.disposition == "fraud"
    with pytest.raises(CaseConflict, match="already decided"):
        store.decide(1, "ann", "legitimate", "", "key-0000002", NOW)
    assert [e.action for e in store.events(1)] == ["claim", "decide"]


@pytest.mark.parametrize(
    ("disposition", "note", "key", "named"),
    [
        ("maybe", "", "key-0000001", "disposition"),
        ("fraud", "x" * 4001, "key-0000001", "note"),
        ("fraud", "", "short", "idempotency_key"),
    ],
)
def test_a_bad_decision_names_its_field_and_changes_nothing(store, disposition, note, key, named):
    store.open_cases([alert(1)], NOW)
    store.claim(1, "ann", LOCK, NOW)
    with pytest.raises(ValueError, match=named):
        store.decide(1, "ann", disposition, note, key, NOW)
    assert store.get(1).state == "in_review"


def test_the_queue_is_by_priority_within_what_is_left_of_the_days_capacity(store):
    store.open_cases([alert(i, score=0.5 + i / 100) for i in range(6)], NOW)
    cases, beyond = store.queue(4, NOW)
    assert [c.event_id for c in cases] == [5, 4, 3, 2] and beyond == 2
    store.claim(cases[0].id, "ann", LOCK, NOW)
    store.decide(cases[0].id, "ann", "unsure", "", "key-0000001", NOW)
    cases, beyond = store.queue(4, NOW + dt.timedelta(hours=1))
    assert [c.event_id for c in cases] == [4, 3, 2] and beyond == 2
    tomorrow = NOW + dt.timedelta(days=1)
    assert len(store.queue(4, tomorrow)[0]) == 4
    stats = store.stats(NOW + dt.timedelta(hours=2))
    assert (stats.open, stats.decided_today, stats.by_disposition) == (5, 1, {"unsure": 1})
    assert stats.decided_last_hour == 0 and stats.oldest_open_hours == pytest.approx(2.0)


def test_an_unknown_case_is_not_found(store):
    with pytest.raises(CaseNotFound):
        store.get(99)


def test_an_analysts_token_is_shown_once_stored_hashed_and_checked(store):
    token = store.add_analyst("ann", "analyst")
    assert store.authenticate("ann", token).role == "analyst"
    assert store.authenticate("ann", token + "x") is None
    assert store.authenticate("bob", token) is None
    with store.engine.connect() as connection:
        stored = connection.execute(sa.text("select token_sha256 from analysts")).scalar_one()
    assert token not in stored
    with pytest.raises(ValueError, match="already exists"):
        store.add_analyst("ann", "lead")
    with pytest.raises(ValueError, match="role"):
        store.add_analyst("eve", "admin")
    store.disable_analyst("ann")
    assert store.authenticate("ann", token) is None and store.analyst("ann") is None
    with pytest.raises(ValueError, match="no analyst"):
        store.disable_analyst("nobody")


def _decided(store, event_id, disposition="fraud") -> int:
    store.open_cases([alert(event_id)], NOW)
    case_id = next(c.id for c in store.queue(100, NOW)[0] if c.event_id == event_id)
    store.claim(case_id, "ann", LOCK, NOW)
    store.decide(case_id, "ann", disposition, "", f"key-{event_id:07d}", NOW)
    return case_id


def test_the_outbox_sends_a_clean_batch_in_one_request_with_its_provenance(store):
    first, second = _decided(store, 1), _decided(store, 2, "legitimate")
    _decided(store, 4, "unsure")  # no label
    calls = []

    def post(body):
        calls.append(body)
        return 200, {"accepted": len(body), "external": 0}

    report = deliver(store, post, "transaction_id")
    assert (report.held, report.stopped) == (2, None) and len(calls) == 1
    assert calls[0][0] == {
        "transaction_id": 1,
        "is_fraud": True,
        "label_time": NOW.isoformat(),
        "external": False,
        "source": "analyst",
        "labelled_by": "ann",
    }
    assert calls[0][1]["is_fraud"] is False
    assert {store.get(i).label_outcome for i in (first, second)} == {"held"}
    assert deliver(store, post, "transaction_id").held == 0 and len(calls) == 1


def test_a_refused_batch_is_sent_case_by_case_and_each_outcome_recorded(store):
    held, unknown, cleared = (
        _decided(store, 1),
        _decided(store, 2),
        _decided(store, 3, "legitimate"),
    )

    def refusal(row):
        if row["transaction_id"] == 2 and not row["external"]:
            return {"error": "labels[0].transaction_id: transaction 2 was not scored"}
        if row["transaction_id"] == 3:
            return {"error": "labels[0].is_fraud: transaction 3 is a confirmed fraud"}
        return None

    def post(body):
        refused = next((r for r in map(refusal, body) if r), None)
        return (422, refused) if refused else (200, {"accepted": len(body)})

    report = deliver(store, post, "transaction_id")
    assert (report.held, report.external, report.superseded, report.stopped) == (1, 1, 1, None)
    outcomes = {i: store.get(i).label_outcome for i in (held, unknown, cleared)}
    assert outcomes == {held: "held", unknown: "external", cleared: "superseded"}


def test_an_unreachable_service_leaves_labels_for_the_next_round(store):
    case_id = _decided(store, 1)
    report = deliver(store, lambda body: (503, {"error": "down"}), "transaction_id")
    assert report.stopped and store.get(case_id).label_delivered_at is None
    assert deliver(store, lambda body: (200, {}), "transaction_id").held == 1


def test_the_intake_opens_cases_in_the_background_and_keeps_alerts_while_the_store_is_down(
    tmp_path,
):
    url = f"sqlite:///{tmp_path / 'cases.db'}"
    attempts = []

    def factory():
        attempts.append(1)
        if len(attempts) == 1:
            raise ConnectionError("database down")
        return CaseStore.open(url)

    intake = CaseIntake(factory, flush_seconds=0.01)
    intake.submit([alert(1), alert(2)])
    deadline = time.monotonic() + 30
    while not intake.failures:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    intake.close(timeout=30)
    store = CaseStore.open(url)
    assert intake.failures == 1 and intake.opened == 2 and intake.pending == 0
    assert len(store.queue(10)[0]) == 2
    store.close()


def test_a_store_already_at_the_newest_schema_opens_without_entering_alembic(tmp_path, monkeypatch):
    from fraudops.cases import store as module

    url = f"sqlite:///{tmp_path / 'cases.db'}"
    CaseStore.open(url).close()  # creates and migrates

    def no_migration(*_args, **_kwargs):  # Alembic's environment is module-global: a second
        raise AssertionError("migrated again")  # one beside MLflow's broke both

    monkeypatch.setattr(module.command, "upgrade", no_migration)
    again = CaseStore.open(url)
    assert again.count() == 0
    again.close()
