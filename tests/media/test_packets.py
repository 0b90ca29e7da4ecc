"""The packet path's parts on real packetized media: RTP parsing, keyframe spotting, header
rewriting, NACK answers, keyframe requests and receiver-report arithmetic."""

from __future__ import annotations

import asyncio
import fractions
import struct
from typing import Any

import av
from aiortc.codecs.h264 import H264Encoder
from aiortc.codecs.vpx import Vp8Encoder
from media_harness import encode_vp8
from test_media_bitstream import encode_h264, grey_frames

from media.contract import TrackInfo
from media.downtrack import DownTrack, LegParameters
from media.ingress import Ingress
from media.keyframes import KeyframeRequestManager
from media.negotiation import with_start_bitrate
from media.published_track import NackGenerator, PublishedTrack, ReceptionStats
from media.rtcp import RtcpPsfbPacket, RtcpRtpfbPacket, parse_rtcp, remb_bitrate
from media.rtp import build_extensions, header_extension, keyframe_start, pack_header, parse_rtp
from media.sender import rtp_packet
from media.stats import MediaStats

VIDEO = TrackInfo("p/video/1", "p", "video", "VP8", 90000)
AUDIO = TrackInfo("p/audio/1", "p", "audio", "opus", 48000, 2)


def rtp(
    seq: int,
    ts: int,
    payload: bytes,
    pt: int = 96,
    ssrc: int = 1234,
    marker: bool = False,
    extension: bytes = b"",
    padding: int = 0,
) -> bytes:
    first = 0x80 | (0x10 if extension else 0) | (0x20 if padding else 0)
    data = struct.pack("!BBHII", first, (0x80 if marker else 0) | pt, seq, ts, ssrc) + extension + payload
    if padding:
        data += b"\x00" * (padding - 1) + bytes([padding])
    return data


def vp8_packets() -> list[tuple[bool, list[bytes]]]:
    """(keyframe, RTP payloads) per frame, packetized by aiortc's VP8 packetizer."""
    packer = Vp8Encoder()
    frames = encode_vp8(grey_frames(640, 480, 6), gop=3, bit_rate=2_000_000, fps=30)
    out = []
    for index, data in enumerate(frames):
        packet = av.Packet(data)
        packet.pts = index * 3000
        packet.time_base = fractions.Fraction(1, 90000)
        payloads, _ = packer.pack(packet)
        out.append((index % 3 == 0, payloads))
    return out


def test_rtp_header_parse_with_extensions_csrcs_and_padding() -> None:
    extension = build_extensions([(4, b"0"), (2, b"\x01\x02\x03")])
    data = rtp(65535, 0xFFFFFFFF, b"payload", marker=True, extension=extension, padding=4)
    header = parse_rtp(data)
    assert header is not None
    assert (header.marker, header.payload_type, header.sequence_number, header.timestamp, header.ssrc) == (
        True,
        96,
        65535,
        0xFFFFFFFF,
        1234,
    )
    assert data[header.payload_start : len(data) - header.padding] == b"payload"
    assert header_extension(data, header, 4) == b"0"
    assert header_extension(data, header, 2) == b"\x01\x02\x03"
    assert header_extension(data, header, 7) is None
    with_csrc = bytes([0x82]) + data[1:12] + b"\x00" * 8 + b"xyz"
    parsed = parse_rtp(with_csrc)
    assert parsed is not None and with_csrc[parsed.payload_start :] == b"xyz"
    assert pack_header(0x80 | 97, 1, 2, 3, False) == struct.pack("!BBHII", 0x80, 0x80 | 97, 1, 2, 3)


def test_malformed_rtp_is_refused() -> None:
    good = rtp(1, 2, b"abc")
    assert parse_rtp(good) is not None
    for bad in (
        b"",
        good[:11],
        bytes([0x40]) + good[1:],  # version 1
        bytes([0x8F]) + good[1:],  # 15 CSRCs that are not there
        bytes([0x90]) + good[1:],  # an extension that is not there
        bytes([0xA0]) + good[1:-1] + b"\x00",  # padding of zero bytes
        bytes([0xA0]) + good[1:-1] + b"\xff",  # more padding than packet
        rtp(1, 2, b"", extension=struct.pack("!HH", 0xBEDE, 200)),  # extension longer than the packet
    ):
        assert parse_rtp(bad) is None, bad.hex()


def test_vp8_keyframes_are_spotted_on_their_first_packet_only() -> None:
    for keyframe, payloads in vp8_packets():
        assert len(payloads) >= 1
        assert keyframe_start("VP8", payloads[0]) is keyframe
        assert not any(keyframe_start("VP8", p) for p in payloads[1:])
    assert not keyframe_start("VP8", b"") and not keyframe_start("VP8", b"\x90")


def test_h264_keyframes_are_spotted_in_single_nal_stap_a_and_fu_a() -> None:
    packer = H264Encoder()
    frames = encode_h264(640, 480, 10)  # gop 5: keyframes at 0 and 5
    for index, data in enumerate(frames):
        packet = av.Packet(data)
        packet.pts = index * 3000
        packet.time_base = fractions.Fraction(1, 90000)
        payloads, _ = packer.pack(packet)
        assert keyframe_start("H264", payloads[0]) is (index % 5 == 0), index
    assert keyframe_start("H264", bytes([24, 0, 2, 0x67, 0]))  # STAP-A with an SPS
    assert keyframe_start("H264", bytes([28, 0x85]))  # FU-A start of an IDR
    assert not keyframe_start("H264", bytes([28, 0x05]))  # FU-A continuation
    assert not keyframe_start("opus", b"\x00")


async def test_keyframe_requests_are_rate_limited_and_repeated_until_a_keyframe_arrives() -> None:
    sent: list[float] = []
    loop = asyncio.get_running_loop()
    manager = KeyframeRequestManager(lambda: sent.append(loop.time()) or True, 0.1, retry_interval_s=0.2)
    for _ in range(50):  # a PLI flood
        manager.request()
    assert len(sent) == 1
    await asyncio.sleep(0.5)
    assert len(sent) == 3, "repeated every retry interval while nobody got a keyframe"
    manager.keyframe_arrived()
    await asyncio.sleep(0.4)
    assert len(sent) == 3 and not manager.waiting
    manager.request()  # more than min_interval after the last: at once
    assert len(sent) == 4
    manager.keyframe_arrived()
    manager.request()  # inside the interval: sent when it ends, not lost
    assert len(sent) == 4
    await asyncio.sleep(0.15)
    assert len(sent) == 5
    manager.close()
    manager.request()
    await asyncio.sleep(0.3)
    assert len(sent) == 5


class Published:
    """A published video track fed by hand, with what it sends to the publisher kept."""

    def __init__(self, info: TrackInfo = VIDEO) -> None:
        self.rtcp: list[bytes] = []
        self.stats = MediaStats()
        self.track = PublishedTrack(
            info,
            lambda data: self.rtcp.append(data) or True,
            99,
            None,
            self.stats,
            0.0,
            on_live=lambda t: None,
            on_ended=lambda t: None,
        )
        self.track.ssrc = 1234

    def feed(self, seq: int, ts: int, payload: bytes, marker: bool = False, rtx: bool = False) -> None:
        data = rtp(seq, ts, payload, marker=marker)
        self.track.receive(data, 12, len(data), seq, ts, marker, rtx, 0)


class Captured:
    """A subscribe connection that keeps the plain RTP packets its down tracks send (no SRTP, no socket)."""

    def __init__(self, packets: list[bytes]) -> None:
        self.sender = self
        self.packets = packets
        self.bytes_sent = self.packets_sent = 0

    def send(self, packet: bytes) -> int:
        self.packets.append(packet)
        self.packets_sent += 1
        return len(packet)

    def send_rtcp(self, packet: bytes) -> int:
        return len(packet)

    def forward(self, *fields: Any) -> int:
        return self.send(rtp_packet(*fields))

    def close(self) -> None:
        pass


def down_track(stats: MediaStats, rtx: bool = True) -> tuple[DownTrack, list[bytes]]:
    sent: list[bytes] = []
    leg = LegParameters(
        ssrc=5555,
        rtx_ssrc=6666,
        payload_type=97,
        rtx_payload_type=98 if rtx else None,
        mid="1",
        mid_id=4,
        abs_send_time_id=2,
    )
    return DownTrack("video", leg, Captured(sent), stats), sent


KEY = bytes([0x10, 0x00])  # VP8 descriptor S=1 PID=0, payload header P=0: a keyframe's first packet
DELTA_START = bytes([0x10, 0x01])
MIDDLE = bytes([0x00, 0x55])


async def test_down_track_starts_on_a_keyframe_with_its_own_ssrc_pt_and_extensions() -> None:
    published = Published()
    track, sent = down_track(published.stats)
    track.attach(published.track)
    track.set_ready(True)
    published.feed(100, 1000, DELTA_START)  # left out: no keyframe yet, and one is asked for
    assert not sent and any(p.fmt == 1 for p in map(lambda d: parse_rtcp(d)[0], published.rtcp))  # type: ignore[index,union-attr]
    published.feed(101, 4000, KEY)
    published.feed(102, 4000, MIDDLE, marker=True)
    published.feed(103, 7000, DELTA_START, marker=True)
    headers = [parse_rtp(data) for data in sent]
    assert all(h is not None for h in headers)
    assert [(h.sequence_number, h.timestamp, h.ssrc, h.payload_type, h.marker) for h in headers] == [  # type: ignore[union-attr]
        (101, 4000, 5555, 97, False),
        (102, 4000, 5555, 97, True),
        (103, 7000, 5555, 97, True),
    ]
    first = headers[0]
    assert first is not None
    assert header_extension(sent[0], first, 4) == b"1"
    assert (
        header_extension(sent[0], first, 2) is not None
        and len(header_extension(sent[0], first, 2) or b"") == 3
    )
    assert sent[0][first.payload_start :] == KEY


async def test_sequence_numbers_stay_contiguous_across_gating_and_a_new_publisher() -> None:
    published = Published()
    track, sent = down_track(published.stats)
    track.attach(published.track)
    track.set_ready(True)
    published.feed(10, 0, KEY, marker=True)
    published.feed(11, 3000, DELTA_START, marker=True)
    track.restart()  # e.g. mute, recess or a PLI-less resync: packets left out until a keyframe
    published.feed(12, 6000, DELTA_START, marker=True)
    published.feed(13, 9000, DELTA_START, marker=True)
    published.feed(14, 12000, KEY, marker=True)
    # the publisher reconnects: a new track with another sequence and timestamp origin
    other = Published(TrackInfo("p/video/2", "p", "video", "VP8", 90000))
    track.attach(other.track)
    track.set_ready(True)
    other.feed(50000, 777777, KEY, marker=True)
    other.feed(50001, 780777, DELTA_START, marker=True)
    headers = [parse_rtp(data) for data in sent]
    seqs = [h.sequence_number for h in headers]  # type: ignore[union-attr]
    assert seqs == [10, 11, 12, 13, 14], "no gap the subscriber would NACK forever"
    stamps = [h.timestamp for h in headers]  # type: ignore[union-attr]
    assert stamps[:3] == [0, 3000, 12000]  # same source: RTP time runs on with the media
    assert 12000 < stamps[3] < 12000 + 90000 and stamps[4] - stamps[3] == 3000  # re-based, not jumped


async def test_nacks_are_answered_from_the_cache_as_rtx_and_a_storm_is_limited() -> None:
    published = Published()
    track, sent = down_track(published.stats)
    track.attach(published.track)
    track.set_ready(True)
    published.feed(200, 0, KEY)
    for seq in range(201, 260):
        published.feed(seq, 0 if seq < 210 else 3000, MIDDLE + bytes([seq & 0xFF]), marker=seq == 209)
    sent.clear()
    track.nack([205, 206, 5000])
    assert len(sent) == 2
    for data, original in zip(sent, (205, 206), strict=True):
        header = parse_rtp(data)
        assert header is not None and header.ssrc == 6666 and header.payload_type == 98
        payload = data[header.payload_start :]
        assert struct.unpack("!H", payload[:2])[0] == original
        assert payload[2:] == MIDDLE + bytes([original & 0xFF])
        assert header.timestamp == 0
    assert published.stats.nacks_answered == 2 and published.stats.nacks_missed == 1
    track.nack([205])  # asked again at once: not resent within the spacing
    assert len(sent) == 2
    # a storm: far more NACKs than the per-second budget
    for _ in range(20):
        track.nack(list(range(200, 260)))
    assert len(sent) <= 300


async def test_without_rtx_a_nack_resends_on_the_primary_ssrc() -> None:
    published = Published()
    track, sent = down_track(published.stats, rtx=False)
    track.attach(published.track)
    track.set_ready(True)
    published.feed(1, 0, KEY)
    published.feed(2, 0, MIDDLE)
    sent.clear()
    track.nack([2])
    [data] = sent
    header = parse_rtp(data)
    assert header is not None and (header.ssrc, header.sequence_number, header.payload_type) == (5555, 2, 97)


async def test_gaps_from_the_publisher_are_nacked_with_retries_and_reports_count_the_loss() -> None:
    published = Published()
    for seq in (1, 2, 3, 6, 7):
        published.feed(seq, seq * 3000, KEY if seq == 1 else MIDDLE)
    nacks = [p for d in published.rtcp for p in (parse_rtcp(d) or []) if isinstance(p, RtcpRtpfbPacket)]
    assert [n.lost for n in nacks] == [[4, 5]] and nacks[0].media_ssrc == 1234
    published.track.rtt_s = 0.0
    await asyncio.sleep(0.03)
    published.feed(8, 24000, MIDDLE)  # still missing: asked again
    nacks = [p for d in published.rtcp for p in (parse_rtcp(d) or []) if isinstance(p, RtcpRtpfbPacket)]
    assert [n.lost for n in nacks] == [[4, 5], [4, 5]]
    published.feed(4, 12000, MIDDLE, rtx=True)  # recovered by a retransmission
    report = published.track.receiver_report()
    assert report is not None and report.ssrc == 1234 and report.highest_sequence == 8
    assert report.packets_lost == 2 and report.fraction_lost == (2 << 8) // 8  # 4 and 5 came only as RTX


def test_reception_stats_and_nack_generator_across_a_sequence_wrap() -> None:
    stats = ReceptionStats()
    for seq in (65534, 65535, 0, 1):
        stats.add(seq, 0, 0)
    assert stats.expected == 4 and stats.received == 4 and stats.cycles == 1 << 16
    nacks = NackGenerator()
    for seq in (65534, 1):
        nacks.add(seq)
    assert sorted(nacks.missing) == [0, 65535]
    nacks.add(5000)  # a jump far beyond loss: a restarted stream, nothing to ask for
    assert not nacks.missing


async def test_pli_from_a_subscriber_reaches_the_publisher_rate_limited() -> None:
    published = Published()
    published.track.keyframes = KeyframeRequestManager(
        published.track._send_pli, 0.5, on_sent=published.track._count_keyframe_request
    )
    track, _ = down_track(published.stats)
    track.attach(published.track)
    published.rtcp.clear()
    for _ in range(100):
        track.keyframe_requested()
    plis = [p for d in published.rtcp for p in (parse_rtcp(d) or []) if isinstance(p, RtcpPsfbPacket)]
    assert len(plis) == 1 and plis[0].media_ssrc == 1234
    assert published.stats.plis_received == 100 and published.stats.keyframe_requests_sent == 1


async def test_a_long_stream_is_forwarded_whole_across_sequence_wraps_and_nacks_stay_in_the_epoch() -> None:
    published = Published()
    track, sent = down_track(published.stats)
    track.attach(published.track)
    track.set_ready(True)
    published.feed(60000, 0, KEY)
    for step in range(1, 70_000):  # more than a whole 16-bit sequence space, wrapping at 65536
        published.feed((60000 + step) & 0xFFFF, step // 10 * 3000, MIDDLE)
    assert len(sent) == 70_000
    last = parse_rtp(sent[-1])
    assert last is not None and last.sequence_number == (60000 + 69_999) & 0xFFFF
    sent.clear()
    track.nack([(60000 + 69_990) & 0xFFFF, (60000 + 60_000) & 0xFFFF])  # recent: answered; long gone: missed
    assert len(sent) == 1 and published.stats.nacks_missed == 1


async def test_a_packet_lost_for_good_upstream_brings_a_keyframe_request() -> None:
    """Subscribers' decoders wait behind a hole nobody can fill: only a keyframe gets them going again."""
    published = Published()
    published.feed(1, 0, KEY)
    published.feed(3, 3000, MIDDLE)  # 2 is missing: NACKed
    entry = published.track.nacks.missing[2]
    entry[0] -= 2.0  # noticed two seconds ago: too old to ask for again
    published.rtcp.clear()
    published.feed(4, 6000, MIDDLE)
    feedback = [p for d in published.rtcp for p in (parse_rtcp(d) or [])]
    assert [type(p).__name__ for p in feedback] == ["RtcpPsfbPacket"], feedback
    assert not published.track.nacks.missing and published.track.keyframes.waiting
    published.feed(5, 9000, KEY)
    assert not published.track.keyframes.waiting


class _Events:
    def on(self, event: str, handler: object) -> None:
        pass


def test_remb_lets_the_publisher_ramp_up_to_the_cap_and_backs_off_on_congestion() -> None:
    ingress = Ingress(_Events(), MediaStats(), max_video_bitrate_bps=2_000_000)  # type: ignore[arg-type]
    sent: list[bytes] = []
    ingress.tap.send_rtcp = lambda data: sent.append(data) or True  # type: ignore[method-assign]
    for ms in range(0, 1000, 10):
        ingress._estimator.incoming_bitrate.add(1250, ms)  # 1 Mbit/s arriving
    ingress._send_remb(1_080_000, [5, 6], 1000)  # the estimator creeps up: no congestion
    ingress._send_remb(850_000, [5, 6], 1000)  # it dropped below what arrives: congestion
    rembs = [remb_bitrate(p) for d in sent for p in (parse_rtcp(d) or [])]
    assert rembs[0] == (2_000_000, [5, 6])
    assert rembs[1] is not None and abs(rembs[1][0] - 850_000) < 1000 and ingress.remb_bps == 850_000


async def remb_through_a_link(link_bps: float | None) -> tuple[list[int], float]:
    """REMB values an Ingress sends for 10 s of ~1 Mbit/s video (30 fps, 4 packets a frame, with
    abs-send-time) through a link of ``link_bps`` (None: no bottleneck, 20 ms away), and the rate in."""
    published = Published()
    ingress = Ingress(_Events(), MediaStats(), max_video_bitrate_bps=2_000_000)  # type: ignore[arg-type]
    sent: list[bytes] = []
    ingress.tap.send_rtcp = lambda data: sent.append(data) or True  # type: ignore[method-assign]
    ingress.add_track(published.track, [96], None, abs_send_time_id=3)
    payload = MIDDLE + bytes(1100)
    free_at = 0.0  # when the bottleneck has sent what it holds
    seq = 0
    for frame in range(300):
        for index in range(4):
            send_s = frame / 30 + index * 0.001
            seq += 1
            value = int(send_s * (1 << 18)) & 0xFFFFFF
            extension = struct.pack("!HHB", 0xBEDE, 1, (3 << 4) | 2) + value.to_bytes(3, "big")
            data = rtp(seq, frame * 3000, payload, marker=index == 3, extension=extension)
            if link_bps is None:
                arrival = send_s + 0.02
            else:
                free_at = max(free_at, send_s) + len(data) * 8 / link_bps
                arrival = free_at + 0.02
            ingress._on_rtp(data, int(arrival * 1e9))
    rembs = [remb[0] for d in sent for p in (parse_rtcp(d) or []) if (remb := remb_bitrate(p))]
    return rembs, 300 * 4 * len(payload) * 8 / 10


async def test_remb_stays_at_the_cap_on_a_clear_path_and_drops_when_a_queue_builds() -> None:
    """The delay-based estimator, fed once per frame, sees a bottleneck's queue grow."""
    clear, _ = await remb_through_a_link(None)
    assert clear and set(clear) == {2_000_000}, clear
    congested, sent_bps = await remb_through_a_link(600_000)
    assert congested and max(congested[-3:]) < 700_000 < sent_bps, (congested, sent_bps)  # near the link


def test_the_publish_answer_carries_chromes_start_bitrate_hint_on_the_video_codec() -> None:
    vp8 = "v=0\r\na=rtpmap:97 VP8/90000\r\na=rtpmap:98 rtx/90000\r\na=fmtp:98 apt=97\r\n"
    assert with_start_bitrate(vp8, [97], 1_000_000, 2_500_000).split("\r\n")[2] == (
        "a=fmtp:97 x-google-start-bitrate=1000;x-google-max-bitrate=2500"
    )
    h264 = "v=0\r\na=rtpmap:102 H264/90000\r\na=fmtp:102 packetization-mode=1;profile-level-id=42e01f\r\n"
    assert with_start_bitrate(h264, [102], 800_000, 2_000_000).split("\r\n")[2] == (
        "a=fmtp:102 packetization-mode=1;profile-level-id=42e01f;"
        "x-google-start-bitrate=800;x-google-max-bitrate=2000"
    )
    assert with_start_bitrate(vp8, [], 1_000_000, 2_500_000) == vp8
