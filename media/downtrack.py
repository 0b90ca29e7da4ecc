"""One subscriber's copy of one published track (LiveKit's DownTrack): headers rewritten, SRTP per leg.

Only what must change is rewritten: SSRC and payload type (the subscribe leg's), sequence
number (contiguous: an offset re-taken whenever packets were left out — before the start,
during mute/recess/keyframe gating, or on a change of publisher — so the subscriber never
sees a gap it would NACK forever) and timestamp (re-based on a change of publisher so RTP
time runs on smoothly).  Header extensions: the leg's own ``mid`` and ``abs-send-time``.
Video starts (and restarts) on a keyframe.  NACKs are answered from the published track's
packet cache (as RTX when negotiated), PLI/FIR go to its keyframe request manager, and
sender reports are translated from the publisher's.  Congestion control can hold a video down
track back (:meth:`DownTrack.hold`): it then sends padding-only packets that continue the
sequence, so the subscriber keeps reporting loss and round trip, and resumes on a keyframe.
Each forwarded packet is written, protected and sent in one call of the subscribe connection's
sender (:mod:`media.sender`: in C when built).  The rewrite state lives on the down track's route
(:mod:`media.fanout`), so that in the steady state the published track's :func:`~media.fanout.fan_out`
forwards without calling :meth:`DownTrack.forward`, which does the same in Python.
"""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from .contract import TrackKind
from .fanout import Route, RouteState
from .published_track import FLAG_MARKER, FLAG_PADDING, PublishedTrack
from .rtcp import build_sr, ntp_from_unix, ntp_middle
from .rtp import build_extensions, seq_delta
from .sender import PacketSender, rtp_packet
from .stats import MediaStats


class PacketOut(Protocol):
    """Where a down track's packets go: its subscribe connection's current sender
    (:class:`~media.transport_tap.TransportTap`), looked up at each packet."""

    sender: PacketSender


_SEQ = struct.Struct("!H")
T = TypeVar("T")
RETRANSMISSIONS_PER_S = 300  # per down track: a NACK storm cannot make the server flood a leg
RESEND_SPACING_S = 0.05  # the same packet is not resent more often
EPOCH_SETTLED = 1000  # packets into an epoch after which nothing from before it can still arrive or be NACKed
PADDING = b"\x00\x00\x00\x04"  # a padding-only payload (RFC 3550 5.1: the last byte counts the padding)


class _OnRoute(Generic[T]):
    """A down track's attribute kept on its route, where the C fan-out reads and writes it too."""

    def __set_name__(self, owner: type, name: str) -> None:
        self._field = name.lstrip("_")

    def __get__(self, track: DownTrack, owner: type | None = None) -> T:
        value: T = getattr(track._route, self._field)
        return value

    def __set__(self, track: DownTrack, value: T) -> None:
        setattr(track._route, self._field, value)


class _OptionalOnRoute(_OnRoute["int | None"]):
    """A sequence number kept on the route, where -1 stands for None."""

    def __get__(self, track: DownTrack, owner: type | None = None) -> int | None:
        value: int = getattr(track._route, self._field)
        return None if value < 0 else value

    def __set__(self, track: DownTrack, value: int | None) -> None:
        setattr(track._route, self._field, -1 if value is None else value)


@dataclass
class LegParameters:
    """What the subscribe leg negotiated for one transceiver (filled in after each answer)."""

    ssrc: int
    rtx_ssrc: int
    payload_type: int | None = None
    rtx_payload_type: int | None = None
    mid: str | None = None
    mid_id: int = 0  # header extension ids, 0 if not negotiated
    abs_send_time_id: int = 0


class DownTrack:
    """Sends one published track to one subscriber, through one transceiver slot of its leg.

    One per slot for the slot's whole life; :meth:`attach` points it at another publisher.
    """

    # on the route (media.fanout), not in the instance
    _seq_offset = _OnRoute[int]()
    _ts_offset = _OnRoute[int]()
    _epoch_start = _OptionalOnRoute()  # first source seq of the current epoch (until settled)
    _epoch_out_start = _OptionalOnRoute()  # its rewritten sequence number
    _last_out_seq = _OptionalOnRoute()  # highest sequence number sent
    _last_out_ts = _OnRoute[int]()
    _last_sent_at = _OnRoute[float]()
    _first_byte = _OnRoute[int]()
    _extension = _OnRoute[bytes]()  # the header extension block (abs-send-time's value filled in per packet)
    _abs_send_time_at = _OnRoute[int]()  # offset of abs-send-time's 3 bytes in it
    packets_sent = _OnRoute[int]()
    octets_sent = _OnRoute[int]()

    def __init__(self, kind: TrackKind, leg: LegParameters, out: PacketOut, stats: MediaStats) -> None:
        self.kind = kind
        self.leg = leg
        self.source: PublishedTrack | None = None
        self._out = out
        self._route: RouteState = Route(out)
        self._stats = stats
        self._video = kind == "video"
        self._ready = False
        self._held = False  # held back by congestion control
        self._waiting_start = True  # the next packet (a keyframe for video) opens a new epoch
        self._rebase = True  # the next epoch comes from a new source: re-take the timestamp offset
        self._rtx_seq = 0
        # retransmission limits
        self._resent: dict[int, float] = {}
        self._window_start = 0.0
        self._window_count = 0
        # LSR (middle NTP bits of each sender report sent) → time.monotonic() sent, for RTT
        self._sr_sent: dict[int, float] = {}
        self.configure(leg)

    @property
    def route(self) -> RouteState:
        """This down track's rewrite state, as the fan-out takes it."""
        return self._route

    @property
    def ready(self) -> bool:
        """Whether the subscriber has negotiated this slot for its current source."""
        return self._ready

    @property
    def held(self) -> bool:
        """Whether congestion control holds this track back from the subscriber."""
        return self._held

    def hold(self, held: bool) -> None:
        """Hold the track back from a congested subscriber, or resume it from the next keyframe."""
        if held == self._held:
            return
        self._held = held
        if held:
            self._waiting_start = True
            self._epoch_out_start = None  # NACKs of padding sequence numbers map to nothing
            self._sync_route()
        else:
            self.restart()

    def padding(self) -> bool:
        """While held: send one padding-only packet continuing the sequence; whether one was sent."""
        if not self._held or not self._ready or self._last_out_seq is None:
            return False
        out_seq = (self._last_out_seq + 1) & 0xFFFF
        leg = self.leg
        data = self._packet(FLAG_PADDING, out_seq, self._last_out_ts, leg.ssrc, leg.payload_type, PADDING)
        self._last_out_seq = out_seq
        if self._out.sender.send(data) >= 0:
            self._stats.packets_out += 1
            self.packets_sent += 1
            return True
        return False

    def configure(self, leg: LegParameters) -> None:
        """Take the leg's negotiated parameters (payload types, extension ids, mid)."""
        self.leg = leg
        self._route.ssrc = leg.ssrc
        self._route.payload_type = leg.payload_type or 0
        elements: list[tuple[int, bytes]] = []
        if leg.mid_id and leg.mid:
            elements.append((leg.mid_id, leg.mid.encode()))
        self._abs_send_time_at = -1
        if leg.abs_send_time_id:
            elements.append((leg.abs_send_time_id, b"\x00\x00\x00"))
        extension = build_extensions(elements)
        if leg.abs_send_time_id:
            # position of the 3 value bytes inside the block (the last element before padding)
            self._abs_send_time_at = 4 + sum(1 + len(value) for _, value in elements[:-1]) + 1
        self._extension = extension
        self._first_byte = 0x90 if extension else 0x80

    def attach(self, source: PublishedTrack) -> None:
        """Forward ``source`` from its next keyframe (a new publisher: RTP time re-based)."""
        self.detach()
        self.source = source
        source.subscribe(self)
        self._rebase = True
        self.restart()

    def detach(self) -> None:
        """Stop forwarding the current source."""
        if self.source is not None:
            self.source.unsubscribe(self)
            self.source = None
        self._ready = False
        self._sync_route()

    def set_ready(self, ready: bool) -> None:
        """The slot is (or is no longer) negotiated and connected for the current source."""
        if ready and not self._ready:
            self._ready = True
            self.restart()
        elif not ready:
            self._ready = False
            self._sync_route()

    def restart(self) -> None:
        """Leave out packets until the next keyframe (any packet for audio), asking for one."""
        self._waiting_start = True
        self._sync_route()
        if self._video and self.source is not None and self._ready and not self._held:
            self.source.request_keyframe()

    def keyframe_requested(self) -> None:
        """The subscriber sent a PLI or FIR."""
        self._stats.plis_received += 1
        if self.source is not None:
            self.source.request_keyframe()

    def forward(self, seq: int, timestamp: int, flags: int, payload: bytes, keyframe: bool) -> None:
        """One packet of the source: rewrite and send it, or leave it out (what ``fan_out`` does in C for a
        steady down track whose connection has the C sender)."""
        if not self._ready or self._held:
            return
        if self._waiting_start:
            if self._video and not keyframe:
                self.source.request_keyframe()  # type: ignore[union-attr]  # repeated until one comes
                return
            self._open_epoch(seq, timestamp)
        elif self._epoch_start is not None:
            since_start = (seq - self._epoch_start) & 0xFFFF  # seq_delta, written out: once per packet
            if since_start >= 0x8000:
                return  # belongs before the epoch: the subscriber never had what it refers to
            if since_start > EPOCH_SETTLED:
                self._epoch_start = None  # far past the start: a late packet is just late
        out_seq = (seq + self._seq_offset) & 0xFFFF
        out_ts = (timestamp + self._ts_offset) & 0xFFFFFFFF
        leg = self.leg
        payload_type = leg.payload_type or 0
        if (
            self._out.sender.forward(
                (self._first_byte | 0x20) if flags & FLAG_PADDING else self._first_byte,
                (0x80 | payload_type) if flags & FLAG_MARKER else payload_type,
                out_seq,
                out_ts,
                leg.ssrc,
                self._extension,
                self._abs_send_time_at,
                payload,
            )
            >= 0
        ):
            self._stats.packets_out += 1
            self.packets_sent += 1
            self.octets_sent += len(payload)
        last = self._last_out_seq
        if last is None or 0 < ((out_seq - last) & 0xFFFF) < 0x8000:  # seq_newer, written out
            epoch_out_start = self._epoch_out_start
            if (
                epoch_out_start is not None
                and EPOCH_SETTLED < ((out_seq - epoch_out_start) & 0xFFFF) < 0x8000
            ):
                # a whole cache's worth into the epoch: every cached packet is from it
                self._epoch_out_start = (out_seq - EPOCH_SETTLED) & 0xFFFF
            self._last_out_seq = out_seq
            self._last_out_ts = out_ts
            self._last_sent_at = time.monotonic()

    def nack(self, lost: list[int]) -> None:
        """The subscriber lost these (rewritten) sequence numbers: resend what the cache holds."""
        source = self.source
        cache = source.cache if source is not None else None
        now = time.monotonic()
        if now - self._window_start >= 1.0:
            self._window_start, self._window_count = now, 0
            if len(self._resent) > 2048:
                self._resent.clear()
        for out_seq in lost:
            entry = None
            if cache is not None and self._last_out_seq is not None and self._epoch_out_start is not None:
                back = seq_delta(self._last_out_seq, out_seq)
                # only this epoch's packets map back through the current offset
                if 0 <= back < EPOCH_SETTLED and seq_delta(out_seq, self._epoch_out_start) >= 0:
                    entry = cache.get((out_seq - self._seq_offset) & 0xFFFF)
            if entry is None:
                self._stats.nacks_missed += 1
                continue
            if now - self._resent.get(out_seq, -1.0) < RESEND_SPACING_S:
                continue
            if self._window_count >= RETRANSMISSIONS_PER_S:
                self._stats.nacks_missed += 1
                continue
            self._resent[out_seq] = now
            self._window_count += 1
            _, timestamp, flags, payload = entry
            out_ts = (timestamp + self._ts_offset) & 0xFFFFFFFF
            leg = self.leg
            if leg.rtx_payload_type is not None:
                if flags & FLAG_PADDING:
                    payload = payload[: -payload[-1]]
                    flags &= ~FLAG_PADDING
                self._rtx_seq = (self._rtx_seq + 1) & 0xFFFF
                data = self._packet(
                    flags,
                    self._rtx_seq,
                    out_ts,
                    leg.rtx_ssrc,
                    leg.rtx_payload_type,
                    _SEQ.pack(out_seq) + payload,
                )
            else:
                data = self._packet(flags, out_seq, out_ts, leg.ssrc, leg.payload_type, payload)
            if self._out.sender.send(data) >= 0:
                self._stats.nacks_answered += 1
                self._stats.packets_out += 1

    def sender_report(self) -> bytes | None:
        """A sender report translated from the publisher's latest one, or None if there is none yet."""
        source = self.source
        if (
            source is None
            or source.sender_report is None
            or self._last_out_seq is None
            or (self._waiting_start and not self._held)
        ):
            return None
        report = source.sender_report
        elapsed = time.time() - report.received_at
        # the publisher's (NTP, RTP) pair moved forward together, then into this leg's RTP time
        ntp = ntp_from_unix(report.ntp_time + elapsed)
        rtp = report.rtp_timestamp + round(elapsed * source.info.clock_rate) + self._ts_offset
        self._sr_sent[ntp_middle(ntp)] = time.monotonic()
        if len(self._sr_sent) > 8:
            del self._sr_sent[next(iter(self._sr_sent))]
        return build_sr(self.leg.ssrc, ntp, rtp, self.packets_sent, self.octets_sent)

    def round_trip(self, lsr: int, dlsr: int) -> float | None:
        """Round-trip time (s) from a receiver report block's LSR and DLSR, if LSR is one of ours."""
        sent = self._sr_sent.get(lsr)
        if not lsr or sent is None:
            return None
        rtt = time.monotonic() - sent - dlsr / 65536
        return rtt if rtt >= 0 else 0.0

    # --- internals ---------------------------------------------------------------------------

    def _sync_route(self) -> None:
        """Tell the fan-out whether it may forward this down track's packets itself."""
        self._route.steady = self._ready and not self._held and not self._waiting_start

    def _open_epoch(self, seq: int, timestamp: int) -> None:
        self._waiting_start = False
        self._epoch_start = seq
        if self._last_out_seq is None:
            self._seq_offset = 0
        else:
            self._seq_offset = (self._last_out_seq + 1 - seq) & 0xFFFF
        self._epoch_out_start = (seq + self._seq_offset) & 0xFFFF
        if self._rebase:
            self._rebase = False
            if self._last_out_seq is None:
                self._ts_offset = 0
            else:
                clock = self.source.info.clock_rate  # type: ignore[union-attr]
                elapsed = max(1, round((time.monotonic() - self._last_sent_at) * clock))
                self._ts_offset = (self._last_out_ts + elapsed - timestamp) & 0xFFFFFFFF
        self._resent.clear()
        self._sync_route()

    def _packet(
        self, flags: int, seq: int, timestamp: int, ssrc: int, payload_type: int | None, payload: bytes
    ) -> bytes:
        first = self._first_byte | (0x20 if flags & FLAG_PADDING else 0)
        second = (0x80 if flags & FLAG_MARKER else 0) | (payload_type or 0)
        return rtp_packet(
            first, second, seq, timestamp, ssrc, self._extension, self._abs_send_time_at, payload
        )
