"""Processed messages become the inbox: a claimed message keeps its decrypted content (so a recovery worker
can finish it after a crash), the token of the handler that owns it (only the owner may mark it done) and
when the channel answered the callback "later" (a retry then waits for the handler instead of taking over).

Revision ID: 0008_inbox
Revises: 0006_dedupe_answers
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_inbox"
down_revision = "0006_dedupe_answers"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("processed_message", sa.Column("event", sa.JSON(), nullable=True))
    op.add_column("processed_message", sa.Column("owner", sa.String(32), nullable=True))
    op.add_column("processed_message", sa.Column("attempts", sa.Integer(), nullable=False, server_default="1"))
    op.add_column("processed_message", sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_processed_message_open", "processed_message", ["answered_at", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_processed_message_open", table_name="processed_message")
    with op.batch_alter_table("processed_message") as batch:
        batch.drop_column("acknowledged_at")
        batch.drop_column("attempts")
        batch.drop_column("owner")
        batch.drop_column("event")
