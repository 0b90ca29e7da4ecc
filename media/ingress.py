"""The packets of one publish connection: demultiplexed to its tracks, reports and REMB sent back.

Demultiplexing is by payload type: a publish connection carries at most one audio and one
video m-line, and BUNDLE requires their payload types to differ.  The video's RTX packets
(retransmissions the server NACKed, or the browser's padding probes) are unwrapped here.
Receiver reports go to the publisher every second, with REMB: the configured maximum video
bitrate while aiortc's delay-based estimator (abs-send-time, ``aiortc.rate``) sees no congestion,
its lower estimate when it does.  (Feeding the estimator's slowly growing value back as the cap
held Chrome near its 300 kbit/s start rate for many seconds; its loss-based control, driven by our
receiver reports, ramps up by itself once REMB does not hold it back.)
"""

from __future__ import annotations

import asyncio
import logging
import random
import time

from aiortc import RTCPeerConnection
from aiortc.rate import RemoteBitrateEstimator

from .published_track import PublishedTrack
from .rtcp import RtcpSrPacket, build_remb, build_rr, parse_rtcp
from .rtp import header_extension, parse_rtp
from .stats import MediaStats
from .transport_tap import TransportTap

logger = logging.getLogger(__name__)

RECEIVER_REPORT_INTERVAL_S = 1.0


class Ingress:
    """RTP and RTCP of one publish connection, between the publisher and its published tracks."""

    def __init__(
        self, pc: RTCPeerConnection, stats: MediaStats, max_video_bitrate_bps: int = 2_500_000
    ) -> None:
        self.rtcp_ssrc = random.getrandbits(32) or 1
        self.tap = TransportTap(pc, self._on_rtp, self._on_rtcp, stats)
        self.tracks: list[PublishedTrack] = []
        self.packets_received = 0
        self._stats = stats
        self._by_payload_type: dict[int, tuple[PublishedTrack, bool]] = {}
        self._abs_send_time_id = 0
        self._estimator = RemoteBitrateEstimator()
        self._frame_octets = 0  # video payload received since the estimator was last fed
        self._remb_cap = max_video_bitrate_bps
        self._remb_ssrcs: list[int] = []
        self.remb_bps: int | None = None  # what the publisher was last told
        self._task: asyncio.Task[None] | None = None

    def add_track(
        self,
        track: PublishedTrack,
        payload_types: list[int],
        rtx_payload_type: int | None,
        abs_send_time_id: int,
    ) -> None:
        """Route these payload types to ``track`` (the RTX one unwrapped first)."""
        self.tracks.append(track)
        for payload_type in payload_types:
            self._by_payload_type[payload_type] = (track, False)
        if rtx_payload_type is not None:
            self._by_payload_type[rtx_payload_type] = (track, True)
        if track.info.kind == "video" and abs_send_time_id:
            self._abs_send_time_id = abs_send_time_id

    def start(self) -> None:
        """Begin sending receiver reports."""
        if self._task is None:
            self._task = asyncio.ensure_future(self._report())

    def close(self) -> None:
        """Stop reporting and tapping (the connection is closing)."""
        self.tap.close()
        if self._task is not None:
            self._task.cancel()
            self._task = None

    # --- internals ---------------------------------------------------------------------------

    def _on_rtp(self, data: bytes, arrival_ns: int) -> None:
        header = parse_rtp(data)
        if header is None:
            self._stats.dropped_malformed += 1
            return
        self._stats.packets_in += 1
        self.packets_received += 1
        route = self._by_payload_type.get(header.payload_type)
        if route is None:
            self._stats.dropped_unknown += 1
            return
        track, rtx = route
        size = len(data)
        if self._abs_send_time_id and track.cache is not None:
            # the estimator groups packets sent within 5 ms, which a frame's packets are: it is fed once
            # per frame (at its last packet, with the frame's octets), not per packet (~20 µs a call)
            self._frame_octets += size - header.payload_start
            if header.marker and not rtx:
                value = header_extension(data, header, self._abs_send_time_id)
                if value is not None and len(value) == 3:
                    remb = self._estimator.add(
                        arrival_time_ms=arrival_ns // 1_000_000,
                        abs_send_time=int.from_bytes(value, "big"),
                        payload_size=self._frame_octets,
                        ssrc=header.ssrc,
                    )
                    self._frame_octets = 0
                    if remb is not None:
                        self._send_remb(remb[0], remb[1], arrival_ns // 1_000_000)
        if rtx:
            start, end = header.payload_start, size - header.padding
            if end - start < 3:
                return  # a padding probe: bandwidth estimation only
            sequence_number = (data[start] << 8) | data[start + 1]
            track.receive(
                data, start + 2, end, sequence_number, header.timestamp, header.marker, True, arrival_ns
            )
        else:
            if track.ssrc != header.ssrc:
                track.ssrc = header.ssrc  # the first packet, or the browser restarted the stream
            # padding (if any) is forwarded with the payload: the sequence number must not go missing
            track.receive(
                data,
                header.payload_start,
                size,
                header.sequence_number,
                header.timestamp,
                header.marker,
                False,
                arrival_ns,
            )
        self._stats.observe_transit(time.perf_counter_ns() - arrival_ns)

    def _on_rtcp(self, data: bytes) -> None:
        packets = parse_rtcp(data)
        if packets is None:
            self._stats.dropped_malformed += 1
            return
        for packet in packets:
            if isinstance(packet, RtcpSrPacket):
                for track in self.tracks:
                    if track.ssrc == packet.ssrc:
                        info = packet.sender_info
                        track.on_sender_report(info.ntp_timestamp, info.rtp_timestamp)

    def _send_remb(self, estimate: int, ssrcs: list[int], now_ms: int) -> None:
        incoming = self._estimator.incoming_bitrate.rate(now_ms)
        # aiortc's rate control drops to 0.85 x incoming on overuse: then pass its estimate on
        congested = incoming is not None and estimate < 0.9 * incoming
        self.remb_bps = min(estimate, self._remb_cap) if congested else self._remb_cap
        self._remb_ssrcs = ssrcs
        self.tap.send_rtcp(build_remb(self.rtcp_ssrc, self.remb_bps, ssrcs))

    async def _report(self) -> None:
        while True:
            await asyncio.sleep(RECEIVER_REPORT_INTERVAL_S * (0.8 + 0.4 * random.random()))
            blocks = [block for track in self.tracks if (block := track.receiver_report()) is not None]
            if blocks:
                packet = build_rr(self.rtcp_ssrc, blocks)
                if self.remb_bps is not None:  # repeated: a lost REMB must not hold the publisher back
                    packet += build_remb(self.rtcp_ssrc, self.remb_bps, self._remb_ssrcs)
                self.tap.send_rtcp(packet)
