"""Activities get an end time (from a range such as ``9点到11点``) and an audience: every member of the
alliance (``all``, the default), its leads only (``leads``), or an invited list (``invited``).

Revision ID: 0010_activity_audience
Revises: 0004_events
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_activity_audience"
down_revision = "0004_events"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("calendar_event", sa.Column("ends_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        "calendar_event", sa.Column("audience", sa.String(16), nullable=False, server_default="all")
    )
    op.add_column("calendar_event", sa.Column("invited", sa.JSON(), nullable=False, server_default="[]"))


def downgrade() -> None:
    with op.batch_alter_table("calendar_event") as batch:
        batch.drop_column("invited")
        batch.drop_column("audience")
        batch.drop_column("ends_at")
