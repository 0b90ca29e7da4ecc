"""Frames from packets, for a recorder that still takes encoded frames (:class:`FrameSink`).

A bridge while the recorder moves to :class:`~media.contract.PacketSink` input: reorders and
reassembles each track's packets with aiortc's jitter buffer and depacketizer, starts video
on a keyframe (asking for one), and places frames on the hearing's timeline.  Runs on the
event loop; the packet-level recorder does this work on its writer thread instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from aiortc import RTCRtpCodecParameters
from aiortc.codecs import depayload
from aiortc.jitterbuffer import JitterBuffer
from aiortc.rtp import RtpPacket as AiortcRtpPacket

from .aiortc_adapter import RtpTimestampUnwrapper
from .bitstream import frame_size, is_keyframe
from .contract import EncodedFrame, FrameSink, RtpPacket, SenderReport, TrackInfo
from .wallclock import ParticipantClock, TrackClock

logger = logging.getLogger(__name__)


@dataclass
class _Assembly:
    codec: RTCRtpCodecParameters
    jitter: JitterBuffer
    clock: TrackClock
    request_keyframe: Callable[[], None]
    unwrapper: RtpTimestampUnwrapper = field(default_factory=RtpTimestampUnwrapper)
    report: SenderReport | None = None
    awaiting_keyframe: bool = True
    last_sequence: int | None = None


class FrameAssembler:
    """A :class:`~media.contract.PacketSink` that hands whole frames to a :class:`FrameSink`."""

    def __init__(self, sink: FrameSink) -> None:
        self.sink = sink
        self._tracks: dict[str, _Assembly] = {}
        self._clocks: dict[str, ParticipantClock] = {}

    def track_started(self, track: TrackInfo, request_keyframe: Callable[[], None]) -> None:
        """A track began: a jitter buffer for it, and the frame sink told."""
        video = track.kind == "video"
        mime = f"{track.kind}/{track.codec}"
        # one clock offset per publish connection: its audio and video share the sender's clock
        generation = track.track_id.rsplit("/", 1)[-1]
        clock = self._clocks.setdefault(f"{track.participant_id}\x00{generation}", ParticipantClock())
        self._tracks[track.track_id] = _Assembly(
            codec=RTCRtpCodecParameters(mimeType=mime, clockRate=track.clock_rate, payloadType=0),
            jitter=JitterBuffer(capacity=128 if video else 16, is_video=video),
            clock=TrackClock(clock, track.clock_rate),
            request_keyframe=request_keyframe,
            awaiting_keyframe=video,
        )
        self.sink.track_started(track)

    def packet(self, packet: RtpPacket) -> None:
        """One packet: a frame goes to the sink when one completes."""
        assembly = self._tracks.get(packet.track.track_id)
        if assembly is None:
            return
        rtp = AiortcRtpPacket(
            marker=int(packet.marker), sequence_number=packet.sequence_number, timestamp=packet.timestamp
        )
        try:
            rtp._data = depayload(assembly.codec, packet.payload)  # type: ignore[attr-defined]
        except ValueError:
            return
        _, frame = assembly.jitter.add(rtp)
        if frame is None:
            return
        track = packet.track
        keyframe = is_keyframe(track.codec, frame.data)
        if assembly.awaiting_keyframe:
            if not keyframe:
                assembly.request_keyframe()
                return
            assembly.awaiting_keyframe = False
        timestamp = assembly.unwrapper.map(frame.timestamp)
        size = frame_size(track.codec, frame.data) if keyframe and track.kind == "video" else None
        self.sink.frame(
            EncodedFrame(
                track=track,
                data=frame.data,
                rtp_timestamp=timestamp,
                wallclock=assembly.clock.wallclock(timestamp, packet.arrival, assembly.report),
                keyframe=keyframe,
                width=size[0] if size else None,
                height=size[1] if size else None,
            )
        )

    def sender_report(self, track: TrackInfo, report: SenderReport) -> None:
        """Keep the publisher's latest sender report for the track's timeline."""
        assembly = self._tracks.get(track.track_id)
        if assembly is not None:
            assembly.report = report

    def track_ended(self, track: TrackInfo) -> None:
        """The track ended."""
        self._tracks.pop(track.track_id, None)
        self.sink.track_ended(track)

    def resync(self, track: TrackInfo) -> None:
        """Packets were left out (mute, recess): start again on a keyframe."""
        assembly = self._tracks.get(track.track_id)
        if assembly is not None and track.kind == "video":
            assembly.awaiting_keyframe = True
            assembly.jitter = JitterBuffer(capacity=128, is_video=True)
