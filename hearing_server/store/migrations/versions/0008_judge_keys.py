"""judge_keys: a judge's own signing certificate and wrapped key; acts remember the judge's certificate

Revision ID: 0008_judge_keys
Revises: 0007_hearing_staff
Create Date: 2026-12-04 21:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_judge_keys"
down_revision = "0007_hearing_staff"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "judge_keys",
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=False),
        sa.Column("cert_pem", sa.Text(), nullable=False),
        sa.Column("chain_pem", sa.Text(), nullable=False),
        sa.Column("subject", sa.String(length=1000), nullable=False),
        sa.Column("common_name", sa.String(length=500), nullable=False),
        sa.Column("issuer", sa.String(length=1000), nullable=False),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=False),
        sa.Column("not_after", sa.DateTime(timezone=True), nullable=False),
        sa.Column("fingerprint_sha256", sa.String(length=64), nullable=False),
        sa.Column("uploaded_by", sa.String(length=64), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id"),
    )
    op.add_column("acts", sa.Column("signer_cert_pem", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("acts", "signer_cert_pem")
    op.drop_table("judge_keys")
