"""What the hearing recorder reports: its state, its events (past tense) and its packet figures."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import Any

from media.contract import TrackInfo
from recording.segments import SegmentInfo


class RecorderState(Enum):
    """Where a recorder is in its life."""

    IDLE = "idle"
    RECORDING = "recording"
    PAUSED = "paused"
    FAILED = "failed"
    STOPPED = "stopped"


class RecorderEventType(StrEnum):
    """What the recorder tells the server (past tense)."""

    SEGMENT_OPENED = "segment_opened"
    SEGMENT_CLOSED = "segment_closed"
    GAP_DETECTED = "recording_gap"
    DISK_SPACE_LOW = "disk_space_low"
    RECORDING_FAILED = "recording_failed"


@dataclass(frozen=True)
class RecorderEvent:
    """A notice from the recorder; which optional fields are set depends on ``type``."""

    type: RecorderEventType
    hearing_id: str
    track: TrackInfo | None = None
    segment: SegmentInfo | None = None
    reason: str | None = None
    gap_start_s: float | None = None  # hearing timeline seconds
    gap_end_s: float | None = None
    free_bytes: int | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PacketStats:
    """What the recorder made of the packets it was given, over every track so far."""

    received: int = 0  # given to the recorder
    taken: int = 0  # taken by the writer thread (the rest were paused or lost to a failure)
    duplicates: int = 0  # retransmissions of packets already had, or too late
    missing: int = 0  # never arrived within the reorder hold
    frames: int = 0  # assembled from packets
    frames_incomplete: int = 0  # dropped: a packet was missing or unreadable
    frames_skipped: int = 0  # complete, but waiting for a keyframe
    malformed: int = 0  # packets whose payload could not be parsed
    keyframe_requests: int = 0
