"""Everything that happens to a hearing, named in the past tense; each becomes a confirmation-log entry."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class EventType(StrEnum):
    """Types of hearing events."""

    HEARING_SCHEDULED = "hearing_scheduled"
    HEARING_UPDATED = "hearing_updated"
    HEARING_CANCELLED = "hearing_cancelled"
    STAFF_ASSIGNED = "staff_assigned"
    WAITING_ROOM_OPENED = "waiting_room_opened"
    HEARING_STARTED = "hearing_started"
    RECESS_CALLED = "recess_called"
    HEARING_RESUMED = "hearing_resumed"
    HEARING_ENDED = "hearing_ended"
    HEARING_INTERRUPTED = "hearing_interrupted"
    HEARING_SEALED = "hearing_sealed"
    PARTY_ADDED = "party_added"
    PARTY_UPDATED = "party_updated"
    PARTY_INVITED = "party_invited"
    INVITATION_REVOKED = "invitation_revoked"
    LINK_OPENED = "link_opened"
    NOTICE_SHOWN = "notice_shown"
    NOTICE_CONFIRMED = "notice_confirmed"
    PARTY_WAITING = "party_waiting"
    PARTY_ADMITTED = "party_admitted"
    PARTY_DENIED = "party_denied"
    PARTY_JOINED = "party_joined"
    PARTY_LEFT = "party_left"
    PARTY_DISCONNECTED = "party_disconnected"
    PARTY_RECONNECTED = "party_reconnected"
    PARTY_REPLACED = "party_connection_replaced"
    PARTY_MUTED = "party_muted"
    PARTY_UNMUTED = "party_unmuted"
    UNMUTE_REQUESTED = "unmute_requested"
    PARTY_REMOVED = "party_removed"
    RECORDING_STARTED = "recording_started"
    RECORDING_STOPPED = "recording_stopped"
    RECORDING_FAILED = "recording_failed"
    RECORDING_GAP = "recording_gap"
    DISK_SPACE_LOW = "disk_space_low"
    LOG_REPAIRED = "log_repaired"
    NOTIFICATION_QUEUED = "notification_queued"
    NOTIFICATION_SENT = "notification_sent"
    NOTIFICATION_FAILED = "notification_failed"
    NOTIFICATION_RECOVERED = "notification_recovered"
    ACT_SIGNED = "act_signed"
    ACT_DELIVERED = "act_delivered"
    ACT_SIGNING_FAILED = "act_signing_failed"
    # The entries it names were logged first, then the database refused the change: it did not happen.
    CHANGE_ROLLED_BACK = "change_rolled_back"


@dataclass(frozen=True)
class LoggedEvent:
    """A hearing event as read back from the confirmation log (or its database mirror)."""

    seq: int
    event: str
    actor: str | None
    party_id: str | None
    details: dict[str, Any] = field(default_factory=dict)
