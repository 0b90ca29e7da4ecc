"""The hearing recorder: every forwarded frame remuxed, untouched, into crash-safe segment files.

One file per track segment under ``<hearing folder>/tracks/``; Matroska/WebM with
0.8-second clusters, taken from the inbox every 0.2 s, so a killed process loses at most
about a second.  Timestamps are the frames' wall clock relative to the hearing epoch (the
recorder's start), so every track shares one timeline.
It takes RTP packets (a :class:`PacketSink`) or assembled frames (a :class:`FrameSink`);
reordering, depacketizing and all disk work happen on one writer thread behind a bounded
inbox that it empties in batches, so the event loop only appends (and never wakes the writer
for a packet).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from media.contract import EncodedFrame, RtpPacket, SenderReport, TrackInfo
from recording.disk import ensure_disk_space, free_disk_bytes
from recording.inbox import Inbox
from recording.packet_track import PacketTrack
from recording.recorder_types import PacketStats, RecorderEvent, RecorderEventType, RecorderState
from recording.segments import TRACKS_DIR, Segment, SegmentInfo, SegmentWriter, frame_size
from recording.timeline import PublisherClock, TrackClock, publisher_connection

log = logging.getLogger(__name__)

_EXPIRY_INTERVAL_S = 0.1
_BATCH_INTERVAL_S = 0.2  # how long packets gather before the writer takes them (fewer, warmer batches)


class _Stop:
    pass


class _Pause:
    pass


@dataclass
class _Track:
    track: TrackInfo
    segment: Segment | None = None
    last_wallclock: float | None = None
    skipped_before_keyframe: int = 0
    packets: PacketTrack | None = None  # when the track is fed packets


class HearingRecorder:
    """Records a hearing's forwarded media into its folder without transcoding.

    A :class:`media.contract.PacketSink` (RTP packets, reordered and depacketized on the writer
    thread) and a :class:`media.contract.FrameSink` (assembled frames).  ``on_event`` receives
    :class:`RecorderEvent` s — on ``loop`` if one is given or running at :meth:`start`, else on
    the writer thread.  After a failure (queue overflow, write error, stalled disk) the state is
    FAILED, one ``recording_failed`` event is sent and every later frame or packet is counted in
    :attr:`frames_lost` or :attr:`packets_lost`.
    """

    def __init__(
        self,
        folder: Path | str,
        hearing_id: str,
        *,
        on_event: Callable[[RecorderEvent], None] | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
        epoch: float | None = None,
        queue_frames: int = 16000,
        min_free_bytes: int = 1 << 30,
        warn_free_bytes: int = 4 << 30,
        gap_threshold_s: float = 1.0,
        fsync_interval_s: float = 1.0,
        disk_check_interval_s: float = 5.0,
        disk_warning_interval_s: float = 60.0,
        stall_timeout_s: float = 10.0,
        reorder_hold_s: float = 0.4,
        keyframe_retry_s: float = 1.0,
    ) -> None:
        self.folder = Path(folder)
        self.hearing_id = hearing_id
        self.on_event = on_event
        self._loop = loop
        self._epoch = epoch
        self._inbox = Inbox()
        self._queue_limit = max(1, queue_frames)
        self.min_free_bytes = min_free_bytes
        self.warn_free_bytes = warn_free_bytes
        self.gap_threshold_s = gap_threshold_s
        self.fsync_interval_s = fsync_interval_s
        self.disk_check_interval_s = disk_check_interval_s
        self.disk_warning_interval_s = disk_warning_interval_s
        self.stall_timeout_s = stall_timeout_s
        self.reorder_hold_s = reorder_hold_s
        self.keyframe_retry_s = keyframe_retry_s
        self._lock = threading.Lock()
        self._state = RecorderState.IDLE
        self._failure: str | None = None
        self._thread: threading.Thread | None = None
        self._last_progress = time.monotonic()
        self._segments: dict[str, SegmentInfo] = {}
        self._files = SegmentWriter(self.folder, hearing_id)
        self._packet_tracks: list[PacketTrack] = []  # every packet-fed track so far, for the figures
        self.frames_written = 0
        self.frames_lost = 0
        self.frames_paused = 0
        self.packets_received = 0  # every packet given, in any state
        self.packets_lost = 0  # not recorded because recording failed (or overflowed)
        self.packets_paused = 0

    # -- public state ------------------------------------------------------

    @property
    def state(self) -> RecorderState:
        """Current state; FAILED stays until the recorder is stopped."""
        return self._state

    @property
    def failed(self) -> bool:
        """True once recording has failed."""
        return self._state is RecorderState.FAILED

    @property
    def failure(self) -> str | None:
        """Why recording failed, if it did."""
        return self._failure

    @property
    def epoch(self) -> float:
        """The hearing timeline's zero, UTC seconds since 1970."""
        if self._epoch is None:
            raise RuntimeError("recorder not started")
        return self._epoch

    @property
    def packet_stats(self) -> PacketStats:
        """Figures of the packet input (loss, duplicates, keyframe waits) over every track so far."""
        with self._lock:
            tracks = list(self._packet_tracks)
        return PacketStats(
            received=self.packets_received,
            taken=sum(t.reorder.stats.received for t in tracks),
            duplicates=sum(t.reorder.stats.duplicates for t in tracks),
            missing=sum(t.reorder.stats.lost for t in tracks),
            frames=sum(t.depacketizer.stats.frames for t in tracks),
            frames_incomplete=sum(t.depacketizer.stats.frames_dropped for t in tracks),
            frames_skipped=sum(t.keyframes.frames_skipped for t in tracks),
            malformed=sum(t.depacketizer.stats.malformed for t in tracks),
            keyframe_requests=sum(t.keyframes.requests for t in tracks),
        )

    @property
    def segments(self) -> list[SegmentInfo]:
        """Every segment opened so far (closed ones included), in opening order."""
        with self._lock:
            return list(self._segments.values())

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> None:
        """Check disk space, fix the epoch and start the writer thread."""
        if self._state is not RecorderState.IDLE:
            raise RuntimeError(f"recorder is {self._state.value}")
        ensure_disk_space(self.folder, self.min_free_bytes)
        (self.folder / TRACKS_DIR).mkdir(parents=True, exist_ok=True)
        if self._epoch is None:
            self._epoch = time.time()
        if self._loop is None:
            try:
                self._loop = asyncio.get_running_loop()
            except RuntimeError:
                self._loop = None
        self._state = RecorderState.RECORDING
        self._last_progress = time.monotonic()
        self._thread = threading.Thread(target=self._run, name=f"recorder-{self.hearing_id}", daemon=True)
        self._thread.start()

    def pause(self) -> None:
        """Recess: close every segment cleanly and record nothing until :meth:`resume`."""
        if self._state is RecorderState.RECORDING:
            self._state = RecorderState.PAUSED
            self._enqueue(_Pause(), wake=True)

    def resume(self) -> None:
        """End the recess; each video track restarts at its next keyframe in a new segment."""
        if self._state is RecorderState.PAUSED:
            self._state = RecorderState.RECORDING

    def stop(self, timeout: float = 30.0) -> list[SegmentInfo]:
        """Write out what is queued, close every file and end the writer (blocking)."""
        thread = self._thread
        if thread is not None and thread.is_alive():
            self._inbox.put_now(_Stop())
            thread.join(timeout)
            if thread.is_alive():
                self._fail(f"writer did not finish within {timeout:.0f} s of stopping")
        if self._state is not RecorderState.FAILED:
            self._state = RecorderState.STOPPED
        return self.segments

    async def aclose(self) -> list[SegmentInfo]:
        """:meth:`stop` without blocking the event loop."""
        return await asyncio.to_thread(self.stop)

    # -- PacketSink and FrameSink ---------------------------------------------

    def track_started(self, track: TrackInfo, request_keyframe: Callable[[], None] | None = None) -> None:
        """A participant published a track; its segment opens with its first usable frame.

        ``request_keyframe`` (packet input) asks the publisher for a keyframe, from any thread.
        """
        if self._state in (RecorderState.RECORDING, RecorderState.PAUSED):
            self._enqueue(("start", track, request_keyframe), wake=True)

    def packet(self, packet: RtpPacket) -> None:
        """Queue one RTP packet for the writer; returns at once (reordered and depacketized there)."""
        self.packets_received += 1
        state = self._state
        if state is RecorderState.RECORDING:
            if time.monotonic() - self._last_progress > self.stall_timeout_s:
                self._check_stall()
            if len(self._inbox) < self._queue_limit:
                self._inbox.put(packet)
            else:
                self._enqueue(packet)  # fails the recording: the disk is not keeping up
        elif state is RecorderState.PAUSED:
            self.packets_paused += 1
        elif state is RecorderState.FAILED:
            self.packets_lost += 1

    def sender_report(self, track: TrackInfo, report: SenderReport) -> None:
        """The publisher's latest sender report for a track: places its frames on the wall clock."""
        if self._state in (RecorderState.RECORDING, RecorderState.PAUSED):
            self._enqueue(("report", track, report))

    def frame(self, frame: EncodedFrame) -> None:
        """Queue one encoded frame for the writer; returns at once."""
        state = self._state
        if state is RecorderState.RECORDING:
            self._check_stall()
            self._enqueue(frame)
        elif state is RecorderState.PAUSED:
            self.frames_paused += 1
        elif state is RecorderState.FAILED:
            self.frames_lost += 1

    def track_ended(self, track: TrackInfo) -> None:
        """A track ended; its segment is closed."""
        if self._state in (RecorderState.RECORDING, RecorderState.PAUSED):
            self._enqueue(("end", track, None), wake=True)

    # -- loop side helpers ---------------------------------------------------

    def _enqueue(self, item: object, wake: bool = False) -> None:
        if len(self._inbox) < self._queue_limit:
            if wake:
                self._inbox.put_now(item)
            else:
                self._inbox.put(item)
            return
        if isinstance(item, EncodedFrame):
            self.frames_lost += 1
        elif isinstance(item, RtpPacket):
            self.packets_lost += 1
        self._fail(f"recording queue overflowed ({self._queue_limit} items): the disk is not keeping up")

    def _check_stall(self) -> None:
        if len(self._inbox) and time.monotonic() - self._last_progress > self.stall_timeout_s:
            self._fail(f"writer made no progress for {self.stall_timeout_s:.0f} s")

    def _fail(self, reason: str) -> None:
        with self._lock:
            if self._state is RecorderState.FAILED:
                return
            self._state = RecorderState.FAILED
            self._failure = reason
        log.error("recording of hearing %s failed: %s", self.hearing_id, reason)
        self._emit(RecorderEvent(RecorderEventType.RECORDING_FAILED, self.hearing_id, reason=reason))

    def _emit(self, event: RecorderEvent) -> None:
        if self.on_event is None:
            return
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                if _running_loop() is loop:
                    self._deliver(event)
                else:
                    loop.call_soon_threadsafe(self._deliver, event)
                return
            except RuntimeError:
                pass  # loop closed between the check and the call: deliver here instead
        self._deliver(event)

    def _deliver(self, event: RecorderEvent) -> None:
        assert self.on_event is not None
        try:
            self.on_event(event)
        except Exception:
            log.exception("recorder event callback failed for %s", event.type)

    # -- writer thread -----------------------------------------------------

    def _run(self) -> None:
        tracks: dict[str, _Track] = {}
        clocks: dict[str, PublisherClock] = {}  # one per publisher connection, shared by its tracks
        last_sync = last_disk_check = last_expiry = time.monotonic()
        last_warning = -float("inf")
        try:
            while True:
                batch = self._inbox.take(_BATCH_INTERVAL_S)
                now = time.monotonic()
                self._last_progress = now
                if self._state is RecorderState.FAILED:
                    self._count_lost_items(batch)
                    break
                if self._handle_batch(batch, tracks, clocks):
                    break
                if now - last_expiry >= _EXPIRY_INTERVAL_S:
                    # a track whose packets stopped coming still gives up its holes after the hold
                    last_expiry = now
                    for state in list(tracks.values()):
                        if state.packets is not None:
                            for frame in state.packets.expire(now):
                                self._write(tracks, frame)
                if now - last_sync >= self.fsync_interval_s:
                    self._sync(tracks)
                    last_sync = now
                if now - last_disk_check >= self.disk_check_interval_s:
                    last_disk_check = now
                    free = free_disk_bytes(self.folder)
                    if free < self.warn_free_bytes and now - last_warning >= self.disk_warning_interval_s:
                        last_warning = now
                        self._emit(
                            RecorderEvent(RecorderEventType.DISK_SPACE_LOW, self.hearing_id, free_bytes=free)
                        )
        except Exception as exc:  # any write, mux or sync error ends the recording loudly
            self._fail(f"{type(exc).__name__}: {exc}")
        finally:
            for state in tracks.values():
                try:
                    self._close_segment(state)
                except Exception as exc:
                    self._fail(f"closing a segment failed: {type(exc).__name__}: {exc}")
            if self._state is RecorderState.FAILED:
                self._count_lost()

    def _handle_batch(
        self, batch: list[object], tracks: dict[str, _Track], clocks: dict[str, PublisherClock]
    ) -> bool:
        """Record one batch of the inbox in order; True when it held the stop.

        If an item fails, the items after it in the batch are counted as lost before the error goes on.
        """
        for position, item in enumerate(batch):
            try:
                if self._handle(item, tracks, clocks):
                    return True
            except Exception:
                self._count_lost_items(batch[position + 1 :])
                raise
        return False

    def _handle(self, item: object, tracks: dict[str, _Track], clocks: dict[str, PublisherClock]) -> bool:
        """Record one item of the inbox; True when it is the stop."""
        if isinstance(item, RtpPacket):
            state = tracks.get(item.track.track_id)
            if state is None or state.packets is None:
                state = self._packet_track(tracks, clocks, item.track, None)
            assert state.packets is not None
            for frame in state.packets.packet(item):
                self._write(tracks, frame)
        elif isinstance(item, EncodedFrame):
            try:
                self._write(tracks, item)
            except Exception:
                self.frames_lost += 1
                raise
        elif isinstance(item, _Stop):
            self._drain(tracks)
            return True
        elif isinstance(item, _Pause):
            self._drain(tracks)
            for state in tracks.values():
                self._close_segment(state)
                state.last_wallclock = None
                if state.packets is not None:
                    state.packets.restart()
        elif isinstance(item, tuple):
            command, track, argument = item
            if command == "start":
                if argument is not None:
                    self._packet_track(tracks, clocks, track, argument)
                else:
                    tracks.setdefault(track.track_id, _Track(track))
            elif command == "report":
                state = tracks.get(track.track_id)
                if state is None or state.packets is None:
                    state = self._packet_track(tracks, clocks, track, None)
                assert state.packets is not None
                state.packets.sender_report(argument)
            elif command == "end" and track.track_id in tracks:
                state = tracks[track.track_id]
                if state.packets is not None:
                    for frame in state.packets.drain():
                        self._write(tracks, frame)
                self._close_segment(tracks.pop(track.track_id))
        return False

    def _count_lost(self) -> None:
        self._count_lost_items(self._inbox.take(0))

    def _count_lost_items(self, items: list[object]) -> None:
        for item in items:
            if isinstance(item, EncodedFrame):
                self.frames_lost += 1
            elif isinstance(item, RtpPacket):
                self.packets_lost += 1

    def _packet_track(
        self,
        tracks: dict[str, _Track],
        clocks: dict[str, PublisherClock],
        track: TrackInfo,
        request_keyframe: Callable[[], None] | None,
    ) -> _Track:
        """The writer's state of a packet-fed track, made on its first start, packet or report."""
        state = tracks.get(track.track_id)
        if state is None:
            state = tracks[track.track_id] = _Track(track)
        if state.packets is None:
            publisher = clocks.setdefault(publisher_connection(track), PublisherClock())
            state.packets = PacketTrack(
                track,
                TrackClock(publisher, track.clock_rate),
                request_keyframe,
                hold_s=self.reorder_hold_s,
                keyframe_retry_s=self.keyframe_retry_s,
            )
            with self._lock:
                self._packet_tracks.append(state.packets)
        elif request_keyframe is not None:
            state.packets.set_request_keyframe(request_keyframe)
        return state

    def _drain(self, tracks: dict[str, _Track]) -> None:
        """Write out every frame still held in a reorder buffer."""
        for state in list(tracks.values()):
            if state.packets is not None:
                for frame in state.packets.drain():
                    self._write(tracks, frame)

    def _write(self, tracks: dict[str, _Track], frame: EncodedFrame) -> None:
        state = tracks.get(frame.track.track_id)
        if state is None:
            state = tracks[frame.track.track_id] = _Track(frame.track)
        seconds = frame.wallclock - self.epoch
        if state.last_wallclock is not None and frame.wallclock - state.last_wallclock > self.gap_threshold_s:
            self._emit(
                RecorderEvent(
                    RecorderEventType.GAP_DETECTED,
                    self.hearing_id,
                    track=frame.track,
                    gap_start_s=state.last_wallclock - self.epoch,
                    gap_end_s=seconds,
                )
            )
        segment = state.segment
        if frame.track.kind == "video":
            size = frame_size(frame)
            if segment is None:
                if not frame.keyframe:
                    state.skipped_before_keyframe += 1
                    return
                segment = self._open_segment(state, size)
            elif frame.keyframe and size is not None and size != (segment.info.width, segment.info.height):
                self._close_segment(state)  # resolution changed: a new file keeps both decodable
                segment = self._open_segment(state, size)
        elif segment is None:
            segment = self._open_segment(state, None)
        state.last_wallclock = frame.wallclock
        self._files.mux(segment, frame, seconds)
        self.frames_written += 1

    def _open_segment(self, state: _Track, size: tuple[int, int] | None) -> Segment:
        track = state.track
        segment = self._files.open(track, size, self.epoch)
        info = segment.info
        state.segment = segment
        with self._lock:
            self._segments[info.path] = info
        self._emit(
            RecorderEvent(
                RecorderEventType.SEGMENT_OPENED,
                self.hearing_id,
                track=track,
                segment=info,
                details={"skipped_before_keyframe": state.skipped_before_keyframe},
            )
        )
        state.skipped_before_keyframe = 0
        return segment

    def _close_segment(self, state: _Track) -> None:
        segment = state.segment
        if segment is None:
            return
        state.segment = None
        try:
            self._files.close(segment)
        finally:
            self._publish(segment)
        self._emit(
            RecorderEvent(
                RecorderEventType.SEGMENT_CLOSED,
                self.hearing_id,
                track=state.track,
                segment=segment.snapshot(),
            )
        )

    def _publish(self, segment: Segment) -> None:
        info = segment.snapshot()
        with self._lock:
            self._segments[info.path] = info

    def _sync(self, tracks: dict[str, _Track]) -> None:
        for state in tracks.values():
            segment = state.segment
            if segment is not None and segment.sync_fd >= 0:
                os.fsync(segment.sync_fd)
                self._publish(segment)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
