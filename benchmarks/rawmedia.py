"""Cheap media for synthetic participants: aiortc sets up ICE and DTLS, then RTP goes by hand.

A :class:`RawPath` hooks the aioice sockets of one ``RTCPeerConnection``: datagrams whose first
byte is 128–191 (SRTP/SRTCP) no longer reach aiortc; STUN (consent) and DTLS still do.  Once
DTLS is up it unprotects what arrives and protects what it sends with the SRTP sessions aiortc
derived (``RTCDtlsTransport._rx_srtp`` / ``_tx_srtp``), and sends on the nominated pair
(aioice ``Connection._nominated``).  These are private details of aiortc 1.16 / aioice 0.13 and
are read only here.  aiortc itself sends no RTP: the published tracks are :class:`SilentTrack`\\ s
whose ``recv`` never returns, and the senders' own RTCP is muted.

:class:`OutStream` sends the pre-packetized clip, :class:`Pacer` paces every stream of a process
from one task, :class:`Inbox` counts what a subscriber receives per SSRC.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pylibsrtp
from aiortc import RTCPeerConnection
from aiortc.mediastreams import MediaStreamTrack

from benchmarks.media import AUDIO_CLOCK, AUDIO_FRAME, FPS, VIDEO_CLOCK, PacketizedClip
from benchmarks.rtp import (
    KEY_BYTES,
    RTP_HEADER,
    is_rtcp,
    media_sections,
    parse_feedback,
    receiver_report,
    rtp_payload_offset,
    sender_report,
    vp8_descriptor,
    vp8_is_keyframe,
)

RECEIVE_BUFFER_BYTES = 4 << 20
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)
NACK_CACHE = 512
RTCP_INTERVAL_S = 1.0
INTEGRITY_SAMPLE = 64  # a subscriber authenticates at least every 64th packet of each SSRC


class SilentTrack(MediaStreamTrack):
    """A track that aiortc negotiates but never gets a frame from (its ``recv`` never returns)."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    async def recv(self) -> Any:
        await asyncio.get_running_loop().create_future()


def mute_sender_rtcp(sender: Any) -> None:
    """Stop aiortc's own sender reports (and its BYE) for a sender whose RTP we send by hand."""

    async def _nothing(packets: Any) -> None:
        return None

    sender._send_rtcp = _nothing


class RawPath:
    """The SRTP traffic of one peer connection, taken over from aiortc (see the module docstring)."""

    def __init__(
        self,
        pc: RTCPeerConnection,
        on_rtp: Callable[[bytes, float], None],
        on_rtcp: Callable[[bytes], None],
        lazy: bool = False,
    ) -> None:
        self.pc = pc
        self.on_rtp = on_rtp
        self.on_rtcp = on_rtcp
        self.lazy = lazy  # hand RTP over still protected; the receiver calls unprotect() when it must
        self.dtls: Any = None
        self.early = 0  # SRTP datagrams before DTLS finished (dropped)
        self.srtp_errors = 0
        self.sent = 0
        self._transport: Any = None  # the nominated pair's datagram transport
        self._addr: Any = None
        self._tx: Any = None

    def attach(self) -> None:
        """Hook the ICE sockets; call after ``setLocalDescription`` (candidates are gathered)."""
        if self.dtls is not None:
            return
        self.dtls = self.pc.getTransceivers()[0].receiver.transport  # one transport (max-bundle)
        connection: Any = getattr(self.dtls.transport, "_connection", None)
        missing = [
            name
            for owner, name in (
                (self.dtls, "_rx_srtp"),
                (self.dtls, "_tx_srtp"),
                (connection, "_nominated"),
                (connection, "_protocols"),
            )
            if not hasattr(owner, name)
        ]
        if missing:  # written against aiortc 1.16 / aioice 0.13
            names = ", ".join(missing)
            raise RuntimeError(f"aiortc/aioice changed: no {names}; adjust benchmarks/rawmedia.py")
        for protocol in connection._protocols:
            original = protocol.datagram_received

            def hooked(data: bytes, addr: Any, original: Callable[[bytes, Any], None] = original) -> None:
                if 127 < data[0] < 192:
                    self._incoming(data)
                else:
                    original(data, addr)

            protocol.datagram_received = hooked
            sock = protocol.transport.get_extra_info("socket") if protocol.transport else None
            if sock is not None:
                with contextlib.suppress(OSError):  # SO_RCVBUFFORCE needs CAP_NET_ADMIN
                    sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RECEIVE_BUFFER_BYTES)

    @property
    def ready(self) -> bool:
        """DTLS is up and a pair is nominated."""
        return self._ready() is not None

    def _ready(self) -> Callable[[bytes, Any], None] | None:
        if self._transport is None and self.dtls is not None and self.dtls.state == "connected":
            pair = self.dtls.transport._connection._nominated.get(1)
            if pair is not None and self.dtls._tx_srtp is not None:
                self._tx = self.dtls._tx_srtp
                self._addr = pair.remote_addr
                self._transport = pair.protocol.transport
        if self._transport is None or self._transport.is_closing():
            return None  # not up yet, or closing: sending would only make asyncio log each attempt
        sendto: Callable[[bytes, Any], None] = self._transport.sendto
        return sendto

    def _incoming(self, data: bytes) -> None:
        rx = self.dtls._rx_srtp if self.dtls is not None else None
        if rx is None:
            self.early += 1
            return
        try:
            if is_rtcp(data):
                self.on_rtcp(rx.unprotect_rtcp(data))
            elif self.lazy:
                self.on_rtp(data, time.time())
            else:
                self.on_rtp(rx.unprotect(data), time.time())
        except pylibsrtp.Error:
            self.srtp_errors += 1

    def unprotect(self, data: bytes) -> bytes | None:
        """An SRTP packet decrypted and authenticated (None, and counted, when it does not check out)."""
        try:
            return bytes(self.dtls._rx_srtp.unprotect(data))
        except pylibsrtp.Error:
            self.srtp_errors += 1
            return None

    def sender(self) -> tuple[Callable[[bytes], bytes], Callable[[bytes, Any], None], Any] | None:
        """(protect, sendto, address) for sending RTP in a loop; None while DTLS is not up (or closing)."""
        sendto = self._ready()
        return None if sendto is None else (self._tx.protect, sendto, self._addr)

    def send(self, packet: bytes, rtcp: bool = False) -> bool:
        """Protect and send one RTP (or RTCP) packet; False while DTLS is not up yet (or closing)."""
        sendto = self._ready()
        if sendto is None:
            return False
        sendto(self._tx.protect_rtcp(packet) if rtcp else self._tx.protect(packet), self._addr)
        self.sent += 1
        return True


class OutStream:
    """One published track: the clip's packets at real-time pace, keyframes on request, NACKs answered.

    Video notes the wall-clock time each frame's last packet left, by clip position (``sent``),
    so that a receiver that names a frame by its bytes can find when it was sent.
    """

    def __init__(self, kind: str, ssrc: int, payload_type: int, path: RawPath, clip: PacketizedClip) -> None:
        self.kind = kind
        self.ssrc = ssrc
        self.payload_type = payload_type
        self.path = path
        self.clip = clip
        self.interval = 1.0 / FPS if kind == "video" else AUDIO_FRAME / AUDIO_CLOCK
        self.step = VIDEO_CLOCK // FPS if kind == "video" else AUDIO_FRAME
        self.frames = len(clip.video) if kind == "video" else len(clip.audio)
        self.sequence = random.randint(0, 0xFFFF)
        self.timestamp_base = random.randint(0, 0xFFFFFFFF)
        self.picture_id = random.randint(0, 0x7FFF)
        self.index = 0
        self.next_due = 0.0
        self.packets = self.octets = self.retransmitted = 0
        self.keyframe_wanted = False
        self.keyframe_requests = 0
        self.sent: dict[int, list[float]] = {}
        self._cache: list[bytes | None] = [None] * NACK_CACHE  # by sequence number % NACK_CACHE
        self._last_report = 0.0

    def _send(self, payloads: list[bytes], timestamp: int) -> None:
        """Send one frame's payloads as consecutive packets, the marker on the last (the hot path)."""
        protect_send = self.path.sender()
        if protect_send is None:  # DTLS not up yet: the frame is skipped
            self.sequence = (self.sequence + len(payloads)) & 0xFFFF
            return
        protect, sendto, addr = protect_send
        cache = self._cache if self.kind == "video" else None
        pack = RTP_HEADER.pack
        first_byte, payload_type, ssrc = 0x80, self.payload_type, self.ssrc
        sequence = self.sequence
        last = len(payloads) - 1
        for i, payload in enumerate(payloads):
            packet = pack(
                first_byte, payload_type | 0x80 if i == last else payload_type, sequence, timestamp, ssrc
            )
            packet += payload
            sendto(protect(packet), addr)
            self.octets += len(payload)
            if cache is not None:
                cache[sequence % NACK_CACHE] = packet
            sequence = (sequence + 1) & 0xFFFF
        self.packets += len(payloads)
        self.path.sent += len(payloads)
        self.sequence = sequence

    def send_next(self) -> None:
        """Send the next frame (video: all its packets; audio: one Opus packet)."""
        index = self.index
        # the clip loops without its first frame, so later keyframes are requested ones only
        position = 0 if index == 0 else 1 + (index - 1) % (self.frames - 1)
        timestamp = (self.timestamp_base + index * self.step) & 0xFFFFFFFF
        if self.kind == "video":
            frames = self.clip.video
            if self.keyframe_wanted and index:
                self.keyframe_wanted = False
                frames = self.clip.video_intra
            chunks = frames[position]
            first, rest = vp8_descriptor(True, self.picture_id), vp8_descriptor(False, self.picture_id)
            self._send([first + chunks[0], *(rest + chunk for chunk in chunks[1:])], timestamp)
            self.picture_id = (self.picture_id + 1) & 0x7FFF
            self.sent.setdefault(position, []).append(time.time())
        else:
            self._send([self.clip.audio[position]], timestamp)
        self.index += 1

    def report(self, now: float) -> None:
        """An RTCP sender report about once a second (maps RTP time to the wall clock)."""
        if now - self._last_report >= RTCP_INTERVAL_S and self.packets:
            self._last_report = now
            timestamp = self.timestamp_base + (self.index - 1) * self.step
            self.path.send(sender_report(self.ssrc, timestamp, self.packets, self.octets), rtcp=True)

    def retransmit(self, sequences: list[int]) -> None:
        """Send the cached packets again (same SSRC and sequence number)."""
        for sequence in sequences:
            packet = self._cache[sequence % NACK_CACHE]
            if (
                packet is not None
                and int.from_bytes(packet[2:4], "big") == sequence
                and self.path.send(packet)
            ):
                self.retransmitted += 1

    def request_keyframe(self) -> None:
        """Serve the intra-coded version of the next frame."""
        self.keyframe_requests += 1
        self.keyframe_wanted = True

    def sent_between(self, start: float, end: float) -> dict[int, list[float]]:
        """Send times within [start, end], by clip position."""
        return {
            position: kept
            for position, times in self.sent.items()
            if (kept := [t for t in times if start <= t <= end])
        }


def publisher_feedback(streams: list[OutStream]) -> Callable[[bytes], None]:
    """An RTCP handler for a publish connection: PLI/FIR → next keyframe, NACK → retransmit."""
    by_ssrc = {stream.ssrc: stream for stream in streams}

    def handle(data: bytes) -> None:
        feedback = parse_feedback(data)
        for ssrc in feedback.keyframe_ssrcs:
            stream = by_ssrc.get(ssrc)
            if stream is not None and stream.kind == "video":
                stream.request_keyframe()
        for ssrc, sequences in feedback.nacks.items():
            stream = by_ssrc.get(ssrc)
            if stream is not None:
                stream.retransmit(sequences)

    return handle


def publish_streams(offer_sdp: str, answer_sdp: str, path: RawPath, clip: PacketizedClip) -> list[OutStream]:
    """The streams of a publish connection: SSRCs from our offer, payload types from the answer."""
    answer = {section.mid: section for section in media_sections(answer_sdp)}
    streams = []
    for section in media_sections(offer_sdp):
        answered = answer.get(section.mid)
        if answered is None or not section.ssrcs or answered.payload_type < 0:
            continue
        streams.append(OutStream(section.kind, section.ssrcs[0], answered.payload_type, path, clip))
    return streams


class Pacer:
    """Sends every stream of this process on time from one task (one wake-up for all)."""

    def __init__(self) -> None:
        self.streams: list[OutStream] = []
        self.inboxes: list[Inbox] = []
        self._task: asyncio.Task[None] | None = None

    def add(self, stream: OutStream) -> None:
        """Start sending ``stream`` now."""
        stream.next_due = time.monotonic()
        self.streams.append(stream)
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())

    def packets_sent(self) -> int:
        """RTP packets the publishers of this process sent so far (retransmissions included)."""
        return sum(stream.packets + stream.retransmitted for stream in self.streams)

    def add_inbox(self, inbox: Inbox) -> None:
        """Send receiver reports for ``inbox``."""
        self.inboxes.append(inbox)
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        last_rtcp = 0.0
        while True:
            now = time.monotonic()
            due = min((s.next_due for s in self.streams), default=now + 0.1)
            if due > now:
                await asyncio.sleep(due - now)
                continue
            for stream in self.streams:
                if now - stream.next_due > 0.5:  # fell far behind: skip ahead, do not burst
                    stream.next_due = now
                while stream.next_due <= now:
                    stream.send_next()
                    stream.next_due += stream.interval
            if now - last_rtcp >= RTCP_INTERVAL_S / 2:
                last_rtcp = now
                wall = time.time()
                for stream in self.streams:
                    stream.report(wall)
                for inbox in self.inboxes:
                    inbox.report(wall)

    def stop(self) -> None:
        """Stop sending."""
        if self._task is not None:
            self._task.cancel()


@dataclass
class InTrack:
    """What a subscriber received on one SSRC."""

    ssrc: int
    kind: str
    first_seq: int = -1
    highest: int = -1  # extended
    received: int = 0
    first_at: float | None = None
    last_at: float = 0.0
    keyframe_at: float | None = None  # first packet of the first keyframe
    first_keyframe: bool | None = None  # whether the first video frame that began was a keyframe
    frames: list[float] = field(default_factory=list)  # receive time of every frame's last packet


class Inbox:
    """A subscriber's receive side: counts RTP per SSRC, frames, keyframes, and names frames for delay."""

    def __init__(self, path_factory: Callable[[Inbox], RawPath], keys: dict[bytes, int]) -> None:
        self.keys = keys
        self.tracks: dict[int, InTrack] = {}
        self.kinds: dict[int, str] = {}  # payload type → kind
        self.owner: dict[int, tuple[str, str]] = {}  # SSRC → (publisher, kind)
        self.receipts: list[tuple[int, int, float]] = []  # (SSRC, clip position, receive time)
        self.rtcp_ssrc = random.randint(1, 0xFFFFFFFF)
        self.path = path_factory(self)
        self._last_report = 0.0

    def describe(self, offer_sdp: str, publisher_of_mid: dict[str, str]) -> None:
        """Learn SSRC → (publisher, kind) and payload type → kind from an offer the SFU sent."""
        for section in media_sections(offer_sdp):
            if section.payload_type >= 0:
                self.kinds[section.payload_type] = section.kind
            publisher = publisher_of_mid.get(section.mid)
            if publisher is not None:
                for ssrc in section.ssrcs[:1]:
                    self.owner[ssrc] = (publisher, section.kind)

    def on_rtp(self, data: bytes, now: float) -> None:
        """One SRTP packet, still protected (the hot path of the load generator: kept short).

        SSRC, sequence number and marker are in the clear; the payload is decrypted only where it is
        needed — a video frame's last packet (its name for the delay), video until the first
        keyframe — and for every :data:`INTEGRITY_SAMPLE`-th packet, so that a server that sends
        packets that do not authenticate shows in ``srtp_errors``.
        """
        ssrc = int.from_bytes(data[8:12], "big")
        track = self.tracks.get(ssrc)
        if track is None:
            kind = self.owner.get(ssrc, ("?", self.kinds.get(data[1] & 0x7F, "?")))[1]
            track = self.tracks[ssrc] = InTrack(ssrc, kind)
            track.first_at = now
        marker = data[1] & 0x80
        plain: bytes | None = None
        if track.kind == "video" and (marker or track.keyframe_at is None):
            plain = self.path.unprotect(data)
            if plain is None:
                return
        elif not track.received % INTEGRITY_SAMPLE and self.path.unprotect(data) is None:
            return
        sequence = (data[2] << 8) | data[3]
        if track.highest < 0:
            track.first_seq = track.highest = sequence
        else:
            delta = (sequence - track.highest) & 0xFFFF
            if delta < 0x8000:
                track.highest += delta
        track.received += 1
        track.last_at = now
        if plain is not None:
            if track.keyframe_at is None:
                payload = plain[rtp_payload_offset(plain) :]
                if track.first_keyframe is None and payload and payload[0] & 0x10:
                    track.first_keyframe = vp8_is_keyframe(payload)
                if vp8_is_keyframe(payload):
                    track.keyframe_at = now
            if marker:  # a frame's last packet; its tail names the frame (no RTP padding here)
                track.frames.append(now)
                self.receipts.append((ssrc, self.keys.get(plain[-KEY_BYTES:], -1), now))

    def on_rtcp(self, data: bytes) -> None:
        """RTCP from the SFU (sender reports): nothing to do."""

    def report(self, now: float) -> None:
        """Receiver reports for every SSRC heard (about once a second)."""
        if self.tracks and now - self._last_report >= RTCP_INTERVAL_S:
            self._last_report = now
            blocks = [
                (t.ssrc, t.highest - t.first_seq + 1 - t.received, t.highest) for t in self.tracks.values()
            ]
            for start in range(0, len(blocks), 31):
                self.path.send(receiver_report(self.rtcp_ssrc, blocks[start : start + 31]), rtcp=True)

    def key_of(self, ssrc: int) -> tuple[str, str]:
        """(publisher, kind) of an SSRC ('?' when the SFU's offer did not name it)."""
        track = self.tracks.get(ssrc)
        return self.owner.get(ssrc, ("?", track.kind if track else "?"))

    def counters(self) -> dict[str, tuple[int, int, int]]:
        """(expected, received, retransmitted) packets per ``publisher/kind`` so far."""
        snapshot: dict[str, tuple[int, int, int]] = {}
        for ssrc, track in list(self.tracks.items()):
            publisher, kind = self.key_of(ssrc)
            key = f"{publisher}/{kind}"
            expected, received, retransmitted = snapshot.get(key, (0, 0, 0))
            snapshot[key] = (expected + track.highest - track.first_seq + 1, received + track.received, 0)
        return snapshot
