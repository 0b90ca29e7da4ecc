"""Evidence-grade recording of hearings: tracks, confirmation log, seal, verification and playback copy.

No web framework or database here: the server wires these pieces and mirrors
the confirmation log to its database through ``ConfirmationLog.on_append``.
The playback copy (``recording.composite``) is imported on its own: it is also
the entry point of the render process.
"""

from __future__ import annotations

from recording.confirmation_log import LOG_FILE_NAME, ConfirmationLog, LogEntry, LogEvent
from recording.hashchain import ChainFault, ChainVerification, HashChain, verify_chain
from recording.recorder import (
    HearingRecorder,
    InsufficientDiskSpaceError,
    RecorderEvent,
    RecorderEventType,
    RecorderState,
    SegmentInfo,
    ensure_disk_space,
    free_disk_bytes,
)
from recording.seal import CourtSigner, SealError, SealResult, generate_court_certificate, seal_hearing
from recording.verify import Problem, ProblemKind, VerificationReport, format_report, verify_hearing

__all__ = [
    "LOG_FILE_NAME",
    "ChainFault",
    "ChainVerification",
    "ConfirmationLog",
    "CourtSigner",
    "HashChain",
    "HearingRecorder",
    "InsufficientDiskSpaceError",
    "LogEntry",
    "LogEvent",
    "Problem",
    "ProblemKind",
    "RecorderEvent",
    "RecorderEventType",
    "RecorderState",
    "SealError",
    "SealResult",
    "SegmentInfo",
    "VerificationReport",
    "ensure_disk_space",
    "format_report",
    "free_disk_bytes",
    "generate_court_certificate",
    "seal_hearing",
    "verify_chain",
    "verify_hearing",
]
