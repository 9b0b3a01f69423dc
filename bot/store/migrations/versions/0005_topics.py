"""Research topics, supporters, teams, progress, achievements and awards.

Revision ID: 0005_topics
Revises: 0001_core
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_topics"
down_revision = "0001_core"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "research_topic",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("studio_id", sa.String(64), sa.ForeignKey("studio.id"), nullable=False, index=True),
        sa.Column("alliance_id", sa.String(64), sa.ForeignKey("alliance.id"), nullable=False, index=True),
        sa.Column("proposer", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("deadline", TS, nullable=False),
        sa.Column("reminded_at", TS),
        sa.Column("approved_at", TS),
        sa.Column("closed_at", TS),
        sa.Column("conclusion", sa.Text(), nullable=False),
        sa.Column("achievement_id", sa.Integer()),
    )
    op.create_table(
        "topic_support",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("topic_id", sa.Integer(), sa.ForeignKey("research_topic.id"), nullable=False, index=True),
        sa.Column("studio_id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("topic_id", "studio_id", name="uq_topic_support"),
    )
    op.create_table(
        "topic_member",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("topic_id", sa.Integer(), sa.ForeignKey("research_topic.id"), nullable=False, index=True),
        sa.Column("studio_id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("joined_at", TS, nullable=False),
        sa.UniqueConstraint("topic_id", "studio_id", name="uq_topic_member"),
    )
    op.create_table(
        "topic_progress",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("topic_id", sa.Integer(), sa.ForeignKey("research_topic.id"), nullable=False, index=True),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("studio_id", sa.String(64)),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "achievement",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("type", sa.String(32), nullable=False, index=True),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("studios", sa.JSON(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False, index=True),
        sa.Column("topic_id", sa.Integer(), sa.ForeignKey("research_topic.id")),
        sa.Column("registered_by", sa.String(64), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "award",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("achievement_id", sa.Integer(), sa.ForeignKey("achievement.id"), index=True),
        sa.Column("studio_id", sa.String(64), sa.ForeignKey("studio.id"), index=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False, index=True),
        sa.Column("note", sa.String(), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "award",
        "achievement",
        "topic_progress",
        "topic_member",
        "topic_support",
        "research_topic",
    ):
        op.drop_table(table)
