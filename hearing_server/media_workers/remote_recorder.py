"""A hearing's recorder on its media worker, with the surface :class:`LiveRecording` drives locally."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from media.contract import TrackInfo
from media.errors import MediaError
from media_worker.messages import track_from_dict
from recording.disk import InsufficientDiskSpaceError
from recording.recorder_types import RecorderEvent, RecorderEventType, RecorderState
from recording.segments import SegmentInfo

from .remote_router import RemoteRouter
from .worker import WorkerError

log = logging.getLogger(__name__)

WORKER_LOST_FAILURE = "the media worker writing this recording stopped"


def recorder_event_from_dict(hearing_id: str, data: dict[str, Any]) -> RecorderEvent:
    """A ``recorder_event`` message as the recorder's own notice."""
    track = data.get("track")
    segment = data.get("segment")
    return RecorderEvent(
        type=RecorderEventType(data["type"]),
        hearing_id=hearing_id,
        track=track_from_dict(track) if isinstance(track, dict) else None,
        segment=SegmentInfo(**segment) if isinstance(segment, dict) else None,
        reason=data.get("reason"),
        gap_start_s=data.get("gap_start_s"),
        gap_end_s=data.get("gap_end_s"),
        free_bytes=data.get("free_bytes"),
        details=data.get("details") or {},
    )


class WorkerRecorder:
    """The worker writes the track files; this mirrors its state from replies and notices.

    The worker's router feeds the worker's recorder directly, so the sink methods here do nothing.
    """

    def __init__(
        self,
        router: RemoteRouter,
        folder: Path,
        hearing_id: str,
        *,
        on_event: Callable[[RecorderEvent], None] | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
        epoch: float | None = None,
        min_free_bytes: int = 1 << 30,
        warn_free_bytes: int = 4 << 30,
    ) -> None:
        self.folder = folder
        self.hearing_id = hearing_id
        self.on_event = on_event
        self._router = router
        self._epoch = epoch
        self._min_free_bytes = min_free_bytes
        self._warn_free_bytes = warn_free_bytes
        self._state = RecorderState.IDLE
        self._failure: str | None = None
        self._segments: dict[str, SegmentInfo] = {}
        self.frames_written = 0
        self.frames_lost = 0
        router.recorder_events = self._worker_event
        router.on_lost.append(self._worker_lost)

    @property
    def state(self) -> RecorderState:
        """As the worker last reported it."""
        return self._state

    @property
    def failure(self) -> str | None:
        """Why recording failed, if it did."""
        return self._failure

    @property
    def epoch(self) -> float:
        """The hearing timeline's zero, UTC seconds."""
        if self._epoch is None:
            raise RuntimeError("recorder not started")
        return self._epoch

    @property
    def segments(self) -> list[SegmentInfo]:
        """Segments the worker reported opening (and closing)."""
        return list(self._segments.values())

    async def astart(self) -> None:
        """Start the worker's recorder; raises as :meth:`HearingRecorder.start` does (disk, I/O)."""
        try:
            result = await self._router.request(
                "recording_start",
                folder=str(self.folder),
                epoch=self._epoch,
                min_free_bytes=self._min_free_bytes,
                warn_free_bytes=self._warn_free_bytes,
            )
        except WorkerError as exc:
            if exc.code == "disk_space_low":
                raise InsufficientDiskSpaceError(exc.message) from exc
            raise OSError(exc.message) from exc
        except MediaError as exc:
            raise OSError(exc.message) from exc
        self._epoch = float(result["epoch"])
        self._state = RecorderState.RECORDING

    def pause(self) -> None:
        """Recess: the worker closes the segments."""
        if self._state is RecorderState.RECORDING:
            self._state = RecorderState.PAUSED
            self._router.post("recording_pause")

    def resume(self) -> None:
        """After a recess."""
        if self._state is RecorderState.PAUSED:
            self._state = RecorderState.RECORDING
            self._router.post("recording_resume")

    async def aclose(self) -> list[SegmentInfo]:
        """Stop the worker's recorder durably; after a worker crash, what it reported before dying."""
        if self._state is not RecorderState.STOPPED and not self._router.lost:
            try:
                result = await self._router.request("recording_stop")
            except MediaError:
                log.warning("the recorder of hearing %s was gone at stop", self.hearing_id)
            else:
                for data in result.get("segments", []) if isinstance(result, dict) else []:
                    segment = SegmentInfo(**data)
                    self._segments[segment.path] = segment
                if isinstance(result, dict):
                    self.frames_written = int(result.get("frames_written") or 0)
                    self.frames_lost = int(result.get("frames_lost") or 0)
                    self._failure = result.get("failure") or self._failure
        if self._state is not RecorderState.FAILED:
            self._state = RecorderState.STOPPED
        return self.segments

    # -- sink (fed on the worker) ----------------------------------------------------------------

    def track_started(self, track: TrackInfo, request_keyframe: Callable[[], None] | None = None) -> None:
        """Recorded on the worker."""

    def frame(self, frame: Any) -> None:
        """Recorded on the worker."""

    def packet(self, packet: Any) -> None:
        """Recorded on the worker."""

    def sender_report(self, track: TrackInfo, report: Any) -> None:
        """Recorded on the worker."""

    def track_ended(self, track: TrackInfo) -> None:
        """Recorded on the worker."""

    # -- from the worker -------------------------------------------------------------------------

    def _worker_event(self, data: dict[str, Any]) -> None:
        event = recorder_event_from_dict(self.hearing_id, data)
        if event.segment is not None:
            self._segments[event.segment.path] = event.segment
        if event.type is RecorderEventType.RECORDING_FAILED:
            self._state = RecorderState.FAILED
            self._failure = event.reason
        self._emit(event)

    def _worker_lost(self) -> None:
        if self._state in (RecorderState.RECORDING, RecorderState.PAUSED):
            self._state = RecorderState.FAILED
            self._failure = WORKER_LOST_FAILURE
            self._emit(
                RecorderEvent(RecorderEventType.RECORDING_FAILED, self.hearing_id, reason=WORKER_LOST_FAILURE)
            )

    def _emit(self, event: RecorderEvent) -> None:
        if self.on_event is not None:
            try:
                self.on_event(event)
            except Exception:
                log.exception("recorder notice of hearing %s not handled", self.hearing_id)
