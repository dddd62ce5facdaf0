"""Cases, their audit events and the console's analysts.

Revision ID: 0001
Revises:
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cases",
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
    )
    op.create_index("ix_cases_queue", "cases", ["state", "priority"])
    op.create_index("ix_cases_decided", "cases", ["decided_at"])
    op.create_table(
        "case_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("case_id", sa.Integer, sa.ForeignKey("cases.id"), nullable=False),
        sa.Column("at", sa.DateTime, nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("action", sa.String(24), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
    )
    op.create_index("ix_case_events_case_id", "case_events", ["case_id"])
    op.create_table(
        "analysts",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("token_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("analysts")
    op.drop_table("case_events")
    op.drop_table("cases")
