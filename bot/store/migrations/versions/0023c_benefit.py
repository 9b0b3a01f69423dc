"""The benefit chain: achievement applications with their direct economic benefit, patents and 推广 status.

Revision ID: 0023c_benefit
Revises: 0023b_talent
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0023c_benefit"
down_revision = "0023b_talent"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "achievement_application",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "achievement_id", sa.Integer(), sa.ForeignKey("achievement.id"), nullable=False, index=True
        ),
        sa.Column("project", sa.String(200), nullable=False),
        sa.Column("unit", sa.String(200), nullable=False, server_default=""),
        sa.Column("applied_on", sa.Date(), nullable=False),
        sa.Column("benefit", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("note", sa.Text(), nullable=False, server_default=""),
        sa.Column("recorded_by", sa.String(64), nullable=False),
        sa.Column("message_key", sa.String(255)),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index(
        "uq_achievement_application_message_key", "achievement_application", ["message_key"], unique=True
    )
    op.create_table(
        "achievement_protection",
        sa.Column("achievement_id", sa.Integer(), sa.ForeignKey("achievement.id"), primary_key=True),
        sa.Column("patents", sa.JSON(), nullable=False),
        sa.Column("promotion", sa.String(16), nullable=False, server_default="未推广"),
        sa.Column("updated_by", sa.String(64), nullable=False, server_default=""),
        sa.Column("updated_at", TS, nullable=False),
    )


def downgrade() -> None:
    for table in ("achievement_protection", "achievement_application"):
        op.drop_table(table)
