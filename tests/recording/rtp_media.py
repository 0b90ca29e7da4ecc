"""Encoded test frames cut into RTP packets as a publisher sends them, and networks that spoil them.

Small packetizers written here (RFC 7741 VP8, RFC 6184 H.264) so a test controls every
descriptor field; aiortc's own packetizers are used too, to show the recorder reads them.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from recording_media import FPS, OPUS_MS

from media.contract import RtpPacket, TrackInfo

MAX_PAYLOAD = 1100


def vp8_payloads(
    frame: bytes,
    picture_id: int | None,
    *,
    pid_bits: int = 15,
    non_reference: bool = False,
    tl0picidx: int | None = None,
    tid: int | None = None,
    max_payload: int = MAX_PAYLOAD,
) -> list[bytes]:
    """One VP8 frame as RTP payloads (descriptor + partition bytes), one partition, S on the first."""
    ext = 0
    ext_bytes = b""
    if picture_id is not None:
        ext |= 0x80
        if pid_bits == 15:
            ext_bytes += struct.pack("!H", 0x8000 | (picture_id & 0x7FFF))
        else:
            ext_bytes += bytes([picture_id & 0x7F])
    if tl0picidx is not None:
        ext |= 0x40
        ext_bytes += bytes([tl0picidx & 0xFF])
    if tid is not None:
        ext |= 0x20
        ext_bytes += bytes([(tid & 0x3) << 6])
    payloads = []
    for pos in range(0, len(frame), max_payload):
        first = (0x80 if ext else 0) | (0x20 if non_reference else 0) | (0x10 if pos == 0 else 0)
        descriptor = bytes([first]) + (bytes([ext]) + ext_bytes if ext else b"")
        payloads.append(descriptor + frame[pos : pos + max_payload])
    return payloads


def nal_units(annex_b: bytes) -> list[bytes]:
    """The NAL units of an Annex B stream (3- or 4-byte start codes)."""
    units: list[bytes] = []
    for chunk in annex_b.split(b"\x00\x00\x01"):
        if chunk:
            units.append(chunk[:-1] if chunk.endswith(b"\x00") else chunk)
    return [u for u in units if u]


def annex_b(units: Iterable[bytes]) -> bytes:
    """NAL units with 4-byte start codes (the form the recorder writes H.264 in)."""
    return b"".join(b"\x00\x00\x00\x01" + u for u in units)


def h264_payloads(frame: bytes, max_payload: int = MAX_PAYLOAD) -> list[bytes]:
    """One H.264 access unit as RTP payloads: small NAL units aggregated in STAP-A, big ones as FU-A."""
    payloads: list[bytes] = []
    pending: list[bytes] = []

    def flush() -> None:
        if len(pending) == 1:
            payloads.append(pending[0])  # a single NAL unit packet
        elif pending:
            nri = max(u[0] & 0x60 for u in pending)
            payloads.append(bytes([nri | 24]) + b"".join(struct.pack("!H", len(u)) + u for u in pending))
        pending.clear()

    for unit in nal_units(frame):
        if len(unit) > max_payload:
            flush()
            header, body = unit[0], unit[1:]
            chunk = max_payload - 2
            for pos in range(0, len(body), chunk):
                fu = header & 0x1F
                if pos == 0:
                    fu |= 0x80
                if pos + chunk >= len(body):
                    fu |= 0x40
                payloads.append(bytes([(header & 0xE0) | 28, fu]) + body[pos : pos + chunk])
        else:
            if sum(len(u) + 2 for u in pending) + len(unit) + 3 > max_payload:
                flush()
            pending.append(unit)
    flush()
    return payloads


@dataclass(frozen=True)
class Sent:
    """One packet as sent, with the frame it belongs to."""

    packet: RtpPacket
    frame: int  # index of the frame (or Opus packet) it carries


def packetize(
    track: TrackInfo,
    frames: list[bytes],
    payloader: Callable[[int, bytes], list[bytes]],
    start: float,
    *,
    interval: float,
    first_seq: int = 0,
    first_ts: int = 0,
) -> list[Sent]:
    """Every frame's packets, sent at ``start + i * interval``, sequence numbers and timestamps wrapping."""
    step = round(track.clock_rate * interval)
    out: list[Sent] = []
    seq = first_seq
    for index, data in enumerate(frames):
        payloads = payloader(index, data)
        for n, payload in enumerate(payloads):
            packet = RtpPacket(
                track=track,
                sequence_number=seq & 0xFFFF,
                timestamp=(first_ts + index * step) & 0xFFFFFFFF,
                marker=n == len(payloads) - 1,
                payload=payload,
                arrival=start + index * interval + n * 0.0002,
            )
            out.append(Sent(packet, index))
            seq += 1
    return out


def vp8_packets(
    track: TrackInfo, frames: list[bytes], start: float, max_payload: int = MAX_PAYLOAD, **kwargs: int
) -> list[Sent]:
    """A VP8 clip's packets at 30 fps with 15-bit picture ids."""
    return packetize(
        track,
        frames,
        lambda i, d: vp8_payloads(d, i, max_payload=max_payload),
        start,
        interval=1 / FPS,
        **kwargs,
    )


def opus_packets(track: TrackInfo, frames: list[bytes], start: float, **kwargs: int) -> list[Sent]:
    """An Opus clip's packets, one per 20 ms."""
    return packetize(track, frames, lambda i, d: [d], start, interval=OPUS_MS / 1000, **kwargs)


def by_arrival(*streams: list[Sent]) -> list[Sent]:
    """All packets in arrival order."""
    return sorted((s for stream in streams for s in stream), key=lambda s: s.packet.arrival)


def jitter(sent: list[Sent], rng: random.Random, max_delay: float) -> list[Sent]:
    """Each packet delayed by up to ``max_delay`` s: they arrive reordered within that window."""
    delayed = [
        replace(s, packet=replace(s.packet, arrival=s.packet.arrival + rng.uniform(0, max_delay)))
        for s in sent
    ]
    return sorted(delayed, key=lambda s: s.packet.arrival)


def duplicate(sent: list[Sent], rng: random.Random, share: float, delay: float) -> list[Sent]:
    """A share of the packets arrives a second time ``delay`` s later (a retransmission)."""
    copies = [
        replace(s, packet=replace(s.packet, arrival=s.packet.arrival + delay))
        for s in sent
        if rng.random() < share
    ]
    return sorted(sent + copies, key=lambda s: s.packet.arrival)
