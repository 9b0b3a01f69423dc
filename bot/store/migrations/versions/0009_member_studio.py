"""A studio lead granted by an admin names the studio they lead (as a granted alliance lead names the
alliance): a lead without a studio could claim nothing.

Revision ID: 0009_member_studio
Revises: 0001_core
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_member_studio"
down_revision = "0001_core"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("member", sa.Column("studio_id", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("member") as batch:
        batch.drop_column("studio_id")
