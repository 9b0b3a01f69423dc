"""Core tables: alliances, studios, members, processed messages, outbox.

Revision ID: 0001_core
Revises:
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0001_core"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "alliance",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("lead_name", sa.String(100)),
        sa.Column("lead_userid", sa.String(64), index=True),
        sa.Column("lead_since", sa.Date()),
        sa.Column("announce", sa.JSON(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "studio",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("alliance_id", sa.String(64), sa.ForeignKey("alliance.id"), nullable=False, index=True),
        sa.Column("unit", sa.String(200), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("stars", sa.Integer(), nullable=False),
        sa.Column("lead_name", sa.String(100), nullable=False),
        sa.Column("lead_userid", sa.String(64), nullable=False, index=True),
        sa.Column("expertise", sa.JSON(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "member",
        sa.Column("user_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(100)),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("alliance_id", sa.String(64)),
        sa.Column("first_seen_at", TS, nullable=False),
        sa.Column("last_seen_at", TS, nullable=False),
    )
    op.create_table(
        "processed_message",
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("created_at", TS, nullable=False, index=True),
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("target_kind", sa.String(32), nullable=False),
        sa.Column("target", sa.String(512), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text()),
        sa.Column("dedupe_key", sa.String(255)),
        sa.Column("meta", sa.JSON(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("next_attempt_at", TS, nullable=False),
        sa.Column("lease_until", TS),
        sa.Column("sent_at", TS),
        sa.UniqueConstraint("dedupe_key", name="uq_outbox_dedupe_key"),
    )
    op.create_index("ix_outbox_due", "outbox", ["status", "next_attempt_at"])
    op.create_table(
        "job_run",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(100), nullable=False, index=True),
        sa.Column("slot", TS, nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("finished_at", TS),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("worker", sa.String(100), nullable=False),
        sa.UniqueConstraint("name", "slot", name="uq_job_run_slot"),
    )


def downgrade() -> None:
    op.drop_index("ix_outbox_due", table_name="outbox")
    for table in ("job_run", "outbox", "processed_message", "member", "studio", "alliance"):
        op.drop_table(table)
