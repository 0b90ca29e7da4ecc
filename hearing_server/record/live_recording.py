"""The recording of one live hearing: the recorder fed by the media plane, its notices logged and alerted."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal

from hearing_server.domain.errors import Conflict
from hearing_server.domain.events import EventType
from hearing_server.record.event_log import EventRecorder
from media.contract import EncodedFrame, RtpPacket, SenderReport, TrackInfo
from recording.disk import InsufficientDiskSpaceError
from recording.recorder import HearingRecorder
from recording.recorder_types import RecorderEvent, RecorderEventType, RecorderState
from recording.segments import SegmentInfo

log = logging.getLogger(__name__)

RecordingStatus = Literal["off", "recording", "paused", "failed"]
Alert = Callable[[str, str], None]  # (code, human message) for the operators

_LOGGED: dict[RecorderEventType, EventType] = {
    RecorderEventType.RECORDING_FAILED: EventType.RECORDING_FAILED,
    RecorderEventType.GAP_DETECTED: EventType.RECORDING_GAP,
    RecorderEventType.DISK_SPACE_LOW: EventType.DISK_SPACE_LOW,
}

_INDICATOR: dict[RecorderState, RecordingStatus] = {
    RecorderState.RECORDING: "recording",
    RecorderState.PAUSED: "paused",
    RecorderState.FAILED: "failed",
}


def hearing_epoch(entries: list[dict[str, Any]]) -> float | None:
    """The timeline zero of a hearing recorded before (the first ``recording_started`` with an epoch)."""
    for entry in entries:
        if entry.get("event") == EventType.RECORDING_STARTED.value:
            epoch = (entry.get("details") or {}).get("epoch")
            if isinstance(epoch, int | float):
                return float(epoch)
    return None


class LiveRecording:
    """Records one hearing in session (a packet sink, or a frame sink); failures reach the log and the
    operators at once.

    Every recorder of a hearing — after a recess, a failure or a server restart — shares the
    hearing's first epoch, so all its segments lie on one timeline.
    """

    def __init__(
        self,
        hearing_id: str,
        events: EventRecorder,
        *,
        min_free_bytes: int,
        on_alert: Alert | None = None,
        on_change: Callable[[], None] | None = None,
        on_stopped: Callable[[LiveRecording], None] | None = None,
    ) -> None:
        self.hearing_id = hearing_id
        self._events = events
        self._min_free_bytes = min_free_bytes
        self.on_alert = on_alert
        self.on_change = on_change
        self.on_stopped = on_stopped
        self._recorder: HearingRecorder | None = None
        self._epoch: float | None = None
        self._pending: set[asyncio.Task[Any]] = set()
        # Live tracks and how to ask for their keyframes: a recorder started later (the session
        # begins, or restarts after a failure) is told of them, so it can ask for its first keyframe.
        self._tracks: dict[str, tuple[TrackInfo, Callable[[], None] | None]] = {}
        self._reports: dict[str, SenderReport] = {}  # the latest of each live track, for the same reason
        self.last_failure: str | None = None

    @property
    def status(self) -> RecordingStatus:
        """What the recording indicator shows."""
        if self._recorder is None:
            return "off"
        return _INDICATOR.get(self._recorder.state, "off")

    @property
    def epoch(self) -> float | None:
        """The hearing timeline's zero (UTC seconds), once recording has started."""
        return self._epoch

    @property
    def failure(self) -> str | None:
        """Why the current recorder failed, if it has."""
        return self._recorder.failure if self._recorder is not None else None

    @property
    def frames_written(self) -> int:
        """Frames written by the current recorder."""
        return self._recorder.frames_written if self._recorder is not None else 0

    @property
    def frames_lost(self) -> int:
        """Frames the current recorder could not write (after a failure)."""
        return self._recorder.frames_lost if self._recorder is not None else 0

    @property
    def segments(self) -> list[SegmentInfo]:
        """The current recorder's segment files."""
        return self._recorder.segments if self._recorder is not None else []

    @property
    def recorder(self) -> HearingRecorder | None:
        """The recorder writing now (for measurements and tests)."""
        return self._recorder

    # -- packet sink and frame sink --------------------------------------------------------------

    def track_started(self, track: TrackInfo, request_keyframe: Callable[[], None] | None = None) -> None:
        """A track begins; recorded once the hearing is in session (``request_keyframe``: packet input)."""
        self._tracks[track.track_id] = (track, request_keyframe)
        if self._recorder is not None:
            self._recorder.track_started(track, request_keyframe)

    def packet(self, packet: RtpPacket) -> None:
        """One forwarded RTP packet; queued for the writer thread."""
        if self._recorder is not None:
            self._recorder.packet(packet)

    def sender_report(self, track: TrackInfo, report: SenderReport) -> None:
        """A publisher's sender report: how the track's RTP time maps to wall-clock time."""
        if track.track_id in self._tracks:
            self._reports[track.track_id] = report
        if self._recorder is not None:
            self._recorder.sender_report(track, report)

    def frame(self, frame: EncodedFrame) -> None:
        """One forwarded frame; queued for the writer thread."""
        if self._recorder is not None:
            self._recorder.frame(frame)

    def track_ended(self, track: TrackInfo) -> None:
        """A track ends (participant left or reconnected)."""
        self._tracks.pop(track.track_id, None)
        self._reports.pop(track.track_id, None)
        if self._recorder is not None:
            self._recorder.track_ended(track)

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self, actor: str) -> None:
        """Start recording (the hearing enters session); refuses when disk space is below the floor.

        After a recess this resumes; after a failure the failed recorder is closed and a new one
        starts in new segment files (the operator fixed the cause and resumed).
        """
        if self._recorder is not None:
            if self._recorder.state is RecorderState.PAUSED:
                await self.resume(actor)
                return
            if self._recorder.state is RecorderState.RECORDING:
                return
            await self._close_recorder(actor, "restarted_after_failure")
        folder = await self._events.folder(self.hearing_id)
        if self._epoch is None:
            confirmation_log = await self._events.confirmation_log(self.hearing_id)
            entries = await asyncio.to_thread(lambda: [e.to_dict() for e in confirmation_log.entries()])
            self._epoch = hearing_epoch(entries)
        recorder = HearingRecorder(
            folder,
            self.hearing_id,
            on_event=self._on_recorder_event,
            # Given explicitly: the recorder starts on a worker thread, where no loop is running, and its
            # notices (failures above all) must reach this loop, not stay on the writer thread.
            loop=asyncio.get_running_loop(),
            epoch=self._epoch,
            min_free_bytes=self._min_free_bytes,
            warn_free_bytes=max(2 * self._min_free_bytes, self._min_free_bytes + (1 << 30)),
        )
        try:
            await asyncio.to_thread(recorder.start)
        except InsufficientDiskSpaceError as exc:
            await self._events.record(
                self.hearing_id, EventType.RECORDING_FAILED, actor="system", details={"reason": str(exc)}
            )
            raise Conflict(f"recording cannot start: {exc}", code="disk_space_low") from exc
        except OSError as exc:
            await self._events.record(
                self.hearing_id, EventType.RECORDING_FAILED, actor="system", details={"reason": str(exc)}
            )
            raise Conflict(f"recording cannot start: {exc}", code="recording_unavailable") from exc
        resumed = self._epoch is not None
        self._recorder = recorder
        for track, request_keyframe in self._tracks.values():
            recorder.track_started(track, request_keyframe)
            report = self._reports.get(track.track_id)
            if report is not None:
                recorder.sender_report(track, report)
        self._epoch = recorder.epoch
        self.last_failure = None
        details: dict[str, Any] = {
            "epoch": recorder.epoch,
            "epoch_utc": datetime.fromtimestamp(recorder.epoch, UTC).isoformat().replace("+00:00", "Z"),
        }
        if resumed:
            details["reason"] = "new_recorder"  # after a restart or a failure: new segment files
        await self._events.record(self.hearing_id, EventType.RECORDING_STARTED, actor=actor, details=details)
        self._changed()

    async def pause(self, actor: str) -> None:
        """Recess: close the segments cleanly; nothing is recorded until :meth:`resume`."""
        if self._recorder is not None and self._recorder.state is RecorderState.RECORDING:
            self._recorder.pause()
            await self._events.record(
                self.hearing_id, EventType.RECORDING_STOPPED, actor=actor, details={"reason": "recess"}
            )
            self._changed()

    async def resume(self, actor: str) -> None:
        """After a recess: new segments start with the next keyframes."""
        if self._recorder is not None and self._recorder.state is RecorderState.PAUSED:
            self._recorder.resume()
            await self._events.record(
                self.hearing_id, EventType.RECORDING_STARTED, actor=actor, details={"reason": "resumed"}
            )
            self._changed()

    async def stop(self, actor: str, reason: str) -> None:
        """Close every file durably and log what was written and lost."""
        await self._close_recorder(actor, reason)
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
        self._changed()
        if self.on_stopped is not None:
            self.on_stopped(self)

    async def _close_recorder(self, actor: str, reason: str) -> None:
        recorder, self._recorder = self._recorder, None
        if recorder is None:
            return
        segments = await recorder.aclose()
        self.last_failure = recorder.failure
        await self._events.record(
            self.hearing_id,
            EventType.RECORDING_STOPPED,
            actor=actor,
            details={
                "reason": reason,
                "segments": len(segments),
                "frames_written": recorder.frames_written,
                "frames_lost": recorder.frames_lost,
                "failure": recorder.failure,
            },
        )

    # -- notices ---------------------------------------------------------------------------------

    def _on_recorder_event(self, event: RecorderEvent) -> None:
        logged = _LOGGED.get(event.type)
        if logged is None:
            return
        details: dict[str, Any] = {
            k: v
            for k, v in {
                "reason": event.reason,
                "participant_id": event.track.participant_id if event.track else None,
                "kind": event.track.kind if event.track else None,
                "gap_start_s": event.gap_start_s,
                "gap_end_s": event.gap_end_s,
                "free_bytes": event.free_bytes,
            }.items()
            if v is not None
        }
        # The alert goes out first: the log append waits for an fsync.
        if event.type is RecorderEventType.RECORDING_FAILED:
            log.error("recording of hearing %s failed: %s", self.hearing_id, event.reason)
            self._alert(
                "recording_failed", f"Recording failed: {event.reason}. Pause the hearing until it is fixed."
            )
            self._changed()
        elif event.type is RecorderEventType.DISK_SPACE_LOW:
            self._alert("disk_space_low", f"Disk space is low ({(event.free_bytes or 0) >> 20} MiB free).")
        task = asyncio.ensure_future(
            self._events.record(self.hearing_id, logged, actor="system", details=details)
        )
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    def _alert(self, code: str, message: str) -> None:
        if self.on_alert is not None:
            self.on_alert(code, message)

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()
