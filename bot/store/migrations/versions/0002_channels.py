"""WeCom channels: shared access tokens, AI-bot streams and the outbox send log (pacing).

Revision ID: 0002_channels
Revises: 0001_core
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_channels"
down_revision = "0001_core"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "wecom_token",
        sa.Column("key", sa.String(128), primary_key=True),
        sa.Column("access_token", sa.Text()),
        sa.Column("expires_at", TS),
        sa.Column("lease_owner", sa.String(100)),
        sa.Column("lease_until", TS),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "aibot_stream",
        sa.Column("stream_id", sa.String(64), primary_key=True),
        sa.Column("msg_id", sa.String(255), nullable=False),
        sa.Column("response_url", sa.Text()),
        sa.Column("content", sa.Text()),
        sa.Column("finished", sa.Boolean(), nullable=False),
        sa.Column("delivered_via", sa.String(16)),
        sa.Column("created_at", TS, nullable=False, index=True),
        sa.Column("finished_at", TS),
        sa.UniqueConstraint("msg_id", name="uq_aibot_stream_msg_id"),
    )
    op.create_table(
        "outbox_send",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("target_key", sa.String(600), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("at", TS, nullable=False),
    )
    op.create_index("ix_outbox_send_target_at", "outbox_send", ["target_key", "at"])


def downgrade() -> None:
    op.drop_index("ix_outbox_send_target_at", table_name="outbox_send")
    for table in ("outbox_send", "aibot_stream", "wecom_token"):
        op.drop_table(table)
