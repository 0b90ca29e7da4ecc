"""archive: catalogue records, name words, retention per court, access-audit mirror, search indexes

Revision ID: 0003
Revises: 0001
Create Date: 2026-11-26 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0001"
branch_labels = None
depends_on = None

WORD = sa.String(length=100).with_variant(sa.String(length=100, collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "archive_records",
        sa.Column("hearing_id", sa.String(length=36), nullable=False),
        sa.Column("catalogued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("hold_reason", sa.Text(), nullable=False),
        sa.Column("hold_changed_by", sa.String(length=64), nullable=True),
        sa.Column("hold_changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("verified_valid", sa.Boolean(), nullable=True),
        sa.Column("verification", sa.JSON(), nullable=True),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deletion_rule", sa.String(length=200), nullable=False),
        sa.Column("deletion_record", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(["hearing_id"], ["hearings.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("hearing_id"),
    )
    op.create_index("ix_archive_records_deleted_at", "archive_records", ["deleted_at"])

    op.create_table(
        "archive_name_words",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("hearing_id", sa.String(length=36), nullable=False),
        sa.Column("field", sa.String(length=8), nullable=False),
        sa.Column("owner_id", sa.String(length=36), nullable=False),
        sa.Column("word", WORD, nullable=False),
        sa.ForeignKeyConstraint(["hearing_id"], ["hearings.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_archive_name_words_lookup", "archive_name_words", ["field", "word", "owner_id", "hearing_id"]
    )
    op.create_index("ix_archive_name_words_owner", "archive_name_words", ["owner_id", "field", "word"])
    op.create_index(
        "ix_archive_name_words_hearing", "archive_name_words", ["hearing_id", "field", "word", "owner_id"]
    )

    op.create_table(
        "archive_court_retention",
        sa.Column("court", sa.String(length=200), nullable=False),
        sa.Column("retention_days", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("court"),
    )

    op.create_table(
        "archive_access_log",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("hearing_id", sa.String(length=36), nullable=True),
        sa.Column("target", sa.String(length=200), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("result", sa.String(length=64), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=False),
        sa.Column("user_agent", sa.String(length=400), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    op.create_index("ix_archive_access_log_action", "archive_access_log", ["action"])
    op.create_index("ix_archive_access_log_hearing_id", "archive_access_log", ["hearing_id"])

    op.create_index("ix_hearings_start_id", "hearings", ["scheduled_start", "id"])
    op.create_index("ix_hearings_case_id", "hearings", ["case_number", "id"])
    op.create_index("ix_hearings_courtroom", "hearings", ["court", "courtroom"])
    op.create_index("ix_hearings_sealed_at", "hearings", ["sealed_at"])
    if op.get_bind().dialect.name == "postgresql":
        # Case-number prefixes are compared by code point whatever the database's collation.
        op.execute('CREATE INDEX ix_hearings_case_c ON hearings ((case_number COLLATE "C"))')


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_hearings_case_c")
    op.drop_index("ix_hearings_sealed_at", table_name="hearings")
    op.drop_index("ix_hearings_courtroom", table_name="hearings")
    op.drop_index("ix_hearings_case_id", table_name="hearings")
    op.drop_index("ix_hearings_start_id", table_name="hearings")
    op.drop_index("ix_archive_access_log_hearing_id", table_name="archive_access_log")
    op.drop_index("ix_archive_access_log_action", table_name="archive_access_log")
    op.drop_table("archive_access_log")
    op.drop_table("archive_court_retention")
    op.drop_index("ix_archive_name_words_hearing", table_name="archive_name_words")
    op.drop_index("ix_archive_name_words_owner", table_name="archive_name_words")
    op.drop_index("ix_archive_name_words_lookup", table_name="archive_name_words")
    op.drop_table("archive_name_words")
    op.drop_index("ix_archive_records_deleted_at", table_name="archive_records")
    op.drop_table("archive_records")
