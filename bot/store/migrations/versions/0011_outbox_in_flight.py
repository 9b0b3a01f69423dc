"""An outbox message is marked in flight (``sending_since``) just before its send, and unmarked when the outcome
is recorded: a worker that takes over a lease finds the mark and knows the message may already have reached
WeCom (``in_doubt`` counts such takeovers).

Revision ID: 0011_outbox_in_flight
Revises: 0001_core
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_outbox_in_flight"
down_revision = "0001_core"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("outbox", sa.Column("sending_since", sa.DateTime(timezone=True), nullable=True))
    op.add_column("outbox", sa.Column("in_doubt", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("in_doubt")
        batch.drop_column("sending_since")
