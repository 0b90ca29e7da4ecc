"""notifications: the delivery queue of messages to parties; how each invitation link reaches its party

Revision ID: 0005_notifications
Revises: 0004_password_change
Create Date: 2026-12-04 19:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_notifications"
down_revision = "0004_password_change"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("invitations") as batch:
        batch.add_column(
            sa.Column("channel", sa.String(length=16), server_default="handover", nullable=False)
        )
        batch.add_column(sa.Column("recipient", sa.String(length=254), server_default="", nullable=False))
        batch.add_column(sa.Column("link_sealed", sa.Text(), nullable=True))
    op.create_table(
        "notifications",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("hearing_id", sa.String(length=36), nullable=False),
        sa.Column("party_id", sa.String(length=36), nullable=False),
        sa.Column("invitation_id", sa.String(length=36), nullable=True),
        sa.Column("act_id", sa.String(length=36), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("recipient", sa.String(length=254), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("message_sha256", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["hearing_id"], ["hearings.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["party_id"], ["parties.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["invitation_id"], ["invitations.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_notifications_hearing_id", "notifications", ["hearing_id"])
    op.create_index("ix_notifications_party_id", "notifications", ["party_id"])
    op.create_index("ix_notifications_due", "notifications", ["status", "next_attempt_at"])
    op.create_index("ix_notifications_recipient_sent", "notifications", ["recipient", "sent_at"])
    op.create_index("ix_notifications_hearing_sent", "notifications", ["hearing_id", "sent_at"])


def downgrade() -> None:
    op.drop_index("ix_notifications_hearing_sent", table_name="notifications")
    op.drop_index("ix_notifications_recipient_sent", table_name="notifications")
    op.drop_index("ix_notifications_due", table_name="notifications")
    op.drop_index("ix_notifications_party_id", table_name="notifications")
    op.drop_index("ix_notifications_hearing_id", table_name="notifications")
    op.drop_table("notifications")
    with op.batch_alter_table("invitations") as batch:
        batch.drop_column("link_sealed")
        batch.drop_column("recipient")
        batch.drop_column("channel")
