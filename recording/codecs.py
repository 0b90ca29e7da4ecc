"""Codec facts the recorder needs to store encoded frames as they arrived."""

from __future__ import annotations

import struct
from dataclasses import dataclass

# Opus frame length in ms per TOC configuration (RFC 6716, section 3.1).
_OPUS_FRAME_MS = (
    [10.0, 20.0, 40.0, 60.0] * 3  # SILK NB, MB, WB
    + [10.0, 20.0] * 2  # Hybrid SWB, FB
    + [2.5, 5.0, 10.0, 20.0] * 4  # CELT NB, WB, SWB, FB
)


@dataclass(frozen=True)
class CodecSpec:
    """How one WebRTC codec is stored: libav codec name, container format and file extension."""

    codec_name: str
    container_format: str
    extension: str


_SPECS = {
    "vp8": CodecSpec("vp8", "webm", "webm"),
    "opus": CodecSpec("opus", "webm", "webm"),
    "h264": CodecSpec("h264", "matroska", "mkv"),
}


def codec_spec(codec: str) -> CodecSpec:
    """The storage recipe for a codec named as in :class:`TrackInfo` (``VP8``, ``H264``, ``opus``)."""
    try:
        return _SPECS[codec.lower()]
    except KeyError:
        raise ValueError(f"codec {codec!r} cannot be recorded") from None


def opus_head(channels: int, input_sample_rate: int = 48000) -> bytes:
    """The Opus identification header (RFC 7845) Matroska keeps as CodecPrivate; pre-skip 0."""
    return b"OpusHead" + struct.pack("<BBHIhB", 1, channels, 0, input_sample_rate, 0, 0)


def opus_packet_ms(packet: bytes) -> float | None:
    """Duration of one Opus packet from its TOC byte, or None if it is malformed."""
    if not packet:
        return None
    toc = packet[0]
    code = toc & 0x03
    if code == 0:
        frames = 1
    elif code in (1, 2):
        frames = 2
    elif len(packet) >= 2:
        frames = packet[1] & 0x3F
    else:
        return None
    return _OPUS_FRAME_MS[toc >> 3] * frames


def vp8_keyframe_size(frame: bytes) -> tuple[int, int] | None:
    """Width and height from a VP8 keyframe header (RFC 6386, 9.1), None if not a keyframe."""
    if len(frame) < 10 or frame[0] & 0x01 or frame[3:6] != b"\x9d\x01\x2a":
        return None
    width, height = struct.unpack("<HH", frame[6:10])
    return width & 0x3FFF, height & 0x3FFF
