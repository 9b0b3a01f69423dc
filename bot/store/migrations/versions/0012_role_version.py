"""One row counting changes to who may do what (roster imports, granted roles), bumped in the same transaction
as the change: every process's cache of callers' roles compares it, so a change made anywhere is seen
everywhere without re-reading roles for every message.

Revision ID: 0012_role_version
Revises: 0009_member_studio
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_role_version"
down_revision = "0009_member_studio"
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table(
        "role_version",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("version", sa.Integer(), nullable=False, server_default="0"),
    )
    op.bulk_insert(table, [{"id": 1, "version": 0}])


def downgrade() -> None:
    op.drop_table("role_version")
