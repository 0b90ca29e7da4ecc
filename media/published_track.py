"""One participant's incoming track at packet level, fanned out to its down tracks and the sink.

A :class:`PublishedTrack` gets each RTP packet of its track once (RTX already unwrapped by the
publish connection's :class:`~media.ingress.Ingress`), notes what receiver reports need,
spots lost packets to NACK, caches video packets for subscribers' NACKs, spots keyframes,
and hands the packet to every :class:`~media.downtrack.DownTrack` and to the
:class:`~media.contract.PacketSink`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from .contract import PacketSink, RtpPacket, SenderReport, TrackInfo
from .fanout import RouteState, fan_out
from .keyframes import KeyframeRequestManager
from .packet_cache import PacketCache
from .rtcp import RtcpReceiverInfo, build_nack, build_pli, unix_from_ntp
from .rtp import keyframe_start, seq_delta
from .stats import MediaStats

if TYPE_CHECKING:
    from .downtrack import DownTrack

logger = logging.getLogger(__name__)

NACK_MAX_TRIES = 10  # mediasoup's NackGenerator asks up to 10 times
NACK_MAX_AGE_S = 1.0
NACK_MAX_GAP = 500  # a bigger jump is a restart of the stream, not loss
FLAG_MARKER = 1
FLAG_PADDING = 2


class ReceptionStats:
    """What a receiver report says about one incoming stream (RFC 3550 appendix A.3 and A.8)."""

    __slots__ = (
        "base_seq",
        "max_seq",
        "cycles",
        "received",
        "jitter_q4",
        "_transit",
        "_expected_prior",
        "_received_prior",
    )

    def __init__(self) -> None:
        self.base_seq: int | None = None
        self.max_seq = 0
        self.cycles = 0
        self.received = 0
        self.jitter_q4 = 0
        self._transit: int | None = None
        self._expected_prior = 0
        self._received_prior = 0

    def add(self, sequence_number: int, timestamp: int, arrival_units: int) -> None:
        """One packet of the stream; ``arrival_units`` is the arrival time in clock-rate units."""
        self.received += 1
        if self.base_seq is None:
            self.base_seq = self.max_seq = sequence_number
        else:
            delta = seq_delta(sequence_number, self.max_seq)
            if delta > 0:
                if sequence_number < self.max_seq:
                    self.cycles += 1 << 16
                self.max_seq = sequence_number
        transit = arrival_units - timestamp
        if self._transit is not None:
            difference = abs(transit - self._transit)
            if difference < 1 << 30:
                self.jitter_q4 += difference - ((self.jitter_q4 + 8) >> 4)
        self._transit = transit

    @property
    def expected(self) -> int:
        """Packets expected from the first sequence number to the highest."""
        if self.base_seq is None:
            return 0
        return self.cycles + self.max_seq - self.base_seq + 1

    def report(self, ssrc: int, lsr: int, dlsr: int) -> RtcpReceiverInfo:
        """A report block since the previous one (fraction lost) and overall (cumulative lost)."""
        expected = self.expected
        expected_interval = expected - self._expected_prior
        received_interval = self.received - self._received_prior
        self._expected_prior, self._received_prior = expected, self.received
        lost_interval = expected_interval - received_interval
        fraction = (lost_interval << 8) // expected_interval if expected_interval and lost_interval > 0 else 0
        lost = max(-(1 << 23), min(expected - self.received, (1 << 23) - 1))
        return RtcpReceiverInfo(
            ssrc=ssrc,
            fraction_lost=min(fraction, 255),
            packets_lost=lost,
            highest_sequence=(self.cycles + self.max_seq) & 0xFFFFFFFF,
            jitter=self.jitter_q4 >> 4,
            lsr=lsr,
            dlsr=dlsr,
        )


class NackGenerator:
    """Lost sequence numbers of one incoming stream, asked for again (spaced by the round trip)
    until they come or are too old; ``gave_up`` counts packets lost for good since last read."""

    __slots__ = ("highest", "missing", "gave_up")

    def __init__(self) -> None:
        self.highest: int | None = None
        # seq → [first noticed, tries, last asked] (monotonic seconds)
        self.missing: dict[int, list[float]] = {}
        self.gave_up = 0

    def add(self, sequence_number: int) -> None:
        """An original packet arrived (not a retransmission)."""
        if self.highest is None:
            self.highest = sequence_number
            return
        delta = seq_delta(sequence_number, self.highest)
        if delta > 0:
            if delta > NACK_MAX_GAP:
                self.gave_up += len(self.missing)
                self.missing.clear()
            elif delta > 1:
                now = time.monotonic()
                for step in range(1, delta):
                    self.missing[(self.highest + step) & 0xFFFF] = [now, 0, 0.0]
            self.highest = sequence_number
        else:
            self.missing.pop(sequence_number, None)

    def recovered(self, sequence_number: int) -> list[float] | None:
        """A retransmission filled a gap; the gap's entry (first noticed, tries, last asked) if NACKed."""
        return self.missing.pop(sequence_number, None)

    def due(self, rtt_s: float) -> list[int]:
        """Sequence numbers to NACK now: new gaps, and older ones not answered within ~an RTT."""
        now = time.monotonic()
        spacing = max(0.02, 1.5 * rtt_s)
        due = []
        for seq, entry in list(self.missing.items()):
            first, tries, last = entry
            if tries >= NACK_MAX_TRIES or now - first > NACK_MAX_AGE_S:
                del self.missing[seq]
                self.gave_up += 1
            elif tries == 0 or now - last >= spacing:
                entry[1] = tries + 1
                entry[2] = now
                due.append(seq)
        return due


class PublishedTrack:
    """One participant's incoming track: packets in once, out to each down track and the sink."""

    def __init__(
        self,
        info: TrackInfo,
        send_rtcp: Callable[[bytes], bool],
        rtcp_ssrc: int,
        sink: PacketSink | None,
        stats: MediaStats,
        keyframe_min_interval_s: float,
        on_live: Callable[[PublishedTrack], None],
        on_ended: Callable[[PublishedTrack], None],
    ) -> None:
        self.info = info
        # the down tracks forwarded to, and their routes as fan_out takes them (set when one comes or goes)
        self.subscribers: tuple[DownTrack, ...] = ()
        self._routes: tuple[RouteState, ...] = ()
        self.live = False  # a first packet has arrived
        self.ended = False
        self.ssrc: int | None = None  # the publisher's SSRC for this track (from SDP or first packet)
        self.sender_report: SenderReport | None = None
        self.sender_report_ntp = 0  # its 64-bit NTP time, for LSR
        self.sender_report_at = 0.0  # time.monotonic() when it arrived
        self.reception = ReceptionStats()
        self.nacks = NackGenerator()
        self.rtt_s = 0.05  # NACK → retransmission round trip, measured as retransmissions come
        self.cache = PacketCache() if info.kind == "video" else None
        self._video = info.kind == "video"
        self._codec = info.codec
        self._clock_rate = info.clock_rate
        self._send_rtcp = send_rtcp
        self._rtcp_ssrc = rtcp_ssrc
        self._sink = sink
        self._stats = stats
        self._forwarding = True
        self._loop = asyncio.get_event_loop()
        self.keyframes = KeyframeRequestManager(
            self._send_pli, keyframe_min_interval_s, on_sent=self._count_keyframe_request
        )
        self._on_live = on_live
        self._on_ended = on_ended

    @property
    def forwarding(self) -> bool:
        """False while muted or in recess: packets go neither to subscribers nor to the sink."""
        return self._forwarding

    def set_forwarding(self, forwarding: bool) -> None:
        """Mute/recess (False) or resume (True); resuming restarts every down track on a keyframe."""
        if forwarding and not self._forwarding:
            for subscriber in self.subscribers:
                subscriber.restart()
            self.request_keyframe()
        self._forwarding = forwarding

    def subscribe(self, down_track: DownTrack) -> None:
        """Forward to ``down_track`` from now on."""
        if down_track not in self.subscribers:
            self._set_subscribers((*self.subscribers, down_track))

    def unsubscribe(self, down_track: DownTrack) -> None:
        """Stop forwarding to ``down_track``."""
        self._set_subscribers(tuple(track for track in self.subscribers if track is not down_track))

    def request_keyframe(self) -> None:
        """Ask the publisher for a keyframe (rate-limited, repeated until one arrives)."""
        if self._video and not self.ended:
            self.keyframes.request()

    def request_keyframe_threadsafe(self) -> None:
        """:meth:`request_keyframe` from any thread (the recorder's writer)."""
        self._loop.call_soon_threadsafe(self.request_keyframe)

    def receive(
        self,
        data: bytes,
        payload_start: int,
        payload_end: int,
        sequence_number: int,
        timestamp: int,
        marker: bool,
        retransmission: bool,
        arrival_ns: int,
    ) -> None:
        """One RTP packet of the track (``data[payload_start:payload_end]`` is its payload).

        A retransmission's payload is the original's (RTX header removed); ``payload_end`` is
        ``len(data)`` when the packet ends in padding that is forwarded as is.
        """
        if self.ended:
            return  # the connection outlives its tracks by a moment while it closes
        if retransmission:
            entry = self.nacks.recovered(sequence_number)
            if entry is not None and entry[1]:
                sample = time.monotonic() - entry[2]
                if 0 < sample < 2:
                    self.rtt_s = 0.8 * self.rtt_s + 0.2 * sample
        else:
            self.reception.add(sequence_number, timestamp, arrival_ns * self._clock_rate // 1_000_000_000)
            if self._video:
                self.nacks.add(sequence_number)
        if self._video and (self.nacks.missing or self.nacks.gave_up):
            self._send_nacks()
        payload = data[payload_start:payload_end]
        flags = FLAG_MARKER if marker else 0
        if payload_end == len(data) and data[0] & 0x20:
            flags |= FLAG_PADDING
        keyframe = False
        if self._video:
            keyframe = keyframe_start(self._codec, payload)
            if keyframe and self.keyframes.waiting:
                self.keyframes.keyframe_arrived()
            self.cache.put(sequence_number, timestamp, flags, payload)  # type: ignore[union-attr]
        if not self.live:
            self.live = True
            self._notify_sink_started()
            self._on_live(self)
        if not self._forwarding:
            return
        if self._sink is not None:
            self._sink_packet(sequence_number, timestamp, marker, payload, flags)
        if self.subscribers:
            sent = fan_out(
                self._routes, self.subscribers, sequence_number, timestamp, flags, payload, keyframe
            )
            if sent:
                self._stats.packets_out += sent

    def on_sender_report(self, ntp_time: int, rtp_timestamp: int) -> None:
        """The publisher's RTCP sender report for this track."""
        self.sender_report_ntp = ntp_time
        self.sender_report = SenderReport(
            ntp_time=unix_from_ntp(ntp_time), rtp_timestamp=rtp_timestamp, received_at=time.time()
        )
        self.sender_report_at = time.monotonic()
        if self._sink is not None and self.live:
            try:
                self._sink.sender_report(self.info, self.sender_report)
            except Exception:
                logger.exception("packet sink failed in sender_report for %s", self.info.track_id)

    def receiver_report(self) -> RtcpReceiverInfo | None:
        """This track's block of the next receiver report to the publisher."""
        if self.ssrc is None or self.reception.base_seq is None:
            return None
        lsr = dlsr = 0
        if self.sender_report is not None:
            lsr = (self.sender_report_ntp >> 16) & 0xFFFFFFFF
            dlsr = min(int((time.monotonic() - self.sender_report_at) * 65536), 0xFFFFFFFF)
        return self.reception.report(self.ssrc, lsr, dlsr)

    def stop(self) -> None:
        """End the track: down tracks detach, the sink is told."""
        if self.ended:
            return
        self.ended = True
        self.keyframes.close()
        if self.live and self._sink is not None:
            try:
                self._sink.track_ended(self.info)
            except Exception:
                logger.exception("packet sink failed in track_ended for %s", self.info.track_id)
        self._on_ended(self)  # the router takes the track out of every subscription first
        for subscriber in self.subscribers:
            subscriber.detach()

    # --- internals ---------------------------------------------------------------------------

    def _send_pli(self) -> bool:
        if self.ssrc is None:
            return False  # nothing arrived yet; its first frame is a keyframe anyway
        return self._send_rtcp(build_pli(self._rtcp_ssrc, self.ssrc))

    def _set_subscribers(self, down_tracks: tuple[DownTrack, ...]) -> None:
        self.subscribers = down_tracks
        self._routes = tuple(track.route for track in down_tracks)

    def _count_keyframe_request(self) -> None:
        self._stats.keyframe_requests_sent += 1

    def _send_nacks(self) -> None:
        due = self.nacks.due(self.rtt_s)
        if due and self.ssrc is not None:
            self._send_rtcp(build_nack(self._rtcp_ssrc, self.ssrc, due))
            self._stats.nacks_sent += len(due)
        if self.nacks.gave_up:
            # lost for good: every subscriber's decoder is stuck behind the hole until a keyframe
            self.nacks.gave_up = 0
            self.request_keyframe()

    def _notify_sink_started(self) -> None:
        if self._sink is None:
            return
        try:
            self._sink.track_started(self.info, self.request_keyframe_threadsafe)
            if self.sender_report is not None:
                self._sink.sender_report(self.info, self.sender_report)
        except Exception:
            logger.exception("packet sink failed in track_started for %s", self.info.track_id)

    def _sink_packet(
        self, sequence_number: int, timestamp: int, marker: bool, payload: bytes, flags: int
    ) -> None:
        if flags & FLAG_PADDING:
            payload = payload[: -payload[-1]] if payload and payload[-1] <= len(payload) else b""
        if not payload:
            return
        try:
            self._sink.packet(  # type: ignore[union-attr]
                RtpPacket(self.info, sequence_number, timestamp, marker, payload, time.time())
            )
        except Exception:
            logger.exception("packet sink failed for track %s", self.info.track_id)
