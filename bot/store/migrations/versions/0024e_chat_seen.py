"""The conversations where someone has spoken to the AI bot (the only ones it may push into).

Revision ID: 0024e_chat_seen
Revises: 0023c_benefit
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0024e_chat_seen"
down_revision = "0023c_benefit"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "wecom_chat_seen",
        sa.Column("address", sa.String(200), primary_key=True),
        sa.Column("first_seen", TS, nullable=False),
        sa.Column("last_seen", TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("wecom_chat_seen")
