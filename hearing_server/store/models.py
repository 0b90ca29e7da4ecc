"""Database tables (SQLAlchemy 2.x declarative). The schema itself comes from Alembic migrations."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from hearing_server.domain.ids import new_id


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        from datetime import UTC

        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        from datetime import UTC

        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base of every table."""


class User(Base):
    """A staff account: admin, operator, judge or archivist."""

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(255))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    # Set for a password someone else chose (the first admin's one-time password): every call but changing
    # it, "who am I" and logout is refused until the owner has chosen their own.
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # A one-time password stops working at this moment (None: the password does not expire).
    password_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class StaffSession(Base):
    """A logged-in staff session; only the hash of its cookie value is stored."""

    __tablename__ = "staff_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    ip: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(400), default="")

    user: Mapped[User] = relationship(lazy="joined")


class Hearing(Base):
    """A scheduled court hearing and its lifecycle status."""

    __tablename__ = "hearings"
    __table_args__ = (
        Index("ix_hearings_court_case", "court", "case_number"),
        Index("ix_hearings_start", "scheduled_start"),
        Index("ix_hearings_status", "status"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    court: Mapped[str] = mapped_column(String(200))
    courtroom: Mapped[str] = mapped_column(String(100))
    case_number: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(500))
    scheduled_start: Mapped[datetime] = mapped_column(UtcDateTime())
    duration_minutes: Mapped[int] = mapped_column(Integer)
    # The presiding judge's name as shown; set from the account's display name when an account is assigned.
    presiding_judge: Mapped[str] = mapped_column(String(200))
    # The assigned staff accounts (docs: README "Roles"); None keeps the role-only rules of older hearings.
    presiding_judge_id: Mapped[str | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    secretary_id: Mapped[str | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    notice_language: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16))
    created_by: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    sealed_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    # The hearing folder (recordings, confirmation log, seal), relative to Config.recordings_dir.
    recording_path: Mapped[str | None] = mapped_column(String(500), nullable=True)
    legal_hold: Mapped[bool] = mapped_column(Boolean, default=False)

    parties: Mapped[list[Party]] = relationship(
        back_populates="hearing", cascade="all, delete-orphan", order_by="Party.created_at"
    )


class Party(Base):
    """A person (or the courtroom endpoint) taking part in one hearing with one role."""

    __tablename__ = "parties"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    hearing_id: Mapped[str] = mapped_column(ForeignKey("hearings.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    display_name: Mapped[str] = mapped_column(String(200))
    language: Mapped[str | None] = mapped_column(String(8), nullable=True)
    contact: Mapped[str] = mapped_column(String(200), default="")
    state: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())

    hearing: Mapped[Hearing] = relationship(back_populates="parties")
    invitations: Mapped[list[Invitation]] = relationship(
        back_populates="party", cascade="all, delete-orphan", order_by="Invitation.created_at"
    )


class Invitation(Base):
    """An invitation link of one party; only the SHA-256 of its token is stored."""

    __tablename__ = "invitations"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    party_id: Mapped[str] = mapped_column(ForeignKey("parties.id", ondelete="CASCADE"), index=True)
    hearing_id: Mapped[str] = mapped_column(ForeignKey("hearings.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    # How the link reaches the party (domain.notification.Channel) and where it was sent.
    channel: Mapped[str] = mapped_column(String(16), default="handover", server_default="handover")
    recipient: Mapped[str] = mapped_column(String(254), default="", server_default="")
    # The link encrypted with the server's link key, kept only while the server sends it (reminders);
    # erased when the link is withdrawn.  Handed-over links are never kept.
    link_sealed: Mapped[str | None] = mapped_column(Text, nullable=True)

    party: Mapped[Party] = relationship(back_populates="invitations")


class Notification(Base):
    """One message to a party in the delivery queue: what, to whom, when due, and how its delivery went."""

    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_due", "status", "next_attempt_at"),
        Index("ix_notifications_recipient_sent", "recipient", "sent_at"),
        Index("ix_notifications_hearing_sent", "hearing_id", "sent_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    hearing_id: Mapped[str] = mapped_column(ForeignKey("hearings.id", ondelete="CASCADE"), index=True)
    party_id: Mapped[str] = mapped_column(ForeignKey("parties.id", ondelete="CASCADE"), index=True)
    invitation_id: Mapped[str | None] = mapped_column(
        ForeignKey("invitations.id", ondelete="SET NULL"), nullable=True
    )
    # The court act a message of kind "act" announces.
    act_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    kind: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(16))
    recipient: Mapped[str] = mapped_column(String(254))
    language: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    last_error: Mapped[str] = mapped_column(Text, default="")
    # SHA-256 of the exact text accepted by the SMTP server or gateway (also in the confirmation log).
    message_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)


class Act(Base):
    """A court act of a hearing: a PDF signed PAdES with the court's key, kept in the hearing folder."""

    __tablename__ = "acts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    hearing_id: Mapped[str] = mapped_column(ForeignKey("hearings.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    file_name: Mapped[str] = mapped_column(String(200))
    # The signed PDF, relative to the hearing folder (acts/<id>.pdf).
    path: Mapped[str] = mapped_column(String(300))
    pages: Mapped[int] = mapped_column(Integer)
    original_size: Mapped[int] = mapped_column(Integer)
    original_sha256: Mapped[str] = mapped_column(String(64))
    signed_size: Mapped[int] = mapped_column(Integer)
    signed_sha256: Mapped[str] = mapped_column(String(64))
    signer_subject: Mapped[str] = mapped_column(String(500))
    # The judge's certificate (PEM) that signed it; None: the court's key signed it.
    signer_cert_pem: Mapped[str | None] = mapped_column(Text, nullable=True, default=None)
    signed_at: Mapped[datetime] = mapped_column(UtcDateTime())
    uploaded_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class JudgeKey(Base):
    """A judge's signing certificate and private key; the key only wrapped under the judge's password."""

    __tablename__ = "judge_keys"

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    # AES-256-GCM under an scrypt key of the judge's login password (hearing_server.auth.judge_keys).
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)
    cert_pem: Mapped[str] = mapped_column(Text)
    chain_pem: Mapped[str] = mapped_column(Text, default="")
    subject: Mapped[str] = mapped_column(String(1000))
    common_name: Mapped[str] = mapped_column(String(500))
    issuer: Mapped[str] = mapped_column(String(1000))
    not_before: Mapped[datetime] = mapped_column(UtcDateTime())
    not_after: Mapped[datetime] = mapped_column(UtcDateTime())
    fingerprint_sha256: Mapped[str] = mapped_column(String(64))
    uploaded_by: Mapped[str] = mapped_column(String(64))
    uploaded_at: Mapped[datetime] = mapped_column(UtcDateTime())


class HearingEvent(Base):
    """The database mirror of one confirmation-log entry."""

    __tablename__ = "hearing_events"
    __table_args__ = (UniqueConstraint("hearing_id", "seq", name="uq_hearing_events_seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    hearing_id: Mapped[str] = mapped_column(ForeignKey("hearings.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    time: Mapped[datetime] = mapped_column(UtcDateTime())
    event: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(200))
    party_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    note: Mapped[str] = mapped_column(Text, default="")


class ClusterNode(Base):
    """One server process of a cluster; its heartbeat time comes from the database clock."""

    __tablename__ = "cluster_nodes"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    public_url: Mapped[str] = mapped_column(String(500))
    internal_url: Mapped[str] = mapped_column(String(500))
    ice_addresses: Mapped[list[str]] = mapped_column(JSON, default=list)
    state: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(UtcDateTime())
    heartbeat_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    load: Mapped[float] = mapped_column(Float, default=0.0)
    capacity: Mapped[int] = mapped_column(Integer)


class HearingLease(Base):
    """The node hosting a live hearing, until ``expires_at`` (renewed by that node's heartbeat)."""

    __tablename__ = "hearing_leases"

    hearing_id: Mapped[str] = mapped_column(ForeignKey("hearings.id", ondelete="CASCADE"), primary_key=True)
    node_id: Mapped[str] = mapped_column(ForeignKey("cluster_nodes.id", ondelete="CASCADE"), index=True)
    acquired_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
