"""Processed messages remember when and how they were answered (retries get the same answer; unanswered
claims of a dead process are taken over).

Revision ID: 0006_dedupe_answers
Revises: 0001_core
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_dedupe_answers"
down_revision = "0001_core"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("processed_message", sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("processed_message", sa.Column("reply", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("processed_message") as batch:
        batch.drop_column("reply")
        batch.drop_column("answered_at")
