"""Achievements and awards get a state: an achievement credited to another studio waits for that studio's
confirmation (``pending``, with the studios still to confirm), and an achievement or award can be withdrawn
(撤销) instead of deleted, so the audit trail keeps pointing at a row.

Revision ID: 0022c_achievement_confirm
Revises: 0005_topics
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0022c_achievement_confirm"
down_revision = "0005_topics"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("achievement") as batch:
        batch.add_column(sa.Column("state", sa.String(16), nullable=False, server_default="confirmed"))
        batch.add_column(sa.Column("pending_studios", sa.JSON(), nullable=True))
    with op.batch_alter_table("award") as batch:
        batch.add_column(sa.Column("state", sa.String(16), nullable=False, server_default="active"))


def downgrade() -> None:
    with op.batch_alter_table("award") as batch:
        batch.drop_column("state")
    with op.batch_alter_table("achievement") as batch:
        batch.drop_column("pending_studios")
        batch.drop_column("state")
