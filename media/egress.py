"""The packets of one subscribe connection: down tracks out, the subscriber's feedback in.

Feedback is routed by the SSRC it names: NACKs to the down track's retransmissions, PLI/FIR
to the publisher's keyframe request manager, receiver reports to the link estimate (loss,
round trip) and REMB to the subscriber's bandwidth estimate — kept here, per subscriber, for
``stats()`` and later for congestion control (#16).  Translated sender reports go out every
second.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass

from aiortc import RTCPeerConnection

from .downtrack import DownTrack
from .rtcp import (
    RtcpRrPacket,
    RtcpSrPacket,
    fir_targets,
    is_fir,
    is_nack,
    is_pli,
    parse_rtcp,
    remb_bitrate,
)
from .stats import MediaStats
from .transport_tap import TransportTap

SENDER_REPORT_INTERVAL_S = 1.0


@dataclass
class LinkEstimate:
    """What the subscriber's reports say about the server → subscriber path."""

    round_trip_s: float | None = None
    fraction_lost: float | None = None  # 0..1, of the last report interval
    cumulative_lost: int = 0
    remb_bps: int | None = None


class Egress:
    """RTP and RTCP of one subscribe connection, between its down tracks and the subscriber."""

    def __init__(self, pc: RTCPeerConnection, stats: MediaStats) -> None:
        self.tap = TransportTap(pc, self._on_rtp, self._on_rtcp, stats)
        self.down_tracks: list[DownTrack] = []
        self.link = LinkEstimate()
        self._stats = stats
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Begin sending sender reports."""
        if self._task is None:
            self._task = asyncio.ensure_future(self._report())

    def close(self) -> None:
        """Stop reporting and tapping."""
        self.tap.close()
        if self._task is not None:
            self._task.cancel()
            self._task = None

    # --- internals ---------------------------------------------------------------------------

    def _down_track(self, ssrc: int) -> DownTrack | None:
        for down_track in self.down_tracks:
            if down_track.leg.ssrc == ssrc or down_track.leg.rtx_ssrc == ssrc:
                return down_track
        return None

    def _on_rtp(self, data: bytes, arrival_ns: int) -> None:
        self._stats.dropped_unknown += 1  # a subscriber sends no media on this connection

    def _on_rtcp(self, data: bytes) -> None:
        packets = parse_rtcp(data)
        if packets is None:
            self._stats.dropped_malformed += 1
            return
        for packet in packets:
            if isinstance(packet, (RtcpRrPacket, RtcpSrPacket)):
                for block in packet.reports:
                    down_track = self._down_track(block.ssrc)
                    if down_track is None:
                        continue
                    rtt = down_track.round_trip(block.lsr, block.dlsr)
                    if rtt is not None:
                        previous = self.link.round_trip_s
                        self.link.round_trip_s = rtt if previous is None else 0.8 * previous + 0.2 * rtt
                    self.link.fraction_lost = block.fraction_lost / 256
                    self.link.cumulative_lost = block.packets_lost
            elif is_nack(packet):
                down_track = self._down_track(packet.media_ssrc)  # type: ignore[union-attr]
                if down_track is not None:
                    down_track.nack(packet.lost)  # type: ignore[union-attr]
            elif is_pli(packet):
                down_track = self._down_track(packet.media_ssrc)  # type: ignore[union-attr]
                if down_track is not None:
                    down_track.keyframe_requested()
            elif is_fir(packet):
                for ssrc in fir_targets(packet):  # type: ignore[arg-type]
                    down_track = self._down_track(ssrc)
                    if down_track is not None:
                        down_track.keyframe_requested()
            else:
                remb = remb_bitrate(packet)
                if remb is not None:
                    self.link.remb_bps = remb[0]

    async def _report(self) -> None:
        while True:
            await asyncio.sleep(SENDER_REPORT_INTERVAL_S * (0.8 + 0.4 * random.random()))
            reports = [report for down_track in self.down_tracks if (report := down_track.sender_report())]
            if reports:
                self.tap.send_rtcp(b"".join(reports))
