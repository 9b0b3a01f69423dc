"""Events, attendees, reminders and duty notices.

Revision ID: 0004_events
Revises: 0001_core
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_events"
down_revision = "0001_core"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "calendar_event",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("alliance_id", sa.String(64), sa.ForeignKey("alliance.id"), index=True),
        sa.Column("start", TS, nullable=False, index=True),
        sa.Column("place", sa.String(200)),
        sa.Column("capacity", sa.Integer()),
        sa.Column("organizer", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "event_attendee",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.Integer(), sa.ForeignKey("calendar_event.id"), nullable=False, index=True),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("joined_at", TS, nullable=False),
        sa.UniqueConstraint("event_id", "user_id", name="uq_event_attendee"),
    )
    op.create_table(
        "event_reminder",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.Integer(), sa.ForeignKey("calendar_event.id"), nullable=False, index=True),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("target", sa.String(100), nullable=False),
        sa.Column("due", TS, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claimed_by", sa.String(100)),
        sa.Column("claimed_at", TS),
        sa.Column("finished_at", TS),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.UniqueConstraint("event_id", "sequence", "kind", "target", name="uq_event_reminder"),
    )
    op.create_index("ix_event_reminder_due", "event_reminder", ["status", "due"])
    op.create_table(
        "duty_notice",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("alliance_id", sa.String(64), nullable=False),
        sa.Column("period", sa.String(32), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.UniqueConstraint("kind", "alliance_id", "period", name="uq_duty_notice"),
    )


def downgrade() -> None:
    op.drop_index("ix_event_reminder_due", table_name="event_reminder")
    for table in ("duty_notice", "event_reminder", "event_attendee", "calendar_event"):
        op.drop_table(table)
