"""Events and problems remember the message that created them, so a retry that takes over a message whose
first handling was interrupted completes the work instead of creating a second event or problem.

Revision ID: 0007_message_keys
Revises: 0003_problems, 0004_events
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_message_keys"
down_revision = ("0003_problems", "0004_events")
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("calendar_event", "problem"):
        op.add_column(table, sa.Column("message_key", sa.String(255), nullable=True))
        op.create_index(f"uq_{table}_message_key", table, ["message_key"], unique=True)


def downgrade() -> None:
    for table in ("calendar_event", "problem"):
        op.drop_index(f"uq_{table}_message_key", table_name=table)
        with op.batch_alter_table(table) as batch:
            batch.drop_column("message_key")
