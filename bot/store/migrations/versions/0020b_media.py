"""Photos attached to problems (``problem_photo``): the files are content-addressed under the data directory.

Revision ID: 0020b_media
Revises: 0003_problems
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0020b_media"
down_revision = "0003_problems"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "problem_photo",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("problem_id", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("mime", sa.String(32), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("chat_id", sa.String(255), nullable=True),
        sa.Column("msg_key", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("msg_key", name="uq_problem_photo_msg_key"),
    )
    op.create_index("ix_problem_photo_problem", "problem_photo", ["problem_id"])


def downgrade() -> None:
    op.drop_index("ix_problem_photo_problem", table_name="problem_photo")
    op.drop_table("problem_photo")
