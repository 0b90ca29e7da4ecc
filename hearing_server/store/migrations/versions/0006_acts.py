"""acts: court acts (PAdES-signed PDFs) of a hearing

Revision ID: 0006_acts
Revises: 0005_notifications
Create Date: 2026-12-04 20:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_acts"
down_revision = "0005_notifications"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "acts",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("hearing_id", sa.String(length=36), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("file_name", sa.String(length=200), nullable=False),
        sa.Column("path", sa.String(length=300), nullable=False),
        sa.Column("pages", sa.Integer(), nullable=False),
        sa.Column("original_size", sa.Integer(), nullable=False),
        sa.Column("original_sha256", sa.String(length=64), nullable=False),
        sa.Column("signed_size", sa.Integer(), nullable=False),
        sa.Column("signed_sha256", sa.String(length=64), nullable=False),
        sa.Column("signer_subject", sa.String(length=500), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("uploaded_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["hearing_id"], ["hearings.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_acts_hearing_id", "acts", ["hearing_id"])


def downgrade() -> None:
    op.drop_index("ix_acts_hearing_id", table_name="acts")
    op.drop_table("acts")
