"""One recorded track fed with RTP packets: reordered, depacketized and put on the hearing timeline.

Runs on the recorder's writer thread.  Video is recorded from a keyframe on: at the start,
after a recess and after packets were lost for good, frames are skipped until the next
keyframe, which is asked of the publisher at once and again every ``keyframe_retry_s``
while none comes.  A lost Opus packet is just a gap.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from media.contract import EncodedFrame, RtpPacket, SenderReport, TrackInfo
from recording.depacketizer import AssembledFrame, Depacketizer, depacketizer_for
from recording.reorder import Loss, ReorderBuffer
from recording.timeline import TrackClock

log = logging.getLogger(__name__)

_TS_MOD = 1 << 32
_TS_HALF = 1 << 31


@dataclass
class KeyframeStats:
    """How often a video track had to wait for a keyframe."""

    requests: int = 0
    frames_skipped: int = 0  # complete frames not recorded while waiting for a keyframe


class PacketTrack:
    """Packets of one track in, :class:`EncodedFrame` s with wall-clock times out (writer thread only)."""

    def __init__(
        self,
        track: TrackInfo,
        clock: TrackClock,
        request_keyframe: Callable[[], None] | None = None,
        *,
        hold_s: float = 0.4,
        keyframe_retry_s: float = 1.0,
    ) -> None:
        self.track = track
        self.clock = clock
        self.reorder = ReorderBuffer(hold_s)
        self.depacketizer: Depacketizer = depacketizer_for(track.codec)
        self.keyframes = KeyframeStats()
        self._request_keyframe = request_keyframe
        self._video = track.kind == "video"
        self._keyframe_retry_s = keyframe_retry_s
        self._awaiting_keyframe = self._video
        self._last_request = -float("inf")  # arrival-clock time of the last keyframe request
        self._last_timestamp: int | None = None  # unwrapped RTP time of the last frame
        self._last_arrival = 0.0  # arrival time of the newest packet ...
        self._last_seen = 0.0  # ... and the monotonic time it was taken

    def set_request_keyframe(self, request_keyframe: Callable[[], None] | None) -> None:
        """Use this way of asking the publisher for keyframes from now on."""
        self._request_keyframe = request_keyframe

    def packet(self, packet: RtpPacket) -> list[EncodedFrame]:
        """Take one arrived packet; return the frames that are now complete, in order."""
        self._last_arrival = packet.arrival
        self._last_seen = time.monotonic()
        return self._depacketize(self.reorder.push(packet))

    def sender_report(self, report: SenderReport) -> None:
        """The publisher's latest mapping of this track's RTP time to its wall clock."""
        self.clock.report = report

    def expire(self, now: float) -> list[EncodedFrame]:
        """Give up on packets still missing when the track has been idle (``now``: monotonic time)."""
        if not self.reorder.waiting:
            return []
        return self._depacketize(self.reorder.expire(self._last_arrival + now - self._last_seen))

    def drain(self) -> list[EncodedFrame]:
        """Everything still held, as frames (the track ends or the recording pauses)."""
        return self._depacketize(self.reorder.drain())

    def restart(self) -> None:
        """After a recess (held packets drained first): start afresh; video waits for a keyframe again."""
        self.reorder.reset()
        self.depacketizer.reset()
        self._awaiting_keyframe = self._video
        self._last_request = -float("inf")

    def _depacketize(self, released: list[RtpPacket | Loss]) -> list[EncodedFrame]:
        depacketizer = self.depacketizer
        frames: list[EncodedFrame] = []
        for item in released:
            if isinstance(item, Loss):
                depacketizer.lost(item.count)
                if depacketizer.damaged:
                    self._damaged(self._last_arrival)
                continue
            for assembled in depacketizer.push(item):
                if depacketizer.damaged:
                    self._damaged(assembled.arrival)
                frame = self._frame(assembled)
                if frame is not None:
                    frames.append(frame)
            if depacketizer.damaged:
                self._damaged(item.arrival)
        return frames

    def _damaged(self, now: float) -> None:
        self.depacketizer.damaged = False
        if not self._awaiting_keyframe:
            self._awaiting_keyframe = True
            self._last_request = -float("inf")  # a new loss: ask at once
        self._ask_keyframe(now)

    def _ask_keyframe(self, now: float) -> None:
        if now - self._last_request < self._keyframe_retry_s:
            return
        self._last_request = now
        self.keyframes.requests += 1
        if self._request_keyframe is not None:
            try:
                self._request_keyframe()
            except Exception:
                log.exception("keyframe request for track %s failed", self.track.track_id)

    def _frame(self, assembled: AssembledFrame) -> EncodedFrame | None:
        if self._awaiting_keyframe:
            if not assembled.keyframe:
                self.keyframes.frames_skipped += 1
                self._ask_keyframe(assembled.arrival)
                return None
            self._awaiting_keyframe = False
        last = self._last_timestamp
        if last is None:
            timestamp = assembled.timestamp
        else:
            timestamp = last + (assembled.timestamp - last + _TS_HALF) % _TS_MOD - _TS_HALF
        self._last_timestamp = timestamp
        size = assembled.size
        return EncodedFrame(
            track=self.track,
            data=assembled.data,
            rtp_timestamp=timestamp,
            wallclock=self.clock.wallclock(assembled.timestamp, assembled.arrival),
            keyframe=assembled.keyframe if self._video else True,
            width=size[0] if size else None,
            height=size[1] if size else None,
        )
