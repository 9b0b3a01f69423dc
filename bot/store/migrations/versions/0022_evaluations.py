"""Evaluation rounds (评选), nominees, the panel's scores, and the studios' "八有" checklist.

Revision ID: 0022_evaluations
Revises: 0005_topics
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0022_evaluations"
down_revision = "0005_topics"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "evaluation_round",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("alliance_id", sa.String(64), sa.ForeignKey("alliance.id"), nullable=True),
        sa.Column("criteria", sa.JSON(), nullable=False),
        sa.Column("panel", sa.JSON(), nullable=False),
        sa.Column("nominate_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("score_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("passing", sa.Integer(), nullable=False),
        sa.Column("quota", sa.Integer(), nullable=True),
        sa.Column("amount", sa.Integer(), nullable=True),
        sa.Column("override", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_by", sa.String(64), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("message_key", sa.String(255), nullable=True),
    )
    op.create_index("ix_evaluation_round_state", "evaluation_round", ["state"])
    op.create_index("uq_evaluation_round_message_key", "evaluation_round", ["message_key"], unique=True)
    op.create_table(
        "evaluation_nominee",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("round_id", sa.Integer(), sa.ForeignKey("evaluation_round.id"), nullable=False),
        sa.Column("subject", sa.String(80), nullable=False),
        sa.Column("studio_id", sa.String(64), sa.ForeignKey("studio.id"), nullable=False),
        sa.Column("achievement_id", sa.Integer(), sa.ForeignKey("achievement.id"), nullable=True),
        sa.Column("target_stars", sa.Integer(), nullable=True),
        sa.Column("nominated_by", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("message_key", sa.String(255), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("rank", sa.Integer(), nullable=True),
        sa.Column("result", sa.String(16), nullable=False),
        sa.Column("award_id", sa.Integer(), sa.ForeignKey("award.id"), nullable=True),
        sa.UniqueConstraint("round_id", "subject", name="uq_evaluation_nominee_subject"),
    )
    op.create_index("ix_evaluation_nominee_round_id", "evaluation_nominee", ["round_id"])
    op.create_index("ix_evaluation_nominee_studio_id", "evaluation_nominee", ["studio_id"])
    op.create_index("uq_evaluation_nominee_message_key", "evaluation_nominee", ["message_key"], unique=True)
    op.create_table(
        "evaluation_score",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("round_id", sa.Integer(), sa.ForeignKey("evaluation_round.id"), nullable=False),
        sa.Column("nominee_id", sa.Integer(), sa.ForeignKey("evaluation_nominee.id"), nullable=False),
        sa.Column("panelist", sa.String(64), nullable=False),
        sa.Column("scores", sa.JSON(), nullable=False),
        sa.Column("total", sa.Float(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("message_key", sa.String(255), nullable=True),
        sa.UniqueConstraint("nominee_id", "panelist", name="uq_evaluation_score_panelist"),
    )
    op.create_index("ix_evaluation_score_round_id", "evaluation_score", ["round_id"])
    op.create_index("ix_evaluation_score_nominee_id", "evaluation_score", ["nominee_id"])
    op.create_index("uq_evaluation_score_message_key", "evaluation_score", ["message_key"], unique=True)
    op.create_table(
        "studio_checklist",
        sa.Column("studio_id", sa.String(64), sa.ForeignKey("studio.id"), primary_key=True),
        sa.Column("item", sa.String(16), primary_key=True),
        sa.Column("confirmed_by", sa.String(64), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("note", sa.String(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("studio_checklist")
    op.drop_table("evaluation_score")
    op.drop_table("evaluation_nominee")
    op.drop_table("evaluation_round")
