"""Star-rating history: every change of a studio's stars, by whom, when and in which evaluation round.

Revision ID: 0022b_star_history
Revises: 0022_evaluations
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0022b_star_history"
down_revision = "0022_evaluations"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "star_history",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("studio_id", sa.String(64), sa.ForeignKey("studio.id"), nullable=False),
        sa.Column("before", sa.Integer(), nullable=False),
        sa.Column("after", sa.Integer(), nullable=False),
        sa.Column("round_id", sa.Integer(), sa.ForeignKey("evaluation_round.id"), nullable=True),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_star_history_studio_id", "star_history", ["studio_id"])


def downgrade() -> None:
    op.drop_table("star_history")
