"""Depacketizers: VP8 and H.264 frames rebuilt bit-exactly from their packets; losses drop what they must."""

from __future__ import annotations

import fractions

import av
import pytest
from recording_media import encode_vp8
from rtp_media import annex_b, h264_payloads, nal_units, vp8_payloads

from media.contract import RtpPacket, TrackInfo
from recording.depacketizer import AssembledFrame, Depacketizer, depacketizer_for

VP8 = TrackInfo("p/video/1", "p", "video", "VP8", 90000)
H264 = TrackInfo("p/video/1", "p", "video", "H264", 90000)


def packets(track: TrackInfo, payloads_per_frame: list[list[bytes]], first_seq: int = 0) -> list[RtpPacket]:
    out = []
    seq = first_seq
    for index, payloads in enumerate(payloads_per_frame):
        for n, payload in enumerate(payloads):
            out.append(
                RtpPacket(track, seq & 0xFFFF, index * 3000, n == len(payloads) - 1, payload, index / 30)
            )
            seq += 1
    return out


def feed(depacketizer: Depacketizer, items: list[RtpPacket | int]) -> list[AssembledFrame]:
    """Push packets; an int stands for that many lost packets."""
    frames: list[AssembledFrame] = []
    for item in items:
        if isinstance(item, int):
            depacketizer.lost(item)
        else:
            frames += depacketizer.push(item)
    return frames


@pytest.fixture(scope="module")
def vp8_clip() -> list[tuple[bytes, bool]]:
    return encode_vp8((200, 60, 60), 640, 480, 20, gop=10)


@pytest.mark.parametrize(
    "descriptor",
    [
        {"picture_id": None},
        {"picture_id": 1, "pid_bits": 7},
        {"picture_id": 1, "pid_bits": 15},
        {"picture_id": 1, "tl0picidx": 5, "tid": 0},
    ],
    ids=["no-extension", "7-bit-picture-id", "15-bit-picture-id", "tl0picidx-tid"],
)
def test_vp8_frames_come_back_bit_exact(vp8_clip: list[tuple[bytes, bool]], descriptor: dict) -> None:
    options = dict(descriptor)
    start = options.pop("picture_id")
    payloads = [
        vp8_payloads(data, None if start is None else start + i, max_payload=16, **options)
        for i, (data, _) in enumerate(vp8_clip)
    ]
    assert max(len(p) for p in payloads) > 3  # keyframes span several packets
    frames = feed(depacketizer_for("VP8"), list(packets(VP8, payloads, first_seq=65530)))
    assert [f.data for f in frames] == [d for d, _ in vp8_clip]
    assert [f.keyframe for f in frames] == [k for _, k in vp8_clip]
    assert [f.size for f in frames if f.keyframe] == [(640, 480), (640, 480)]
    assert [f.timestamp for f in frames] == [i * 3000 for i in range(len(vp8_clip))]


def test_aiortc_vp8_packets_are_read(vp8_clip: list[tuple[bytes, bool]]) -> None:
    from aiortc.codecs.vpx import Vp8Encoder

    encoder = Vp8Encoder()
    payloads = []
    for i, (data, _) in enumerate(vp8_clip):
        packet = av.Packet(data)
        packet.pts, packet.time_base = i, fractions.Fraction(1, 30)
        payloads.append(encoder.pack(packet)[0])
    frames = feed(depacketizer_for("VP8"), list(packets(VP8, payloads)))
    assert [f.data for f in frames] == [d for d, _ in vp8_clip]


def test_vp8_loss_inside_a_frame_drops_it_and_damages_the_stream(vp8_clip: list[tuple[bytes, bool]]) -> None:
    payloads = [vp8_payloads(d, i, max_payload=16) for i, (d, _) in enumerate(vp8_clip)]
    sent = packets(VP8, payloads)
    frame3 = [p for p in sent if p.timestamp == 3 * 3000]
    assert len(frame3) >= 2
    lost = sent.index(frame3[0])  # the frame's first packet: the rest has no start
    depacketizer = depacketizer_for("VP8")
    before = feed(depacketizer, sent[:lost])
    assert not depacketizer.damaged and len(before) == 3
    after = feed(depacketizer, [1, *sent[lost + 1 :]])
    assert depacketizer.damaged and depacketizer.stats.frames_dropped == 1
    assert [f.timestamp for f in after] == [i * 3000 for i in range(4, len(vp8_clip))]


def test_vp8_lost_padding_between_frames_is_not_damage(vp8_clip: list[tuple[bytes, bool]]) -> None:
    payloads = [vp8_payloads(d, i) for i, (d, _) in enumerate(vp8_clip[:4])]
    sent = packets(VP8, payloads)
    depacketizer = depacketizer_for("VP8")
    frames = feed(depacketizer, [*sent[:2], 3, *sent[2:]])  # picture ids 0, 1, 2, 3: nothing was lost
    assert len(frames) == 4 and not depacketizer.damaged


def test_vp8_a_whole_lost_frame_is_damage_but_a_lost_non_reference_frame_is_not(
    vp8_clip: list[tuple[bytes, bool]],
) -> None:
    payloads = [vp8_payloads(d, i, max_payload=5000) for i, (d, _) in enumerate(vp8_clip[:4])]
    sent = packets(VP8, payloads)
    depacketizer = depacketizer_for("VP8")
    frames = feed(depacketizer, [sent[0], sent[1], 1, sent[3]])  # picture id 2 never came
    assert len(frames) == 3 and depacketizer.damaged

    non_reference = [
        vp8_payloads(d, i, non_reference=i == 2, max_payload=16) for i, (d, _) in enumerate(vp8_clip[:4])
    ]
    sent = packets(VP8, non_reference)
    third = [n for n, p in enumerate(sent) if p.timestamp == 6000]
    assert len(third) >= 2
    depacketizer = depacketizer_for("VP8")
    frames = feed(depacketizer, [*sent[: third[1]], 1, *sent[third[1] + 1 :]])
    assert [f.timestamp for f in frames] == [0, 3000, 9000]
    assert not depacketizer.damaged and depacketizer.stats.frames_dropped == 1


def test_malformed_vp8_and_h264_payloads_are_dropped_without_an_exception() -> None:
    for codec, junk in (
        ("VP8", [b"\x90", b"\x80\x80"]),
        ("H264", [b"\x1c", b"\x18\x00\x09\x65", b"\x1f\x00"]),
    ):
        track = VP8 if codec == "VP8" else H264
        depacketizer = depacketizer_for(codec)
        sent = [RtpPacket(track, n, 0, True, payload, 0.0) for n, payload in enumerate(junk)]
        assert feed(depacketizer, list(sent)) == []
        assert depacketizer.stats.malformed == len(junk) and depacketizer.damaged


@pytest.fixture(scope="module")
def h264_clip() -> list[bytes]:
    encoder = av.CodecContext.create("libx264", "w")
    encoder.width, encoder.height, encoder.pix_fmt = 640, 480, "yuv420p"
    encoder.time_base = fractions.Fraction(1, 30)
    encoder.gop_size = 10
    encoder.options = {"preset": "ultrafast", "tune": "zerolatency", "profile": "baseline", "bframes": "0"}
    out = []
    for i in range(20):
        frame = av.VideoFrame(640, 480, "yuv420p")
        for plane, value in zip(frame.planes, (41, 240, 110), strict=True):
            plane.update(bytes([(value + i) % 256]) * plane.buffer_size)
        frame.pts = i
        out += [bytes(p) for p in encoder.encode(frame)]
    return out + [bytes(p) for p in encoder.encode(None)]


def test_h264_single_stap_a_and_fu_a_come_back_as_annex_b(h264_clip: list[bytes]) -> None:
    payloads = [h264_payloads(frame, max_payload=600) for frame in h264_clip]
    types = {p[0] & 0x1F for frame in payloads for p in frame}
    assert {24, 28} <= types and types & set(range(1, 24))  # every packet form is exercised
    depacketizer = depacketizer_for("H264")
    frames = feed(depacketizer, list(packets(H264, payloads)))
    assert [f.data for f in frames] == [annex_b(nal_units(frame)) for frame in h264_clip]
    keyframes = [i for i, f in enumerate(frames) if f.keyframe]
    assert keyframes == [0, 10] and {f.size for f in frames if f.keyframe} == {(640, 480)}


def test_aiortc_h264_packets_are_read(h264_clip: list[bytes]) -> None:
    from aiortc.codecs.h264 import H264Encoder

    encoder = H264Encoder()
    payloads = []
    for i, data in enumerate(h264_clip):
        packet = av.Packet(data)
        packet.pts, packet.time_base = i, fractions.Fraction(1, 30)
        payloads.append(encoder.pack(packet)[0])
    frames = feed(depacketizer_for("H264"), list(packets(H264, payloads)))
    assert [nal_units(f.data) for f in frames] == [nal_units(frame) for frame in h264_clip]


def test_h264_lost_fragment_drops_the_frame(h264_clip: list[bytes]) -> None:
    payloads = [h264_payloads(frame, max_payload=600) for frame in h264_clip]
    sent = packets(H264, payloads)
    frame1 = [n for n, p in enumerate(sent) if p.timestamp == 3000]
    assert [sent[n].payload[0] & 0x1F for n in frame1] == [28, 28, 28, 28]  # two slices, two fragments each
    lost = frame1[1]  # the end of the first slice: the second slice still arrives whole
    depacketizer = depacketizer_for("H264")
    frames = feed(depacketizer, [*sent[:lost], 1, *sent[lost + 1 :]])
    assert depacketizer.damaged and depacketizer.stats.frames_dropped == 1
    assert depacketizer.stats.malformed == 0
    assert [f.timestamp for f in frames] == [i * 3000 for i in range(20) if i != 1]


def test_opus_packets_are_frames_and_loss_is_a_gap() -> None:
    opus = TrackInfo("p/audio/1", "p", "audio", "opus", 48000)
    depacketizer = depacketizer_for("opus")
    sent = [RtpPacket(opus, n, n * 960, False, bytes([0x78, n]), n * 0.02) for n in range(5)]
    frames = feed(depacketizer, [sent[0], sent[1], 1, sent[3], sent[4]])
    assert [f.data for f in frames] == [bytes([0x78, n]) for n in (0, 1, 3, 4)]
    assert not depacketizer.damaged
    with pytest.raises(ValueError, match="VP9"):
        depacketizer_for("VP9")
