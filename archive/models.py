"""The archive's tables: catalogue records, name words for search, retention per court, the audit mirror.

The schema comes from migration ``0003``; these classes share the application's declarative ``Base``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from hearing_server.store.models import Base, Hearing, UtcDateTime

# Prefix searches compare code points: PostgreSQL needs the "C" collation for that, SQLite's BINARY does it.
WORD_TYPE = String(100).with_variant(String(100, collation="C"), "postgresql")

# Archive search over the hearings table: ordered pages by start or case number, exact courtroom,
# retention by seal time.  (Migration 0003 also adds, on PostgreSQL only, an index on
# ``case_number COLLATE "C"`` for case-number prefixes.)
HEARING_INDEXES = (
    Index("ix_hearings_start_id", Hearing.scheduled_start, Hearing.id),
    Index("ix_hearings_case_id", Hearing.case_number, Hearing.id),
    Index("ix_hearings_courtroom", Hearing.court, Hearing.courtroom),
    Index("ix_hearings_sealed_at", Hearing.sealed_at),
)


class ArchiveRecord(Base):
    """A hearing that has entered the archive (ended or sealed): hold, last full verification, deletion."""

    __tablename__ = "archive_records"

    hearing_id: Mapped[str] = mapped_column(ForeignKey("hearings.id", ondelete="CASCADE"), primary_key=True)
    catalogued_at: Mapped[datetime] = mapped_column(UtcDateTime())
    hold_reason: Mapped[str] = mapped_column(Text, default="")
    hold_changed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    hold_changed_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    verified_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    verified_valid: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    verification: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    deleted_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True, index=True)
    deletion_rule: Mapped[str] = mapped_column(String(200), default="")
    deletion_record: Mapped[str | None] = mapped_column(String(500), nullable=True)


class NameWord(Base):
    """One word of a party's or the presiding judge's name, case-folded, for indexed prefix search."""

    __tablename__ = "archive_name_words"
    __table_args__ = (
        # Each index covers its queries: words by prefix, a party's other words, a hearing's words.
        Index("ix_archive_name_words_lookup", "field", "word", "owner_id", "hearing_id"),
        Index("ix_archive_name_words_owner", "owner_id", "field", "word"),
        Index("ix_archive_name_words_hearing", "hearing_id", "field", "word", "owner_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    hearing_id: Mapped[str] = mapped_column(ForeignKey("hearings.id", ondelete="CASCADE"))
    field: Mapped[str] = mapped_column(String(8))  # "party" or "judge"
    owner_id: Mapped[str] = mapped_column(String(36))  # the party, or the hearing for its judge
    word: Mapped[str] = mapped_column(WORD_TYPE)


class CourtRetention(Base):
    """How long one court keeps its sealed hearings (courts without a row use the configured default)."""

    __tablename__ = "archive_court_retention"

    court: Mapped[str] = mapped_column(String(200), primary_key=True)
    retention_days: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_by: Mapped[str] = mapped_column(String(64))


class AccessAuditEntry(Base):
    """The database mirror of one access-audit entry; the hash-chained file is the record of truth."""

    __tablename__ = "archive_access_log"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    time: Mapped[datetime] = mapped_column(UtcDateTime())
    actor: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(32), index=True)
    hearing_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    target: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[int] = mapped_column(Integer)
    result: Mapped[str] = mapped_column(String(64))
    ip: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(400), default="")
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
