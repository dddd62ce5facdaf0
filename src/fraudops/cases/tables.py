"""The case store's tables (SQLAlchemy Core); Alembic's migrations create and change them.

- ``cases``: one per alert (unique on the event), with what the alert said (score, threshold,
  model version, reason codes), the event's entities in clear (shown only behind a console
  login) and as the prediction log's keyed hashes, and the review: state, the claimant and
  the claim's expiry, the disposition, note, who and when, the request's idempotency key, and
  whether its label has been delivered to the label store.
- ``case_events``: the append-only audit log of the cases (every view, claim, release,
  decision and label delivery: who, when, what; never an id in clear).
- ``analysts``: console users: name, role, the SHA-256 of their token (the token itself is
  shown once, when the user is added).
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

cases = sa.Table(
    "cases",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("event_key", sa.String(200), nullable=False, unique=True),
    sa.Column("event_time", sa.DateTime, nullable=False),
    sa.Column("opened_at", sa.DateTime, nullable=False),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("threshold", sa.Float, nullable=False),
    sa.Column("model_version", sa.String(40), nullable=False),
    sa.Column("reasons", sa.Text, nullable=False),
    sa.Column("entities", sa.Text, nullable=False),
    sa.Column("entity_hashes", sa.Text, nullable=False),
    sa.Column("priority", sa.Float, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("claimed_by", sa.String(64)),
    sa.Column("lock_expires", sa.DateTime),
    sa.Column("disposition", sa.String(16)),
    sa.Column("note", sa.Text),
    sa.Column("decided_by", sa.String(64)),
    sa.Column("decided_at", sa.DateTime),
    sa.Column("idempotency_key", sa.String(64), unique=True),
    sa.Column("label_delivered_at", sa.DateTime),
    sa.Column("label_outcome", sa.String(40)),
    sa.Index("ix_cases_queue", "state", "priority"),
    sa.Index("ix_cases_decided", "decided_at"),
)

case_events = sa.Table(
    "case_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("case_id", sa.Integer, sa.ForeignKey("cases.id"), nullable=False, index=True),
    sa.Column("at", sa.DateTime, nullable=False),
    sa.Column("actor", sa.String(64), nullable=False),
    sa.Column("action", sa.String(24), nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
)

analysts = sa.Table(
    "analysts",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("token_sha256", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("disabled", sa.Boolean, nullable=False),
)
