"""Fan-out of encoded frames: each published track is read once and copied to its subscribers.

A :class:`PublishedTrack` reads one participant's incoming track and hands every frame to
the :class:`~media.contract.FrameSink` once and to each subscriber's
:class:`ForwardedTrack`, whose bounded queue the subscriber's RTP sender drains.  A
subscriber starts (and restarts after a gap: a full queue, mute, recess) on a keyframe and
asks the publisher for one; so does the sink's video, so that a recording never begins with
frames that refer to ones it does not have.
"""

from __future__ import annotations

import asyncio
import fractions
import logging
import time
from collections.abc import Callable

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from .aiortc_adapter import ReceiverTap
from .bitstream import frame_size
from .contract import EncodedFrame, FrameSink, TrackInfo, TrackKind
from .wallclock import TrackClock

logger = logging.getLogger(__name__)


class KeyframeRequests:
    """Asks a publisher for keyframes at most once per interval; a request inside the
    interval is sent when the interval ends, so none is lost."""

    def __init__(self, send: Callable[[], bool], min_interval_s: float) -> None:
        self._send = send
        self._min_interval = min_interval_s
        self._last = -float("inf")
        self._timer: asyncio.TimerHandle | None = None

    def request(self) -> None:
        if self._timer is not None:
            return
        wait = self._last + self._min_interval - time.monotonic()
        if wait <= 0:
            self._fire()
        else:
            self._timer = asyncio.get_running_loop().call_later(wait, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._last = time.monotonic()
        if not self._send():
            # no media from the publisher yet: its first frame is a keyframe anyway, but retry
            self._timer = asyncio.get_running_loop().call_later(self._min_interval, self._fire)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class PublishedTrack:
    """One participant's incoming track, read once and fanned out to subscribers and the sink."""

    def __init__(
        self,
        info: TrackInfo,
        source: MediaStreamTrack,
        tap: ReceiverTap,
        clock: TrackClock,
        sink: FrameSink | None,
        keyframe_min_interval_s: float,
        on_live: Callable[[PublishedTrack], None],
        on_ended: Callable[[PublishedTrack], None],
    ) -> None:
        self.info = info
        self.subscribers: set[ForwardedTrack] = set()
        self.live = False  # a first frame has arrived
        self.ended = False
        self._source = source
        self._tap = tap
        self._clock = clock
        self._sink = sink
        self._forwarding = True
        self._sink_awaiting_keyframe = True
        self._keyframes = KeyframeRequests(tap.request_keyframe, keyframe_min_interval_s)
        self._on_live = on_live
        self._on_ended = on_ended
        self._task: asyncio.Task[None] | None = None

    @property
    def forwarding(self) -> bool:
        """False while muted or in recess: frames go neither to subscribers nor to the sink."""
        return self._forwarding

    def set_forwarding(self, forwarding: bool) -> None:
        if forwarding and not self._forwarding:
            # subscribers and the recording missed the frames the next deltas refer to
            for subscriber in self.subscribers:
                subscriber.resync()
            self._sink_awaiting_keyframe = True
            self.request_keyframe()
        self._forwarding = forwarding

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._read())

    def request_keyframe(self) -> None:
        if self.info.kind == "video" and not self.ended:
            self._keyframes.request()

    async def stop(self) -> None:
        """End the track: subscribers are detached and the sink is told."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self._end()

    async def _read(self) -> None:
        try:
            while True:
                packet = await self._source.recv()
                if isinstance(packet, av.Packet) and packet.pts is not None:
                    self._deliver(packet, packet.pts)
        except MediaStreamError:
            pass
        finally:
            self._end()

    def _deliver(self, packet: av.Packet, rtp_timestamp: int) -> None:
        if not self.live:
            self.live = True
            self._notify_sink("track_started", self.info)
            self._on_live(self)
        if not self._forwarding:
            return
        data = bytes(packet)
        keyframe = bool(packet.is_keyframe)
        size = frame_size(self.info.codec, data) if keyframe and self.info.kind == "video" else None
        frame = EncodedFrame(
            track=self.info,
            data=data,
            rtp_timestamp=rtp_timestamp,
            wallclock=self._clock.wallclock(rtp_timestamp, time.time(), self._tap.sender_report),
            keyframe=keyframe,
            width=size[0] if size else None,
            height=size[1] if size else None,
        )
        if self._sink_awaiting_keyframe and keyframe:
            self._sink_awaiting_keyframe = False
        if not self._sink_awaiting_keyframe:
            self._notify_sink("frame", frame)
        elif self._sink is not None:
            self.request_keyframe()
        for subscriber in list(self.subscribers):
            subscriber.push(frame)

    def _end(self) -> None:
        if self.ended:
            return
        self.ended = True
        self._keyframes.close()
        if self.live:
            self._notify_sink("track_ended", self.info)
        self._on_ended(self)  # the router takes the track out of every subscription first
        for subscriber in list(self.subscribers):
            subscriber.detach()

    def _notify_sink(self, method: str, argument: object) -> None:
        if self._sink is None:
            return
        try:
            getattr(self._sink, method)(argument)
        except Exception:
            # a failing recorder must not stop the hearing's media
            logger.exception("frame sink failed in %s for track %s", method, self.info.track_id)


class ForwardedTrack(MediaStreamTrack):
    """What a subscriber's RTP sender reads: the frames of at most one published track at a time.

    One per transceiver slot, for the slot's whole life: aiortc's sender awaits ``recv()`` of
    the track it holds, so a slot is re-pointed at another publisher here instead of giving
    its sender a new track (which would leave that pending ``recv()`` waiting forever).
    """

    def __init__(self, kind: TrackKind, capacity: int) -> None:
        super().__init__()
        self.kind = kind
        self.source: PublishedTrack | None = None
        self._queue: asyncio.Queue[av.Packet] = asyncio.Queue(maxsize=max(1, capacity))
        self._ready = False
        self._awaiting_keyframe = True
        self._rebase = True
        self._offset = 0
        self._last_pts: int | None = None
        self._last_sent = 0.0
        self._time_base: fractions.Fraction | None = None

    @property
    def ready(self) -> bool:
        """Whether the subscriber has negotiated this slot for its current source."""
        return self._ready

    def attach(self, source: PublishedTrack) -> None:
        self.detach()
        self.source = source
        source.subscribers.add(self)
        self._rebase = True
        self.resync()

    def detach(self) -> None:
        if self.source is not None:
            self.source.subscribers.discard(self)
            self.source = None
        self._flush()
        self._ready = False

    def set_ready(self, ready: bool) -> None:
        if ready and not self._ready:
            self._ready = True
            self.resync()
        elif not ready:
            self._ready = False

    def resync(self) -> None:
        """Drop frames until the next keyframe, and ask the publisher for one."""
        self._awaiting_keyframe = True
        if self.source is not None and self._ready:
            self.source.request_keyframe()

    def keyframe_requested(self) -> None:
        """The subscriber sent a PLI or FIR."""
        if self.source is not None:
            self.source.request_keyframe()

    def push(self, frame: EncodedFrame) -> None:
        if not self._ready:
            return
        if self._awaiting_keyframe:
            if not frame.keyframe:
                # A keyframe request travels over UDP and may be lost: keep asking (rate-limited per
                # publisher) until a keyframe arrives, or this subscriber's video stays frozen.
                if self.source is not None:
                    self.source.request_keyframe()
                return
            self._awaiting_keyframe = False
        if self._queue.full():
            # the subscriber is too slow: skip ahead to a fresh keyframe
            self._flush()
            self.resync()
            return
        self._queue.put_nowait(self._packet(frame))

    async def recv(self) -> av.Packet:
        if self.readyState != "live":
            raise MediaStreamError
        return await self._queue.get()

    def _packet(self, frame: EncodedFrame) -> av.Packet:
        clock_rate = frame.track.clock_rate
        now = time.monotonic()
        if self._rebase:
            # keep the subscriber's RTP time running smoothly across a change of publisher
            self._rebase = False
            if self._last_pts is None:
                self._offset = 0
            else:
                elapsed = max(1, round((now - self._last_sent) * clock_rate))
                self._offset = self._last_pts + elapsed - frame.rtp_timestamp
        if self._time_base is None or self._time_base.denominator != clock_rate:
            self._time_base = fractions.Fraction(1, clock_rate)
        packet = av.Packet(frame.data)
        packet.pts = frame.rtp_timestamp + self._offset
        packet.time_base = self._time_base
        packet.is_keyframe = frame.keyframe
        self._last_pts = packet.pts
        self._last_sent = now
        return packet

    def _flush(self) -> None:
        while not self._queue.empty():
            self._queue.get_nowait()
