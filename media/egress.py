"""The packets of one subscribe connection: down tracks out, the subscriber's feedback in.

Feedback is routed by the SSRC it names: NACKs to the down track's retransmissions, PLI/FIR
to the publisher's keyframe request manager, receiver reports to the link estimate (loss,
round trip) and REMB to the subscriber's bandwidth estimate — kept here, per subscriber, for
``stats()`` and for congestion control (:mod:`congestion`): on a congested link the others' video is
held back (the priority participant's last), padding keeps the reports coming, and video resumes
once the link is clear.  Translated sender reports go out every second.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiortc import RTCPeerConnection

from .congestion import LinkEstimator, VideoLevel, VideoPolicy
from .contract import LinkQuality
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
PADDING_INTERVAL_S = 0.02  # per held video track: ~50 packets/s, ~25 kbit/s, so each report measures loss

logger = logging.getLogger(__name__)


@dataclass
class LinkEstimate:
    """What the subscriber's reports say about the server → subscriber path."""

    round_trip_s: float | None = None
    fraction_lost: float | None = None  # 0..1, of the last report interval
    cumulative_lost: int = 0
    remb_bps: int | None = None


class Egress:
    """RTP and RTCP of one subscribe connection, between its down tracks and the subscriber."""

    def __init__(
        self,
        pc: RTCPeerConnection,
        stats: MediaStats,
        on_link: Callable[[LinkQuality], None] | None = None,
    ) -> None:
        self.tap = TransportTap(pc, self._on_rtp, self._on_rtcp, stats)
        self.down_tracks: list[DownTrack] = []
        self.link = LinkEstimate()
        self.estimator = LinkEstimator()
        self.policy = VideoPolicy()
        self.priority_participant: str | None = None  # whose video is held back last
        self.quality = LinkQuality(None, None, 0.0, False, False)
        self._on_link = on_link
        self._stats = stats
        self._reporting: asyncio.Task[None] | None = None
        self._padding: asyncio.Task[None] | None = None  # only while video is held back

    def start(self) -> None:
        """Begin sending sender reports."""
        if self._reporting is None:
            self._reporting = asyncio.ensure_future(self._report())
            self._pad_while_held(self.policy.level)

    def close(self) -> None:
        """Stop reporting, padding and tapping."""
        self.tap.close()
        for task in (self._reporting, self._padding):
            if task is not None:
                task.cancel()
        self._reporting = self._padding = None

    def apply_video_level(self) -> None:
        """Hold back (or resume) each video down track as the policy's current level says."""
        level = self.policy.level
        for track in self.down_tracks:
            if track.kind != "video":
                continue
            source = track.source
            priority = source is not None and source.info.participant_id == self.priority_participant
            track.hold(level == VideoLevel.NONE or (level == VideoLevel.PRIORITY_ONLY and not priority))

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
        reported = False
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
                    self.estimator.report(
                        block.ssrc, block.highest_sequence, block.packets_lost, rtt, time.monotonic()
                    )
                    reported = True
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
                    self.estimator.remb(remb[0])
        if reported:
            self._congestion()

    def _congestion(self) -> None:
        now = time.monotonic()
        self.estimator.sent(sum(track.octets_sent for track in self.down_tracks), now)
        senders = {
            track.source.info.participant_id
            for track in self.down_tracks
            if track.kind == "video" and track.source is not None
        }
        # the middle level helps only if it keeps the priority video and pauses some other
        two_steps = self.priority_participant in senders and len(senders) > 1
        before = self.policy.level
        level = self.policy.update(self.estimator.snapshot(), now, others_sending=two_steps)
        self.apply_video_level()
        link = self.estimator.snapshot()
        self.quality = LinkQuality(
            loss_pct=100 * link.loss if link.loss is not None else None,
            round_trip_ms=1000 * link.round_trip_s if link.round_trip_s is not None else None,
            sent_kbps=link.sent_bps / 1000,
            video_paused=level > VideoLevel.ALL,
            all_video_paused=level == VideoLevel.NONE,
        )
        if level == before:
            return
        self._pad_while_held(level)
        if level > before:
            self._stats.video_pauses += 1
        else:
            self._stats.video_resumes += 1
        if self._on_link is not None:
            try:
                self._on_link(self.quality)
            except Exception:
                logger.exception("link quality handler failed")

    def _pad_while_held(self, level: VideoLevel) -> None:
        """Padding runs only while some video is held back: a timer per subscriber costs CPU otherwise."""
        if level > VideoLevel.ALL and self._padding is None and self._reporting is not None:
            self._padding = asyncio.ensure_future(self._pad())
        elif level == VideoLevel.ALL and self._padding is not None:
            self._padding.cancel()
            self._padding = None

    async def _pad(self) -> None:
        """One padding packet per held track every PADDING_INTERVAL_S, on a fixed schedule (sleeping the
        interval after each round's work drifts to ~35 packets/s on a busy loop: too few to measure loss)."""
        loop = asyncio.get_running_loop()
        due = loop.time()
        while True:
            due = max(due + PADDING_INTERVAL_S, loop.time())  # a late round is not made up in a burst
            await asyncio.sleep(due - loop.time())
            if self.policy.level > VideoLevel.ALL:
                for track in self.down_tracks:
                    track.padding()

    async def _report(self) -> None:
        while True:
            await asyncio.sleep(SENDER_REPORT_INTERVAL_S * (0.8 + 0.4 * random.random()))  # noqa: S311
            reports = [report for down_track in self.down_tracks if (report := down_track.sender_report())]
            if reports:
                self.tap.send_rtcp(b"".join(reports))
