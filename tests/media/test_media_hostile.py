"""Hostile packets on the media plane, with real peers: dropped or rate-limited, counted, harmless to others.

Garbage datagrams on the server's media ports, malformed RTP/RTCP inside valid SRTP, a NACK storm,
a PLI flood, a huge keyframe and a change of resolution mid-hearing.
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
import time
from typing import Any

import av
import pytest
from aiortc.rtp import RTCP_PSFB_PLI, RTCP_RTPFB_NACK, RtcpPsfbPacket, RtcpRtpfbPacket
from media_harness import FPS, Client, PacketSource, Room, encode_vp8, wait_for

from media.bitstream import frame_size

pytestmark = pytest.mark.media


async def two_way(room: Room) -> tuple[Client, Client]:
    a, b = room.client("a", 0), room.client("b", 1)
    for client in (a, b):
        await client.join()
    assert await wait_for(lambda: a.count("b", "video") > 5 and b.count("a", "video") > 5, 10)
    return a, b


async def flows_on(client: Client, publisher: str, seconds: float = 1.5) -> bool:
    """Whether video and audio from ``publisher`` keep arriving at ``client``."""
    video, audio = client.count(publisher, "video"), client.count(publisher, "audio")
    return await wait_for(
        lambda: (
            client.count(publisher, "video") > video + 5 and client.count(publisher, "audio") > audio + 20
        ),
        seconds + 5,
    )


def server_ports(room: Room) -> list[tuple[str, int]]:
    """The host candidates the server gathered for every connection (where its media sockets listen)."""
    ports = []
    for participant in room.router._participants.values():
        for leg in (participant.publish, participant.subscribe):
            if leg is None:
                continue
            ice = leg.pc.getTransceivers()[0].receiver.transport.transport
            ports += [(c.ip, c.port) for c in ice.iceGatherer.getLocalCandidates()]
    return ports


async def send_srtp(pc: object, data: bytes) -> None:
    """Protect with the client's own SRTP session and send (the client is the attacker here)."""
    transport = pc.getTransceivers()[0].sender.transport  # type: ignore[attr-defined]
    await transport._send_rtp(data)


async def test_garbage_datagrams_on_media_ports_are_dropped_and_counted(room: Room) -> None:
    a, b = await two_way(room)
    stats = room.router.media_stats
    ports = server_ports(room)
    assert ports and all(ip == "127.0.0.1" for ip, _ in ports)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    malformed = stats.dropped_malformed
    sent_rtp_like = 0
    try:
        for round_ in range(5):
            for address in ports:
                for first in (0x00, 0x01, 0x16, 0x17, 0x40, 0x80, 0x90, 0xBF, 0xC8, 0xFF):
                    sock.sendto(bytes([first]) + os.urandom(40 + round_ * 200), address)
                    sent_rtp_like += 127 < first < 192
                sock.sendto(b"", address)  # aiortc itself would end the connection on an empty datagram
                sent_rtp_like += 1
            await asyncio.sleep(0.05)
    finally:
        sock.close()
    assert await flows_on(b, "a") and await flows_on(a, "b")
    # the RTP/RTCP range fails SRTP authentication, empty datagrams are dropped; the rest goes to aioice
    assert stats.dropped_malformed - malformed == sent_rtp_like, (stats, sent_rtp_like)
    assert room.hearing.state_of("a") == room.hearing.state_of("b") == "connected"


async def test_malformed_rtp_and_rtcp_inside_valid_srtp_are_dropped_and_counted(room: Room) -> None:
    a, b = await two_way(room)
    stats = room.router.media_stats
    malformed, unknown = stats.dropped_malformed, stats.dropped_unknown
    assert a.publish_pc is not None and a.subscribe_pc is not None
    for seq in range(50):
        # well-formed RTP of a payload type nobody negotiated
        await send_srtp(a.publish_pc, struct.pack("!BBHII", 0x80, 120, seq, seq, 0x1234) + os.urandom(100))
        # RTCP whose length fields lie, on both connections
        await send_srtp(a.publish_pc, struct.pack("!BBHI", 0x80, 200, 40, 0x1234) + os.urandom(20))
        await send_srtp(a.subscribe_pc, struct.pack("!BBHI", 0x81, 205, 1, 0x1234) + os.urandom(3))
    assert await flows_on(b, "a") and await flows_on(a, "b")
    assert stats.dropped_unknown - unknown == 50
    assert stats.dropped_malformed - malformed == 100


async def test_a_nack_storm_is_answered_within_limits_and_others_are_unaffected(room: Room) -> None:
    a, b = await two_way(room)
    stats = room.router.media_stats
    subscriber = room.router._participants["b"].subscribe
    assert subscriber is not None and b.subscribe_pc is not None
    video = next(slot.track for slot in subscriber._slots if slot.track.kind == "video" and slot.track.source)
    answered, out = stats.nacks_answered, stats.packets_out
    started = time.monotonic()
    for _ in range(400):  # every packet of the recent past, over and over
        packet = RtcpRtpfbPacket(fmt=RTCP_RTPFB_NACK, ssrc=1, media_ssrc=video.leg.ssrc)
        packet.lost = sorted((video._last_out_seq - n) & 0xFFFF for n in range(0, 200, 3))  # type: ignore[operator]
        await send_srtp(b.subscribe_pc, bytes(packet))
    elapsed = time.monotonic() - started
    assert await flows_on(b, "a") and await flows_on(a, "b")
    resent = stats.nacks_answered - answered
    assert 0 < resent <= 300 * (elapsed + 1.5), (resent, elapsed)
    # the retransmissions are all the extra traffic there is
    assert stats.packets_out - out < resent + 2000


async def test_a_pli_flood_reaches_the_publisher_rate_limited(room: Room) -> None:
    a, b = await two_way(room)
    assert a.video is not None and b.subscribe_pc is not None
    subscriber = room.router._participants["b"].subscribe
    assert subscriber is not None
    video = next(slot.track for slot in subscriber._slots if slot.track.kind == "video" and slot.track.source)
    before, received = a.video.keyframe_requests, room.router.media_stats.plis_received
    started = time.monotonic()
    for _ in range(300):
        await send_srtp(
            b.subscribe_pc, bytes(RtcpPsfbPacket(fmt=RTCP_PSFB_PLI, ssrc=1, media_ssrc=video.leg.ssrc))
        )
        await asyncio.sleep(0.005)
    await asyncio.sleep(0.6)
    elapsed = time.monotonic() - started
    assert room.router.media_stats.plis_received - received == 300
    requests = a.video.keyframe_requests - before
    # keyframe_min_interval_s is 0.5: at most one request per interval reaches the publisher
    assert 1 <= requests <= elapsed / 0.5 + 2, (requests, elapsed)
    assert await flows_on(b, "a") and await flows_on(a, "b")


def noise_keyframes(width: int, height: int, count: int) -> list[bytes]:
    """Keyframes of coarse noise: ~90 kB each at 640x480 (~75 packets: the test client's aiortc
    jitter buffer holds 128, so bigger frames could never be put together at the receiving end)."""
    frames = []
    for index in range(count):
        frame = av.VideoFrame(width // 8, height // 8, "yuv420p")
        for plane in frame.planes:
            plane.update(os.urandom(plane.buffer_size))
        frame = frame.reformat(width, height)
        frame.pts = index
        frames.append(frame)
    return encode_vp8(frames, gop=1, bit_rate=20_000_000, fps=FPS)


async def test_a_huge_keyframe_and_a_resolution_change_arrive_whole(room: Room) -> None:
    """A publisher switches from its 320x240 clip to 640x480 noise keyframes of ~100 kB each."""
    a, b = await two_way(room)
    assert a.video is not None
    huge = noise_keyframes(640, 480, 4)
    assert min(map(len, huge)) > 60_000
    received = b.count("a", "video")
    source: PacketSource = a.video
    source._packets = [source._packets[0], *huge]  # the clip loops without its first frame
    source._intra = None
    assert await wait_for(lambda: sum(f.data in huge for f in b.frames_from("a", "video")) >= 6, 10)
    arrived = [f for f in b.frames_from("a", "video")[received:] if f.data in huge]
    assert all(f.keyframe for f in arrived)
    recorded = [f for f in room.sink.frames("a", "video") if f.data in huge]
    assert recorded and all((f.width, f.height) == (640, 480) for f in recorded)
    assert frame_size("VP8", recorded[0].data) == (640, 480)
    assert await flows_on(a, "b")


async def test_packets_lost_on_the_way_to_a_subscriber_are_recovered_from_the_cache(room: Room) -> None:
    """Every 20th video packet to B vanishes; B's NACKs bring each one back (as RTX), so nothing freezes."""
    a, b = await two_way(room)
    subscriber = room.router._participants["b"].subscribe
    assert subscriber is not None and a.video is not None
    video = next(slot.track for slot in subscriber._slots if slot.track.kind == "video" and slot.track.source)
    connection = subscriber.egress.tap
    sender = connection.sender
    dropped: list[int] = []

    class Lossy:
        """The connection's sender, losing every 20th original video packet on the way."""

        bytes_sent = packets_sent = 0
        send, send_rtcp, close = sender.send, sender.send_rtcp, sender.close

        def forward(self, first: int, second: int, seq: int, *fields: Any) -> int:
            if second & 0x7F == video.leg.payload_type and seq % 20 == 0 and seq not in dropped:
                dropped.append(seq)
                return 1200  # "sent", and lost on the way
            return sender.forward(first, second, seq, *fields)

    connection.sender = Lossy()
    received = b.count("a", "video")
    stats = room.router.media_stats
    answered = stats.nacks_answered
    await asyncio.sleep(4.0)
    assert len(dropped) >= 3
    assert stats.nacks_answered - answered >= len(dropped) - 1
    frames = b.frames_from("a", "video")[received:]
    # at 15 fps and ~2 packets per frame, 4 s bring ~60 frames: none stuck behind a lost packet
    assert len(frames) >= 45, (len(frames), dropped, stats)
    served = [data for data, _ in a.video.served]
    assert all(f.data in served for f in frames)
