"""Star-rating history says where a change came from: an evaluation round, or a roster import.

Revision ID: 0024a_eval17b
Revises: 0022b_star_history
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0024a_eval17b"
down_revision = "0022b_star_history"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("star_history", sa.Column("origin", sa.String(16), nullable=False, server_default=""))
    op.execute("UPDATE star_history SET origin = 'round' WHERE round_id IS NOT NULL")


def downgrade() -> None:
    op.drop_column("star_history", "origin")
