"""The recording of one live hearing: the recorder fed by the media plane, its notices logged and alerted."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Literal

from hearing_server.domain.errors import Conflict
from hearing_server.domain.events import EventType
from hearing_server.events import EventRecorder
from recording.recorder import (
    HearingRecorder,
    InsufficientDiskSpaceError,
    RecorderEvent,
    RecorderEventType,
    RecorderState,
)
from signaling.media.contract import EncodedFrame, TrackInfo

log = logging.getLogger(__name__)

RecordingStatus = Literal["off", "recording", "paused", "failed"]
Alert = Callable[[str, str], None]  # (code, human message) for the operators

_LOGGED: dict[RecorderEventType, EventType] = {
    RecorderEventType.RECORDING_FAILED: EventType.RECORDING_FAILED,
    RecorderEventType.GAP_DETECTED: EventType.RECORDING_GAP,
    RecorderEventType.DISK_SPACE_LOW: EventType.DISK_SPACE_LOW,
}


class LiveRecording:
    """Records one hearing in session (a frame sink); failures reach the log and the operators at once."""

    def __init__(
        self,
        hearing_id: str,
        events: EventRecorder,
        *,
        min_free_bytes: int,
        on_alert: Alert | None = None,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.hearing_id = hearing_id
        self._events = events
        self._min_free_bytes = min_free_bytes
        self.on_alert = on_alert
        self.on_change = on_change
        self._recorder: HearingRecorder | None = None
        self._pending: set[asyncio.Task[Any]] = set()

    @property
    def status(self) -> RecordingStatus:
        """What the recording indicator shows."""
        if self._recorder is None:
            return "off"
        return {
            RecorderState.RECORDING: "recording",
            RecorderState.PAUSED: "paused",
            RecorderState.FAILED: "failed",
        }.get(self._recorder.state, "off")

    # -- frame sink ------------------------------------------------------------------------------

    def track_started(self, track: TrackInfo) -> None:
        """A track begins; recorded once the hearing is in session."""
        if self._recorder is not None:
            self._recorder.track_started(track)

    def frame(self, frame: EncodedFrame) -> None:
        """One forwarded frame; queued for the writer thread."""
        if self._recorder is not None:
            self._recorder.frame(frame)

    def track_ended(self, track: TrackInfo) -> None:
        """A track ends (participant left or reconnected)."""
        if self._recorder is not None:
            self._recorder.track_ended(track)

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self, actor: str) -> None:
        """Start recording (the hearing enters session); refuses when disk space is below the floor."""
        if self._recorder is not None and self._recorder.state in (
            RecorderState.RECORDING,
            RecorderState.PAUSED,
        ):
            await self.resume(actor)
            return
        recorder = HearingRecorder(
            await self._events.folder(self.hearing_id),
            self.hearing_id,
            on_event=self._on_recorder_event,
            loop=asyncio.get_running_loop(),  # notices are delivered on the loop, not the writer thread
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
        self._recorder = recorder
        await self._events.record(
            self.hearing_id, EventType.RECORDING_STARTED, actor=actor, details={"epoch": recorder.epoch}
        )
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
        recorder, self._recorder = self._recorder, None
        if recorder is not None:
            segments = await recorder.aclose()
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
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
        self._changed()

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
        task = asyncio.ensure_future(
            self._events.record(self.hearing_id, logged, actor="system", details=details)
        )
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        if event.type is RecorderEventType.RECORDING_FAILED:
            log.error("recording of hearing %s failed: %s", self.hearing_id, event.reason)
            self._alert(
                "recording_failed", f"Recording failed: {event.reason}. Pause the hearing until it is fixed."
            )
            self._changed()
        elif event.type is RecorderEventType.DISK_SPACE_LOW:
            self._alert("disk_space_low", f"Disk space is low ({(event.free_bytes or 0) >> 20} MiB free).")

    def _alert(self, code: str, message: str) -> None:
        if self.on_alert is not None:
            self.on_alert(code, message)

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()
