"""The case store: every alert opens a case; analysts claim, decide, and their decisions
become labels (SQLAlchemy on SQLite by default, PostgreSQL in team mode; Alembic migrations).

Concurrency rules, each one SQL statement so that they hold across processes and replicas:

- :meth:`CaseStore.open_cases` inserts with ``ON CONFLICT DO NOTHING`` on the event: a retried
  scoring request never opens a second case.
- :meth:`CaseStore.claim` is one conditional ``UPDATE`` (open, or in review with an expired
  lock, or already the claimant's): of two analysts claiming at once exactly one row is
  updated, so exactly one wins (PostgreSQL re-checks the condition after the first commits).
- :meth:`CaseStore.decide` is one conditional ``UPDATE`` (in review, claimed by this analyst)
  that also stores the request's idempotency key (unique): a retried decision finds its own
  key and returns the stored case; a second, different decision is refused.

Times are naive UTC. Event ids are kept as JSON (``123`` vs ``"123"``), so a label carries the
id with the type the dataset spec gives it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import secrets
import threading
from collections.abc import Hashable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from fraudops.cases import ROLES
from fraudops.cases.tables import analysts, case_events, cases

OPEN, IN_REVIEW, CLOSED = "open", "in_review", "closed"
FRAUD, LEGITIMATE, UNSURE = "fraud", "legitimate", "unsure"
DISPOSITIONS = (FRAUD, LEGITIMATE, UNSURE)
#: Longest analyst note kept (characters).
MAX_NOTE_CHARS = 4000
MIGRATIONS = Path(__file__).parent / "migrations"
#: PostgreSQL advisory lock key held while migrating (two processes starting at once).
_MIGRATION_LOCK = 0x46524F50
#: One migration at a time in this process (Alembic's environment is module-global).
_PROCESS_MIGRATION = threading.Lock()


class CaseConflict(ValueError):
    """A claim or decision the case's state does not allow (claimed by someone else, already
    decided, not claimed); nothing was changed. ``reason`` is a short code."""

    def __init__(self, case_id: int, reason: str, message: str) -> None:
        self.case_id, self.reason = case_id, reason
        super().__init__(f"case {case_id}: {message}")


class CaseNotFound(KeyError):
    """No case with that id."""


def utcnow() -> dt.datetime:
    """Now, naive UTC (the store's time zone)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def event_key(event_id: Hashable) -> str:
    """The stored form of an event id: JSON, so ``123`` and ``"123"`` stay apart."""
    return json.dumps(event_id)


@dataclass(frozen=True)
class NewCase:
    """What an alert brings to its case (built by the scorer).

    Attributes:
        event_id: the spec's event id (int or str).
        event_time: the event's time, naive UTC.
        score: fraud probability in [0, 1]; threshold: the champion's decision threshold.
        model_version: the registry version that raised the alert.
        reasons: reason codes as (feature, contribution in log-odds, phrase).
        entities: entity name → clear id (kept for the console's logged-in analysts only).
        entity_hashes: the prediction log's entity columns (PII ones hashed).
    """

    event_id: Hashable
    event_time: dt.datetime
    score: float
    threshold: float
    model_version: str
    reasons: tuple[tuple[str, float, str], ...]
    entities: dict[str, Any]
    entity_hashes: dict[str, Any]


@dataclass(frozen=True)
class Case:
    """A case as stored; see :mod:`fraudops.cases.tables` for the columns."""

    id: int
    event_id: Hashable
    event_time: dt.datetime
    opened_at: dt.datetime
    score: float
    threshold: float
    model_version: str
    reasons: list[list[Any]]
    entities: dict[str, Any]
    entity_hashes: dict[str, Any]
    priority: float
    state: str
    claimed_by: str | None
    lock_expires: dt.datetime | None
    disposition: str | None
    note: str | None
    decided_by: str | None
    decided_at: dt.datetime | None
    label_delivered_at: dt.datetime | None
    label_outcome: str | None
    idempotency_key: str | None = field(default=None, repr=False)

    @classmethod
    def from_row(cls, row: Any) -> Case:
        m = row._mapping
        return cls(
            id=m["id"],
            event_id=json.loads(m["event_key"]),
            event_time=m["event_time"],
            opened_at=m["opened_at"],
            score=m["score"],
            threshold=m["threshold"],
            model_version=m["model_version"],
            reasons=json.loads(m["reasons"]),
            entities=json.loads(m["entities"]),
            entity_hashes=json.loads(m["entity_hashes"]),
            priority=m["priority"],
            state=m["state"],
            claimed_by=m["claimed_by"],
            lock_expires=m["lock_expires"],
            disposition=m["disposition"],
            note=m["note"],
            decided_by=m["decided_by"],
            decided_at=m["decided_at"],
            label_delivered_at=m["label_delivered_at"],
            label_outcome=m["label_outcome"],
            idempotency_key=m["idempotency_key"],
        )

    def locked_for(self, analyst: str, now: dt.datetime) -> bool:
        """Someone other than ``analyst`` holds an unexpired claim on it."""
        return (
            self.state == IN_REVIEW
            and self.claimed_by != analyst
            and self.lock_expires is not None
            and self.lock_expires > now
        )


@dataclass(frozen=True)
class CaseEvent:
    """One entry of the cases' audit log."""

    case_id: int
    at: dt.datetime
    actor: str
    action: str
    detail: dict[str, Any]


@dataclass(frozen=True)
class Analyst:
    """A console user: name and role (:data:`ROLES`)."""

    name: str
    role: str


@dataclass(frozen=True)
class QueueStats:
    """The queue as ``/metrics`` and the monitoring report show it.

    Attributes:
        open: open cases plus those in review (queue depth); in_review: claimed, lock valid.
        oldest_open_hours: age of the oldest case not yet decided (0 when none).
        decided_last_hour: decisions in the hour before ``now``.
        decided_today: decisions since midnight UTC.
        by_disposition: closed cases per disposition.
    """

    open: int
    in_review: int
    oldest_open_hours: float
    decided_last_hour: int
    decided_today: int
    by_disposition: dict[str, int]


def _sqlite_path(url: sa.engine.URL) -> Path | None:
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(url.database)


@contextlib.contextmanager
def _migration_lock(engine: Engine) -> Iterator[sa.Connection]:
    """A connection that alone migrates: a file lock beside a SQLite file, an advisory lock on
    PostgreSQL (held until the migration's transaction ends)."""
    path = _sqlite_path(engine.url)
    with contextlib.ExitStack() as stack:
        if path is not None:
            handle = stack.enter_context(open(path.with_suffix(".migrate.lock"), "w"))
            fcntl.flock(handle, fcntl.LOCK_EX)
        connection = stack.enter_context(engine.begin())
        if engine.dialect.name == "postgresql":
            connection.execute(sa.select(sa.func.pg_advisory_xact_lock(_MIGRATION_LOCK)))
        yield connection


def _at_head(connection: sa.Connection, head: str | None) -> bool:
    return MigrationContext.configure(connection).get_current_revision() == head


def upgrade(engine: Engine) -> None:
    """Bring the database to the newest schema (Alembic ``upgrade head``); safe when several
    processes start at once.

    A database already at the newest revision is left alone without entering Alembic's
    environment: that environment lives in module globals (``alembic.context``), so two
    migrations in one process at once (MLflow migrates its own database the same way) break
    each other; checking the revision uses no global.
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    with engine.connect() as connection:
        if _at_head(connection, head):
            return
    with _PROCESS_MIGRATION, _migration_lock(engine) as connection:
        if _at_head(connection, head):  # another process migrated it meanwhile
            return
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout and foreign keys.

    Raises:
        sqlalchemy.exc.ArgumentError: ``url`` is not a database URL.
    """
    parsed = sa.engine.make_url(url)
    path = _sqlite_path(parsed)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(parsed, connect_args={"timeout": 30})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            # WAL's recommended level: no corruption on a crash, one fsync per checkpoint
            # instead of per commit (a claim or a decision is a commit)
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    return sa.create_engine(parsed, pool_pre_ping=True)


def token_digest(token: str) -> str:
    """SHA-256 of a console token (tokens are 256 random bits: no slow hash is needed)."""
    return hashlib.sha256(token.encode()).hexdigest()


class CaseStore:
    """Cases, their audit log and the console's analysts in one database.

    Create with :meth:`open` (migrates to the newest schema); :meth:`close` disposes the pool.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str) -> CaseStore:
        """The store at ``url``, its schema migrated to the newest revision."""
        engine = make_engine(url)
        upgrade(engine)
        return cls(engine)

    def close(self) -> None:
        self.engine.dispose()

    def _insert_ignoring_duplicates(self) -> Any:
        from sqlalchemy.dialects import postgresql, sqlite

        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        return dialect.insert(cases).on_conflict_do_nothing(index_elements=["event_key"])

    # -- intake --------------------------------------------------------------------------

    def open_cases(self, alerts: Sequence[NewCase], now: dt.datetime | None = None) -> int:
        """Open one case per alert; an event that already has a case is skipped.

        Returns:
            Cases opened (alerts minus those already open).
        """
        if not alerts:
            return 0
        now = now or utcnow()
        rows = [
            {
                "event_key": event_key(a.event_id),
                "event_time": a.event_time,
                "opened_at": now,
                "score": float(a.score),
                "threshold": float(a.threshold),
                "model_version": str(a.model_version),
                "reasons": json.dumps([list(r) for r in a.reasons]),
                "entities": json.dumps(a.entities, default=str),
                "entity_hashes": json.dumps(a.entity_hashes, default=str),
                "priority": float(a.score),
                "state": OPEN,
            }
            for a in alerts
        ]
        with self.engine.begin() as connection:
            result = connection.execute(self._insert_ignoring_duplicates(), rows)
        return max(result.rowcount, 0)

    # -- reading -------------------------------------------------------------------------

    def get(self, case_id: int) -> Case:
        """The case ``case_id``.

        Raises:
            CaseNotFound: there is none.
        """
        with self.engine.connect() as connection:
            row = connection.execute(sa.select(cases).where(cases.c.id == case_id)).first()
        if row is None:
            raise CaseNotFound(case_id)
        return Case.from_row(row)

    def queue(
        self,
        capacity: int,
        now: dt.datetime | None = None,
        *,
        min_score: float = 0.0,
        model_version: str | None = None,
        mine: str | None = None,
    ) -> tuple[list[Case], int]:
        """The cases to review now: undecided, highest priority first, within what is left
        of today's capacity (``capacity`` minus decisions since midnight UTC).

        Args:
            capacity: cases the team reviews per day (>= 0).
            min_score, model_version: filters; mine: only cases this analyst holds.

        Returns:
            The cases shown, and how many undecided cases (matching the filters) lie beyond
            the capacity.
        """
        now = now or utcnow()
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        where = [cases.c.state != CLOSED, cases.c.score >= min_score]
        if model_version:
            where.append(cases.c.model_version == model_version)
        if mine:
            where.append(cases.c.claimed_by == mine)
        with self.engine.connect() as connection:
            today = connection.execute(
                sa.select(sa.func.count()).where(cases.c.decided_at >= midnight)
            ).scalar_one()
            rows = connection.execute(
                sa.select(cases)
                .where(*where)
                .order_by(cases.c.priority.desc(), cases.c.id)
                .limit(max(capacity - today, 0))
            ).all()
            total = connection.execute(
                sa.select(sa.func.count()).select_from(cases).where(*where)
            ).scalar_one()
        return [Case.from_row(r) for r in rows], max(total - len(rows), 0)

    def decided(self) -> list[Case]:
        """Every decided case, oldest decision first (reports and the demo's table)."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(cases).where(cases.c.state == CLOSED).order_by(cases.c.decided_at)
            ).all()
        return [Case.from_row(r) for r in rows]

    def event_ids(self, after: int = 0) -> tuple[int, list[Hashable]]:
        """(newest case id, event ids of the cases after case id ``after``): read a growing
        set of alerted events incrementally (:class:`fraudops.cases.figures.FigureReader`)."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(cases.c.id, cases.c.event_key).where(cases.c.id > after)
            ).all()
        newest = max((row.id for row in rows), default=after)
        return newest, [json.loads(row.event_key) for row in rows]

    def count(self) -> int:
        """Cases in the store, decided or not."""
        with self.engine.connect() as connection:
            return connection.execute(sa.select(sa.func.count()).select_from(cases)).scalar_one()

    def closed(self, limit: int = 50) -> list[Case]:
        """The latest decided cases, newest first."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(cases)
                .where(cases.c.state == CLOSED)
                .order_by(cases.c.decided_at.desc())
                .limit(limit)
            ).all()
        return [Case.from_row(r) for r in rows]

    def stats(self, now: dt.datetime | None = None) -> QueueStats:
        """Queue depth, in review, oldest undecided age, decisions per hour and today."""
        now = now or utcnow()
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        with self.engine.connect() as connection:
            undecided, oldest = connection.execute(
                sa.select(sa.func.count(), sa.func.min(cases.c.opened_at)).where(
                    cases.c.state != CLOSED
                )
            ).one()
            in_review = connection.execute(
                sa.select(sa.func.count()).where(
                    cases.c.state == IN_REVIEW, cases.c.lock_expires > now
                )
            ).scalar_one()
            last_hour = connection.execute(
                sa.select(sa.func.count()).where(cases.c.decided_at > now - dt.timedelta(hours=1))
            ).scalar_one()
            today = connection.execute(
                sa.select(sa.func.count()).where(cases.c.decided_at >= midnight)
            ).scalar_one()
            by = connection.execute(
                sa.select(cases.c.disposition, sa.func.count())
                .where(cases.c.state == CLOSED)
                .group_by(cases.c.disposition)
            ).all()
        age = (now - oldest).total_seconds() / 3600 if oldest is not None else 0.0
        return QueueStats(
            open=undecided,
            in_review=in_review,
            oldest_open_hours=max(age, 0.0),
            decided_last_hour=last_hour,
            decided_today=today,
            by_disposition={d: n for d, n in by},
        )

    def events(self, case_id: int) -> list[CaseEvent]:
        """The audit log of one case, oldest first."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(case_events)
                .where(case_events.c.case_id == case_id)
                .order_by(case_events.c.id)
            ).all()
        return [CaseEvent(r.case_id, r.at, r.actor, r.action, json.loads(r.detail)) for r in rows]

    # -- review --------------------------------------------------------------------------

    def record(
        self,
        case_id: int,
        actor: str,
        action: str,
        detail: dict[str, Any] | None = None,
        connection: sa.Connection | None = None,
        now: dt.datetime | None = None,
    ) -> None:
        """Append one event to the cases' audit log (in ``connection``'s transaction if
        given, so that a change and its audit entry commit together)."""
        row = {
            "case_id": case_id,
            "at": now or utcnow(),
            "actor": actor,
            "action": action,
            "detail": json.dumps(detail or {}, sort_keys=True, default=str),
        }
        if connection is not None:
            connection.execute(sa.insert(case_events), row)
            return
        with self.engine.begin() as own:
            own.execute(sa.insert(case_events), row)

    def claim(
        self, case_id: int, analyst: str, lock: dt.timedelta, now: dt.datetime | None = None
    ) -> Case:
        """Claim a case for review until ``now + lock`` (renews the analyst's own claim).

        Raises:
            CaseNotFound: no such case.
            CaseConflict: ``claimed`` (someone else holds an unexpired claim) or ``closed``.
        """
        now = now or utcnow()
        claimable = sa.or_(
            cases.c.state == OPEN,
            sa.and_(
                cases.c.state == IN_REVIEW,
                sa.or_(cases.c.lock_expires <= now, cases.c.claimed_by == analyst),
            ),
        )
        with self.engine.begin() as connection:
            result = connection.execute(
                sa.update(cases)
                .where(cases.c.id == case_id, claimable)
                .values(state=IN_REVIEW, claimed_by=analyst, lock_expires=now + lock)
            )
            if result.rowcount == 1:
                self.record(case_id, analyst, "claim", {"until": now + lock}, connection, now)
        case = self.get(case_id)
        if result.rowcount != 1:
            if case.state == CLOSED:
                raise CaseConflict(case_id, "closed", f"already decided ({case.disposition})")
            raise CaseConflict(
                case_id,
                "claimed",
                f"in review by {case.claimed_by} until {case.lock_expires:%H:%M} UTC",
            )
        return case

    def release(self, case_id: int, analyst: str, *, force: bool = False) -> Case:
        """Give a claim back (``force``: a lead releases anyone's claim).

        Raises:
            CaseNotFound, CaseConflict: ``not_claimed`` (not in review by ``analyst``).
        """
        where = [cases.c.id == case_id, cases.c.state == IN_REVIEW]
        if not force:
            where.append(cases.c.claimed_by == analyst)
        with self.engine.begin() as connection:
            result = connection.execute(
                sa.update(cases)
                .where(*where)
                .values(state=OPEN, claimed_by=None, lock_expires=None)
            )
            if result.rowcount == 1:
                self.record(case_id, analyst, "release", {"forced": force}, connection)
        case = self.get(case_id)
        if result.rowcount != 1:
            raise CaseConflict(case_id, "not_claimed", f"not in review by {analyst}")
        return case

    def decide(
        self,
        case_id: int,
        analyst: str,
        disposition: str,
        note: str,
        idempotency_key: str,
        now: dt.datetime | None = None,
    ) -> Case:
        """Close a case the analyst holds with a disposition and a note, once.

        A retry with the same ``idempotency_key`` returns the stored case and changes nothing.

        Args:
            disposition: one of :data:`DISPOSITIONS`; note: free text (at most
                :data:`MAX_NOTE_CHARS`); idempotency_key: 8 to 64 characters, one per decision.

        Raises:
            ValueError: a bad disposition, note or key (naming which).
            CaseNotFound: no such case.
            CaseConflict: ``closed`` (decided by another request), ``not_claimed`` (not in
                review by ``analyst``: claim it first).
        """
        if disposition not in DISPOSITIONS:
            raise ValueError(f"disposition: {disposition!r} is not one of {DISPOSITIONS}")
        if len(note) > MAX_NOTE_CHARS:
            raise ValueError(f"note: {len(note)} characters, at most {MAX_NOTE_CHARS}")
        if not 8 <= len(idempotency_key) <= 64:
            raise ValueError("idempotency_key: must have 8 to 64 characters")
        now = now or utcnow()
        with self.engine.begin() as connection:
            result = connection.execute(
                sa.update(cases)
                .where(
                    cases.c.id == case_id,
                    cases.c.state == IN_REVIEW,
                    cases.c.claimed_by == analyst,
                )
                .values(
                    state=CLOSED,
                    disposition=disposition,
                    note=note,
                    decided_by=analyst,
                    decided_at=now,
                    idempotency_key=idempotency_key,
                    lock_expires=None,
                )
            )
            if result.rowcount == 1:
                self.record(
                    case_id,
                    analyst,
                    "decide",
                    {"disposition": disposition, "note_chars": len(note)},
                    connection,
                    now,
                )
        case = self.get(case_id)
        if result.rowcount == 1 or case.idempotency_key == idempotency_key:
            return case
        if case.state == CLOSED:
            raise CaseConflict(
                case_id, "closed", f"already decided ({case.disposition}) by {case.decided_by}"
            )
        raise CaseConflict(case_id, "not_claimed", f"not in review by {analyst}: claim it first")

    # -- labels --------------------------------------------------------------------------

    def undelivered_labels(self, limit: int = 500) -> list[Case]:
        """Decided cases whose label (fraud or legitimate) has not reached the label store."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(cases)
                .where(
                    cases.c.state == CLOSED,
                    cases.c.disposition.in_((FRAUD, LEGITIMATE)),
                    cases.c.label_delivered_at.is_(None),
                )
                .order_by(cases.c.decided_at)
                .limit(limit)
            ).all()
        return [Case.from_row(r) for r in rows]

    def mark_delivered(
        self, case_ids: int | Sequence[int], outcome: str, now: dt.datetime | None = None
    ) -> None:
        """Record that cases' labels reached the label store (``outcome``: ``held``,
        ``external``, or ``superseded`` when a chargeback already said otherwise), in one
        transaction with their audit entries."""
        ids = [case_ids] if isinstance(case_ids, int) else list(case_ids)
        now = now or utcnow()
        with self.engine.begin() as connection:
            connection.execute(
                sa.update(cases)
                .where(cases.c.id.in_(ids), cases.c.label_delivered_at.is_(None))
                .values(label_delivered_at=now, label_outcome=outcome)
            )
            for case_id in ids:
                self.record(case_id, "label-outbox", "label", {"outcome": outcome}, connection, now)

    # -- analysts ------------------------------------------------------------------------

    def add_analyst(self, name: str, role: str, now: dt.datetime | None = None) -> str:
        """Add a console user and return their token (shown once; only its hash is kept).

        Raises:
            ValueError: a bad role or name, or the name exists (naming which).
        """
        if role not in ROLES:
            raise ValueError(f"role: {role!r} is not one of {ROLES}")
        if not name or len(name) > 64 or not name.replace("-", "").replace("_", "").isalnum():
            raise ValueError(f"name: {name!r} must be 1-64 letters, digits, '-' or '_'")
        token = secrets.token_urlsafe(32)
        try:
            with self.engine.begin() as connection:
                connection.execute(
                    sa.insert(analysts).values(
                        name=name,
                        role=role,
                        token_sha256=token_digest(token),
                        created_at=now or utcnow(),
                        disabled=False,
                    )
                )
        except sa.exc.IntegrityError:
            raise ValueError(f"name: analyst {name!r} already exists") from None
        return token

    def disable_analyst(self, name: str) -> None:
        """Revoke a console user: their token stops working and their open session ends at
        its next request.

        Raises:
            ValueError: no analyst is called ``name``.
        """
        with self.engine.begin() as connection:
            result = connection.execute(
                sa.update(analysts).where(analysts.c.name == name).values(disabled=True)
            )
        if result.rowcount != 1:
            raise ValueError(f"name: no analyst {name!r}")

    def authenticate(self, name: str, token: str) -> Analyst | None:
        """The analyst whose name and token these are (None otherwise, or when disabled)."""
        with self.engine.connect() as connection:
            row = connection.execute(sa.select(analysts).where(analysts.c.name == name)).first()
        if row is None or row.disabled:
            return None
        if not secrets.compare_digest(row.token_sha256, token_digest(token)):
            return None
        return Analyst(row.name, row.role)

    def analysts(self) -> list[tuple[Analyst, bool]]:
        """Every console user by name, with whether it is enabled."""
        with self.engine.connect() as connection:
            rows = connection.execute(sa.select(analysts).order_by(analysts.c.name)).all()
        return [(Analyst(row.name, row.role), not row.disabled) for row in rows]

    def analyst(self, name: str) -> Analyst | None:
        """The enabled analyst called ``name`` (None otherwise)."""
        with self.engine.connect() as connection:
            row = connection.execute(sa.select(analysts).where(analysts.c.name == name)).first()
        return None if row is None or row.disabled else Analyst(row.name, row.role)
