"""The asker's 👍/👎 on a problem's answer (``problem_feedback``), from the long connection's feedback events.

Revision ID: 0020_longconn
Revises: 0003_problems
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0020_longconn"
down_revision = "0003_problems"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "problem_feedback",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("problem_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("rating", sa.Integer(), nullable=False),
        sa.Column("event_key", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("event_key", name="uq_problem_feedback_event_key"),
    )
    op.create_index("ix_problem_feedback_problem", "problem_feedback", ["problem_id"])


def downgrade() -> None:
    op.drop_index("ix_problem_feedback_problem", table_name="problem_feedback")
    op.drop_table("problem_feedback")
