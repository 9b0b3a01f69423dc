"""The audit trail (who changed what, when and why) that achievements, awards, funds, evaluations and the
web console write to.

Revision ID: 0013_audit
Revises: 0001_core
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0013_audit"
down_revision = "0001_core"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_entry",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("entity", sa.String(32), nullable=False),
        sa.Column("entity_id", sa.String(64), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("source", sa.String(16), nullable=False, server_default="chat"),
        sa.Column("reason", sa.Text(), nullable=False, server_default=""),
        sa.Column("before", sa.JSON(), nullable=False),
        sa.Column("after", sa.JSON(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_audit_entry_entity", "audit_entry", ["entity"])
    op.create_index("ix_audit_entry_entity_id", "audit_entry", ["entity_id"])
    op.create_index("ix_audit_entry_at", "audit_entry", ["at"])


def downgrade() -> None:
    op.drop_table("audit_entry")
