"""Talent: attendance at activities, mentorships (名师带徒), titles and honours.

Revision ID: 0023b_talent
Revises: 0023_funds
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0023b_talent"
down_revision = "0023_funds"
branch_labels = None
depends_on = "0004_events"

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "activity_attendance",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "activity_id", sa.Integer(), sa.ForeignKey("calendar_event.id"), nullable=False, index=True
        ),
        sa.Column("person", sa.String(64), nullable=False),
        sa.Column("marked_by", sa.String(64), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.UniqueConstraint("activity_id", "person", name="uq_activity_attendance"),
    )
    op.create_table(
        "mentorship",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("master", sa.String(64), nullable=False),
        sa.Column("apprentice", sa.String(64), nullable=False),
        sa.Column("studio_id", sa.String(64), sa.ForeignKey("studio.id"), nullable=False, index=True),
        sa.Column("started_on", sa.Date(), nullable=False),
        sa.Column("goal", sa.Text(), nullable=False, server_default=""),
        sa.Column("outcome", sa.Text(), nullable=False, server_default=""),
        sa.Column("ended_on", sa.Date()),
        sa.Column("recorded_by", sa.String(64), nullable=False),
        sa.Column("message_key", sa.String(255)),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("uq_mentorship_message_key", "mentorship", ["message_key"], unique=True)
    op.create_table(
        "talent_honour",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("person", sa.String(64), nullable=False),
        sa.Column("title", sa.String(32), nullable=False, index=True),
        sa.Column("grade", sa.String(16), nullable=False),
        sa.Column("earned_on", sa.Date(), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=False, server_default=""),
        sa.Column("studio_id", sa.String(64), sa.ForeignKey("studio.id"), index=True),
        sa.Column("alliance_id", sa.String(64), sa.ForeignKey("alliance.id"), index=True),
        sa.Column("recorded_by", sa.String(64), nullable=False),
        sa.Column("message_key", sa.String(255)),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("uq_talent_honour_message_key", "talent_honour", ["message_key"], unique=True)


def downgrade() -> None:
    for table in ("talent_honour", "mentorship", "activity_attendance"):
        op.drop_table(table)
