"""Per-day counts of the problems each studio was asked to take, written with each request: the daily cap
reads one row per studio instead of counting the day's requests (22 ms at 36,888 requests a day).

The counts start empty: on the day of the upgrade a studio may be asked up to its cap once more.

Revision ID: 0019_studio_ask_day
Revises: 0003_problems
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0019_studio_ask_day"
down_revision = "0003_problems"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "studio_ask_day",
        sa.Column("studio_id", sa.String(64), primary_key=True),
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("asked", sa.Integer(), nullable=False, server_default="0"),
    )


def downgrade() -> None:
    op.drop_table("studio_ask_day")
