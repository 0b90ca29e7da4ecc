"""Just enough RTP, RTCP, VP8 packetization and SDP for the cheap synthetic participants.

The load generator's own small copies (no import from the server): an RTP header is packed with
``struct``, a VP8 frame is split the way aiortc 1.16 splits it (4-byte payload descriptor with a
15-bit picture id, at most 1300 bytes of payload), and RTCP is parsed only as far as PLI/FIR and
NACK.  A forwarded video frame is named by its last :data:`KEY_BYTES` bytes, which an SFU never
rewrites (it may rewrite SSRC, payload type, sequence number, timestamp, header extensions and the
VP8 picture id, not the payload).
"""

from __future__ import annotations

import re
import struct
import time
from dataclasses import dataclass, field

PACKET_MAX = 1300  # aiortc's VP8 payload size limit, descriptor included
VP8_DESCRIPTOR_BYTES = 4
KEY_BYTES = 8
NTP_EPOCH_OFFSET = 2208988800

RTCP_SR, RTCP_RR, RTCP_RTPFB, RTCP_PSFB = 200, 201, 205, 206
RTP_HEADER = struct.Struct("!BBHII")  # version byte, marker|PT, sequence, timestamp, SSRC


def is_rtcp(data: bytes) -> bool:
    """RTCP (RFC 5761 demultiplexing: packet type 192–223 in the second byte)."""
    return len(data) >= 2 and 192 <= data[1] <= 223


def rtp_header(payload_type: int, marker: bool, sequence: int, timestamp: int, ssrc: int) -> bytes:
    """A 12-byte RTP header without CSRCs or extensions."""
    return RTP_HEADER.pack(
        0x80, (0x80 if marker else 0) | payload_type, sequence & 0xFFFF, timestamp & 0xFFFFFFFF, ssrc
    )


def rtp_payload_offset(data: bytes) -> int:
    """Where the payload of an RTP packet starts (after CSRCs and a header extension)."""
    offset = 12 + 4 * (data[0] & 0x0F)
    if data[0] & 0x10 and len(data) >= offset + 4:
        (words,) = struct.unpack_from("!H", data, offset + 2)
        offset += 4 + 4 * words
    return offset


def vp8_chunks(frame: bytes) -> list[bytes]:
    """A VP8 frame split into packet payloads without their descriptor (as aiortc splits it)."""
    size = PACKET_MAX - VP8_DESCRIPTOR_BYTES
    return [frame[pos : pos + size] for pos in range(0, len(frame), size)] or [b""]


def vp8_descriptor(first: bool, picture_id: int) -> bytes:
    """A VP8 payload descriptor: X bit, S bit on a frame's first packet, 15-bit picture id."""
    return bytes((0x90 if first else 0x80, 0x80, 0x80 | ((picture_id >> 8) & 0x7F), picture_id & 0xFF))


def vp8_payload_start(payload: bytes) -> tuple[int, bool]:
    """(offset of the VP8 data after the descriptor, whether a frame starts here)."""
    first = payload[0]
    offset = 1
    if first & 0x80 and len(payload) > 1:
        ext = payload[1]
        offset = 2
        if ext & 0x80:
            offset += 2 if len(payload) > 2 and payload[2] & 0x80 else 1
        if ext & 0x40:
            offset += 1
        if ext & 0x30:
            offset += 1
    return offset, bool(first & 0x10) and (first & 0x0F) == 0


def vp8_is_keyframe(payload: bytes) -> bool:
    """Whether this packet starts a VP8 keyframe (S bit, partition 0, P bit clear)."""
    offset, start = vp8_payload_start(payload)
    return start and len(payload) > offset and not payload[offset] & 0x01


def ntp_now() -> int:
    """The wall clock as a 64-bit NTP timestamp."""
    now = time.time() + NTP_EPOCH_OFFSET
    seconds = int(now)
    return (seconds << 32) | int((now - seconds) * (1 << 32))


def sender_report(ssrc: int, rtp_timestamp: int, packets: int, octets: int) -> bytes:
    """An RTCP SR without report blocks, mapping ``rtp_timestamp`` to now."""
    ntp = ntp_now()
    return struct.pack(
        "!BBHIIIIII",
        0x80,
        RTCP_SR,
        6,
        ssrc,
        ntp >> 32,
        ntp & 0xFFFFFFFF,
        rtp_timestamp & 0xFFFFFFFF,
        packets & 0xFFFFFFFF,
        octets & 0xFFFFFFFF,
    )


def receiver_report(ssrc: int, blocks: list[tuple[int, int, int]]) -> bytes:
    """An RTCP RR with one report block per (source SSRC, cumulative lost, extended highest seq)."""
    blocks = blocks[:31]
    body = b"".join(
        struct.pack("!IIIIII", source, max(0, min(lost, 0x7FFFFF)), highest & 0xFFFFFFFF, 0, 0, 0)
        for source, lost, highest in blocks
    )
    return struct.pack("!BBHI", 0x80 | len(blocks), RTCP_RR, 1 + 6 * len(blocks), ssrc) + body


@dataclass
class Feedback:
    """What a publisher must act on in a compound RTCP packet."""

    keyframe_ssrcs: set[int] = field(default_factory=set)  # PLI or FIR for these media SSRCs
    nacks: dict[int, list[int]] = field(default_factory=dict)  # media SSRC → lost sequence numbers


def parse_feedback(data: bytes) -> Feedback:
    """PLI, FIR and generic NACKs of a (decrypted) compound RTCP packet; everything else is skipped."""
    feedback = Feedback()
    pos = 0
    while pos + 4 <= len(data):
        first, packet_type, words = struct.unpack_from("!BBH", data, pos)
        end = pos + 4 * (words + 1)
        if end > len(data):
            break
        fmt = first & 0x1F
        if packet_type == RTCP_PSFB and end - pos >= 12:
            (media,) = struct.unpack_from("!I", data, pos + 8)
            if fmt == 1:  # PLI
                feedback.keyframe_ssrcs.add(media)
            elif fmt == 4:  # FIR: FCI entries of (SSRC, seq, reserved)
                for fci in range(pos + 12, end - 7, 8):
                    feedback.keyframe_ssrcs.add(struct.unpack_from("!I", data, fci)[0])
        elif packet_type == RTCP_RTPFB and fmt == 1 and end - pos >= 16:
            (media,) = struct.unpack_from("!I", data, pos + 8)
            lost = feedback.nacks.setdefault(media, [])
            for fci in range(pos + 12, end - 3, 4):
                pid, blp = struct.unpack_from("!HH", data, fci)
                lost.append(pid)
                lost.extend((pid + bit + 1) & 0xFFFF for bit in range(16) if blp >> bit & 1)
        pos = end
    return feedback


@dataclass
class MediaSection:
    """One m-line of an SDP: its kind, mid, negotiated payload type and the SSRCs it declares."""

    kind: str
    mid: str
    payload_type: int
    ssrcs: list[int]
    direction: str


_SSRC = re.compile(r"^a=ssrc:(\d+)")
_GROUP = re.compile(r"^a=ssrc-group:FID (\d+)")


def media_sections(sdp: str) -> list[MediaSection]:
    """The m-lines of an SDP in order (primary SSRC first, RTX SSRCs after it)."""
    sections: list[MediaSection] = []
    for block in re.split(r"\r?\n(?=m=)", sdp)[1:]:
        lines = block.splitlines()
        parts = lines[0][2:].split()
        kind = parts[0]
        payload_type = int(parts[3]) if len(parts) > 3 and parts[3].isdigit() else -1
        mid = ""
        direction = "sendrecv"
        ssrcs: list[int] = []
        primary: int | None = None
        for line in lines[1:]:
            if line.startswith("a=mid:"):
                mid = line[6:].strip()
            elif line.strip() in ("a=sendrecv", "a=sendonly", "a=recvonly", "a=inactive"):
                direction = line.strip()[2:]
            elif (group := _GROUP.match(line)) is not None:
                primary = int(group.group(1))
            elif (match := _SSRC.match(line)) is not None and int(match.group(1)) not in ssrcs:
                ssrcs.append(int(match.group(1)))
        if primary is not None and primary in ssrcs:
            ssrcs.remove(primary)
            ssrcs.insert(0, primary)
        sections.append(MediaSection(kind, mid, payload_type, ssrcs, direction))
    return sections
