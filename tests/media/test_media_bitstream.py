"""Keyframes and their sizes are read from real VP8 and H.264 bitstreams."""

from __future__ import annotations

import fractions

import av
from media_harness import encode_vp8

from media.bitstream import frame_size, is_keyframe


def grey_frames(width: int, height: int, count: int) -> list[av.VideoFrame]:
    frames = []
    for index in range(count):
        frame = av.VideoFrame(width, height, "yuv420p")
        for plane in frame.planes:
            plane.update(bytes([(index * 9 + 60) % 256]) * plane.buffer_size)
        frame.pts = index
        frames.append(frame)
    return frames


def encode_h264(width: int, height: int, count: int) -> list[bytes]:
    encoder = av.CodecContext.create("libx264", "w")
    encoder.width, encoder.height = width, height
    encoder.pix_fmt = "yuv420p"
    encoder.time_base = fractions.Fraction(1, 30)
    encoder.gop_size = 5
    encoder.profile = "baseline"
    encoder.options = {"tune": "zerolatency", "preset": "ultrafast"}
    packets = [bytes(p) for frame in grey_frames(width, height, count) for p in encoder.encode(frame)]
    return packets + [bytes(p) for p in encoder.encode(None)]


def test_vp8_keyframes_and_sizes() -> None:
    for width, height in ((320, 240), (322, 178)):
        packets = encode_vp8(grey_frames(width, height, 4), gop=1000, bit_rate=200_000, fps=15)
        assert [is_keyframe("VP8", p) for p in packets] == [True, False, False, False]
        assert frame_size("VP8", packets[0]) == (width, height)
        assert frame_size("VP8", packets[1]) is None


def test_h264_keyframes_and_sizes_from_the_sequence_parameter_set() -> None:
    packets = encode_h264(640, 360, 7)  # 360 is not a multiple of 16: the SPS crops
    assert [is_keyframe("H264", p) for p in packets] == [True, False, False, False, False, True, False]
    assert frame_size("H264", packets[0]) == (640, 360)
    assert frame_size("H264", packets[1]) is None


def test_every_opus_packet_is_a_keyframe() -> None:
    assert is_keyframe("opus", b"\x78\x01\x02")


def test_garbage_is_neither_a_keyframe_nor_sized() -> None:
    for data in (
        b"",
        b"\x00",
        b"\x00\x00\x01",
        b"\x00\x00\x01\x67",
        b"\xff" * 40,
        b"\x00\x00\x00\x01\x67\x42",
    ):
        for codec in ("VP8", "H264"):
            frame_size(codec, data)  # must not raise
    assert not is_keyframe("VP8", b"\x00\x00\x00")
    assert frame_size("H264", b"\x00\x00\x00\x01\x67\x42") is None
