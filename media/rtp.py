"""RTP on the forwarding path: the header parsed once, a subscriber's header built, keyframes spotted.

Only what forwarding needs (RFC 3550 section 5.1, one-byte header extensions RFC 8285,
VP8 payload descriptor RFC 7741, H.264 packetization RFC 6184); payloads stay untouched.
"""

from __future__ import annotations

import struct

RTP_VERSION_BITS = 0x80
_HEADER = struct.Struct("!BBHII")
_ONE_BYTE_PROFILE = 0xBEDE
_TWO_BYTE_PROFILE_MASK = 0xFFF0
_TWO_BYTE_PROFILE = 0x1000


def is_rtp_or_rtcp(first_byte: int) -> bool:
    """RFC 7983 demultiplexing: 128–191 is RTP or RTCP (everything else is STUN, DTLS, TURN)."""
    return 127 < first_byte < 192


def is_rtcp(data: bytes) -> bool:
    """RTCP packet types 192–223 sit where RTP has marker + payload type (RFC 5761 section 4)."""
    return len(data) >= 2 and 192 <= data[1] <= 223


class RtpHeader:
    """The fields of one RTP packet's fixed header and where its payload lies."""

    __slots__ = (
        "marker",
        "payload_type",
        "sequence_number",
        "timestamp",
        "ssrc",
        "payload_start",
        "padding",
        "extension_profile",
        "extension_start",
        "extension_end",
    )

    def __init__(
        self,
        marker: bool,
        payload_type: int,
        sequence_number: int,
        timestamp: int,
        ssrc: int,
        payload_start: int,
        padding: int,
        extension_profile: int,
        extension_start: int,
        extension_end: int,
    ) -> None:
        self.marker = marker
        self.payload_type = payload_type
        self.sequence_number = sequence_number
        self.timestamp = timestamp
        self.ssrc = ssrc
        self.payload_start = payload_start
        self.padding = padding  # bytes of padding at the end (P bit), 0 without
        self.extension_profile = extension_profile  # 0 without an extension
        self.extension_start = extension_start
        self.extension_end = extension_end


def parse_rtp(data: bytes) -> RtpHeader | None:
    """Parse the header of an (unprotected) RTP packet; None if it is malformed."""
    size = len(data)
    if size < 12:
        return None
    first, second, sequence_number, timestamp, ssrc = _HEADER.unpack_from(data)
    if first & 0xC0 != RTP_VERSION_BITS:
        return None
    offset = 12 + 4 * (first & 0x0F)
    profile = extension_start = extension_end = 0
    if first & 0x10:
        if offset + 4 > size:
            return None
        profile = (data[offset] << 8) | data[offset + 1]
        length = ((data[offset + 2] << 8) | data[offset + 3]) * 4
        extension_start = offset + 4
        extension_end = offset = extension_start + length
    padding = 0
    if first & 0x20:
        padding = data[-1]
        if padding == 0:
            return None
    if offset + padding > size:
        return None
    return RtpHeader(
        bool(second & 0x80),
        second & 0x7F,
        sequence_number,
        timestamp,
        ssrc,
        offset,
        padding,
        profile,
        extension_start,
        extension_end,
    )


def header_extension(data: bytes, header: RtpHeader, extension_id: int) -> bytes | None:
    """The value of one header extension element (one- or two-byte form), or None."""
    if not extension_id or not header.extension_profile:
        return None
    position, end = header.extension_start, header.extension_end
    if header.extension_profile == _ONE_BYTE_PROFILE:
        while position < end:
            byte = data[position]
            if byte == 0:  # padding between elements
                position += 1
                continue
            element_id, length = byte >> 4, (byte & 0x0F) + 1
            if element_id == 15:
                return None
            if element_id == extension_id:
                return data[position + 1 : position + 1 + length]
            position += 1 + length
    elif header.extension_profile & _TWO_BYTE_PROFILE_MASK == _TWO_BYTE_PROFILE:
        while position + 1 < end:
            element_id = data[position]
            if element_id == 0:
                position += 1
                continue
            length = data[position + 1]
            if element_id == extension_id:
                return data[position + 2 : position + 2 + length]
            position += 2 + length
    return None


def build_extensions(elements: list[tuple[int, bytes]]) -> bytes:
    """A one-byte-form header extension block (with its 4-byte prefix) from (id, value) pairs."""
    if not elements:
        return b""
    body = b"".join(bytes([(element_id << 4) | (len(value) - 1)]) + value for element_id, value in elements)
    body += b"\x00" * (-len(body) % 4)
    return struct.pack("!HH", _ONE_BYTE_PROFILE, len(body) // 4) + body


def pack_header(
    marker_payload_type: int, sequence_number: int, timestamp: int, ssrc: int, extension: bool
) -> bytes:
    """The 12-byte fixed header (no CSRCs); padding is never added by the server."""
    return _HEADER.pack(0x90 if extension else 0x80, marker_payload_type, sequence_number, timestamp, ssrc)


# --- keyframes -----------------------------------------------------------------------------------

_H264_IDR = 5
_H264_SPS = 7
_H264_STAP_A = 24
_H264_FU_A = 28


def vp8_keyframe_start(payload: bytes) -> bool:
    """Whether a VP8 RTP payload begins a keyframe (RFC 7741 section 4.2 and 4.3)."""
    size = len(payload)
    if size < 2:
        return False
    first = payload[0]
    if not first & 0x10 or first & 0x07:  # S=1 and partition index 0: the frame's first packet
        return False
    offset = 1
    if first & 0x80:  # X: extended control bits
        control = payload[1]
        offset = 2
        if control & 0x80:  # I: picture id, 7 or 15 bits
            if offset >= size:
                return False
            offset += 2 if payload[offset] & 0x80 else 1
        if control & 0x40:  # L: TL0PICIDX
            offset += 1
        if control & 0x30:  # T or K: TID/Y/KEYIDX
            offset += 1
    return offset < size and payload[offset] & 0x01 == 0  # P bit: 0 is a key frame


def h264_keyframe_start(payload: bytes) -> bool:
    """Whether an H.264 RTP payload carries an IDR or SPS NAL unit start (RFC 6184 section 5)."""
    if not payload:
        return False
    nal_type = payload[0] & 0x1F
    if nal_type in (_H264_IDR, _H264_SPS):
        return True
    if nal_type == _H264_STAP_A:
        offset, size = 1, len(payload)
        while offset + 2 < size:
            length = (payload[offset] << 8) | payload[offset + 1]
            if payload[offset + 2] & 0x1F in (_H264_IDR, _H264_SPS):
                return True
            offset += 2 + length
        return False
    if nal_type == _H264_FU_A:
        return len(payload) > 1 and bool(payload[1] & 0x80) and payload[1] & 0x1F in (_H264_IDR, _H264_SPS)
    return False


def keyframe_start(codec: str, payload: bytes) -> bool:
    """Whether a video packet begins a keyframe; audio never needs one."""
    if codec == "VP8":
        return vp8_keyframe_start(payload)
    if codec == "H264":
        return h264_keyframe_start(payload)
    return False


def seq_newer(a: int, b: int) -> bool:
    """Whether 16-bit sequence number ``a`` comes after ``b`` (RFC 1982 arithmetic)."""
    return a != b and ((a - b) & 0xFFFF) < 0x8000


def seq_delta(a: int, b: int) -> int:
    """``a - b`` for 16-bit sequence numbers, in -32768..32767."""
    delta = (a - b) & 0xFFFF
    return delta - 0x10000 if delta >= 0x8000 else delta
