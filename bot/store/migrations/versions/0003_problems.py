"""Technical problems, their history and the studios asked to take them.

Revision ID: 0003_problems
Revises: 0001_core
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_problems"
down_revision = "0001_core"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "problem",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("ref", sa.String(100)),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("asker", sa.String(64), nullable=False, index=True),
        sa.Column("group", sa.String(255)),
        sa.Column("alliance_id", sa.String(64), index=True),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("studio_id", sa.String(64), index=True),
        sa.Column("claimed_by", sa.String(64)),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("answered_by", sa.String(64)),
        sa.Column("close_reason", sa.Text(), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("routed_at", TS),
        sa.Column("claimed_at", TS),
        sa.Column("answered_at", TS),
        sa.Column("solved_at", TS),
        sa.Column("closed_at", TS),
        sa.UniqueConstraint("ref", name="uq_problem_ref"),
    )
    op.create_table(
        "problem_event",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("problem_id", sa.Integer(), sa.ForeignKey("problem.id"), nullable=False, index=True),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
    )
    op.create_table(
        "problem_request",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("problem_id", sa.Integer(), sa.ForeignKey("problem.id"), nullable=False, index=True),
        sa.Column("studio_id", sa.String(64), nullable=False, index=True),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("asked_at", TS, nullable=False, index=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.UniqueConstraint("problem_id", "studio_id", name="uq_problem_request"),
    )


def downgrade() -> None:
    for table in ("problem_request", "problem_event", "problem"):
        op.drop_table(table)
