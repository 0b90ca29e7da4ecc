"""The load generator's own RTP/RTCP/SDP helpers and the /metrics histogram reading (no media, fast)."""

from __future__ import annotations

import struct

from benchmarks.media import Clip, PacketizedClip
from benchmarks.rtp import (
    KEY_BYTES,
    PACKET_MAX,
    is_rtcp,
    media_sections,
    parse_feedback,
    receiver_report,
    rtp_header,
    rtp_payload_offset,
    sender_report,
    vp8_chunks,
    vp8_descriptor,
    vp8_is_keyframe,
    vp8_payload_start,
)
from benchmarks.scenario import histogram_quantile, parse_histogram


def test_vp8_frames_split_like_aiortc_and_keyframes_are_recognised() -> None:
    frame = bytes([0x10]) + bytes(range(256)) * 12  # P bit clear: a keyframe
    chunks = vp8_chunks(frame)
    assert b"".join(chunks) == frame and all(len(c) + 4 <= PACKET_MAX for c in chunks)
    first, second = vp8_descriptor(True, 300) + chunks[0], vp8_descriptor(False, 300) + chunks[1]
    assert vp8_payload_start(first) == (4, True) and vp8_payload_start(second) == (4, False)
    assert vp8_is_keyframe(first) and not vp8_is_keyframe(second)
    assert not vp8_is_keyframe(vp8_descriptor(True, 5) + b"\x11rest")  # P bit set: inter frame


def test_rtp_header_and_payload_offset_with_an_extension() -> None:
    header = rtp_header(96, True, 65535, 2**32 + 5, 0xDEADBEEF)
    assert header[1] == 0x80 | 96 and struct.unpack("!HII", header[2:]) == (65535, 5, 0xDEADBEEF)
    extended = bytes([0x90]) + header[1:] + b"\xbe\xde\x00\x01" + b"\x10\xff\x00\x00" + b"payload"
    assert extended[rtp_payload_offset(extended) :] == b"payload"


def test_feedback_parsing_finds_pli_fir_and_nack() -> None:
    pli = struct.pack("!BBHII", 0x81, 206, 2, 1, 1111)
    fir = struct.pack("!BBHIIIBBH", 0x84, 206, 4, 1, 0, 2222, 7, 0, 0)
    nack = struct.pack("!BBHIIHH", 0x81, 205, 3, 1, 3333, 100, 0b101)
    feedback = parse_feedback(sender_report(9, 1, 2, 3) + pli + fir + nack)
    assert feedback.keyframe_ssrcs == {1111, 2222}
    assert feedback.nacks == {3333: [100, 101, 103]}
    assert (
        is_rtcp(pli) and is_rtcp(receiver_report(5, [(1, 0, 10)])) and not is_rtcp(rtp_header(96, 0, 1, 1, 1))
    )


def test_media_sections_put_the_primary_ssrc_first() -> None:
    sdp = (
        "v=0\r\ns=-\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=sendonly\r\na=ssrc:11 cname:x\r\n"
        "m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\na=mid:1\r\na=ssrc-group:FID 22 23\r\na=ssrc:23 cname:x\r\n"
        "a=ssrc:22 cname:x\r\n"
    )
    audio, video = media_sections(sdp)
    assert (audio.kind, audio.mid, audio.payload_type, audio.ssrcs, audio.direction) == (
        "audio", "0", 111, [11], "sendonly"
    )  # fmt: skip
    assert (video.kind, video.payload_type, video.ssrcs) == ("video", 96, [22, 23])


def test_a_frame_is_named_by_its_tail() -> None:
    clip = Clip(video=[b"\x10" + b"k" * 50, b"\x11" + b"a" * 30 + b"12345678"], video_intra=[], audio=[b"o"])
    packetized = PacketizedClip.of(clip)
    assert packetized.keys[b"12345678"] == 1 and packetized.keys[b"k" * KEY_BYTES] == 0


def test_transit_histogram_quantiles_from_prometheus_text() -> None:
    text = "\n".join(
        [
            "# TYPE hearing_media_transit_seconds histogram",
            'hearing_media_transit_seconds_bucket{le="0.001"} 40.0',
            'hearing_media_transit_seconds_bucket{le="0.002"} 90.0',
            'hearing_media_transit_seconds_bucket{le="0.02"} 99.0',
            'hearing_media_transit_seconds_bucket{le="+Inf"} 100.0',
            "hearing_media_transit_seconds_count 100.0",
        ]
    )
    buckets = parse_histogram(text, "hearing_media_transit_seconds")
    assert histogram_quantile(buckets, 0.5) == 0.002 and histogram_quantile(buckets, 0.99) == 0.02
    assert parse_histogram('other_bucket{le="1"} 3', "hearing_media_transit_seconds") == {}
    assert histogram_quantile({}, 0.5) is None
