"""The funding ledger (fund_entry), budgets (fund_budget) and files kept for delivery (report_file).

Revision ID: 0023_funds
Revises: 0005_topics
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0023_funds"
down_revision = "0005_topics"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "fund_entry",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("alliance_id", sa.String(64), sa.ForeignKey("alliance.id"), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("category", sa.String(32), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("entry_date", sa.Date(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False, server_default=""),
        sa.Column("recorded_by", sa.String(64), nullable=False),
        sa.Column("activity_id", sa.Integer()),
        sa.Column("topic_id", sa.Integer()),
        sa.Column("award_id", sa.Integer()),
        sa.Column("override", sa.Text(), nullable=False, server_default=""),
        sa.Column("voided", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("source", sa.String(16), nullable=False, server_default="chat"),
        sa.Column("message_key", sa.String(255)),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("uq_fund_entry_message_key", "fund_entry", ["message_key"], unique=True)
    op.create_index("uq_fund_entry_award", "fund_entry", ["award_id", "alliance_id"], unique=True)
    op.create_index("ix_fund_entry_alliance_year", "fund_entry", ["alliance_id", "year"])
    op.create_table(
        "fund_budget",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("alliance_id", sa.String(64), sa.ForeignKey("alliance.id"), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("category", sa.String(32), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("set_by", sa.String(64), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.UniqueConstraint("alliance_id", "year", "category", name="uq_fund_budget"),
    )
    op.create_table(
        "report_file",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )


def downgrade() -> None:
    for table in ("report_file", "fund_budget", "fund_entry"):
        op.drop_table(table)
