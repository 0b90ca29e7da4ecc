"""A hearing set to H.264 forwards H.264 (Constrained Baseline, packetization mode 1) only."""

from __future__ import annotations

import fractions

import av
import pytest
from media_harness import (
    COLOURS,
    FPS,
    HEIGHT,
    TONES,
    WIDTH,
    Client,
    Clip,
    Hearing,
    RecordingSink,
    _video_frames,
    encode_opus,
    wait_for,
)

from media.aiortc_adapter import uninstall_host_addresses
from media.contract import MediaSettings
from media.router import Router

pytestmark = pytest.mark.media


def encode_h264(colour_index: int, gop: int) -> list[bytes]:
    encoder = av.CodecContext.create("libx264", "w")
    encoder.width, encoder.height = WIDTH, HEIGHT
    encoder.pix_fmt = "yuv420p"
    encoder.time_base = fractions.Fraction(1, FPS)
    encoder.gop_size = gop
    encoder.profile = "baseline"
    encoder.options = {"tune": "zerolatency", "preset": "ultrafast", "bframes": "0"}
    frames = _video_frames(COLOURS[colour_index], 2 * FPS)
    packets = [bytes(p) for frame in frames for p in encoder.encode(frame)]
    return packets + [bytes(p) for p in encoder.encode(None)]


def nal_units(data: bytes) -> list[bytes]:
    """NAL units without their start codes (the packetizer may change 3-byte codes to 4)."""
    units = []
    for chunk in data.split(b"\x00\x00\x01"):
        if chunk:
            units.append(chunk.rstrip(b"\x00") if chunk.endswith(b"\x00") else chunk)
    return [u for u in units if u]


def h264_colour(keyframe: bytes) -> tuple[int, int, int]:
    decoder = av.CodecContext.create("h264", "r")
    frames = decoder.decode(av.Packet(keyframe)) + decoder.decode(None)
    rgb = frames[0].reformat(format="rgb24")
    row = bytes(rgb.planes[0])[(HEIGHT * 3 // 4) * rgb.planes[0].line_size :][: WIDTH * 3]
    return (sum(row[0::3]) // WIDTH, sum(row[1::3]) // WIDTH, sum(row[2::3]) // WIDTH)


async def test_h264_hearing_forwards_h264_nal_exact() -> None:
    hearing, sink = Hearing(), RecordingSink()
    router = Router(MediaSettings(video_codec="H264"), hearing, sink)
    offers: list[str] = []
    original = hearing.subscriber_offer

    async def record_offer(participant_id: str, sdp: str, tracks: list) -> None:  # type: ignore[type-arg]
        offers.append(sdp)
        await original(participant_id, sdp, tracks)

    hearing.subscriber_offer = record_offer  # type: ignore[method-assign]
    clients = []
    for index, name in enumerate(("judge", "prosecutor")):
        clip = Clip(
            COLOURS[index],
            TONES[index],
            encode_h264(index, 1000),
            encode_h264(index, 1),
            encode_opus(TONES[index], 1.0),
        )
        client = hearing.clients[name] = Client(name, clip, router)
        clients.append(client)
    try:
        for client in clients:
            await client.join()
        assert await wait_for(
            lambda: all(
                c.count(o.participant_id, "video") > 10 for c in clients for o in clients if o is not c
            ),
            8,
        )
        assert offers and all("H264/90000" in sdp and "VP8" not in sdp for sdp in offers)
        for receiver, publisher in ((clients[0], clients[1]), (clients[1], clients[0])):
            assert publisher.video is not None
            received = receiver.frames_from(publisher.participant_id, "video")
            assert received[0].keyframe
            published = [nal_units(d) for d, _ in publisher.video.served]
            start = published.index(nal_units(received[0].data))
            assert [nal_units(f.data) for f in received] == published[start : start + len(received)]
            colour = h264_colour(received[0].data)
            assert all(abs(a - e) <= 30 for a, e in zip(colour, publisher.clip.colour, strict=True)), colour
        keyframes = [f for f in sink.frames("judge", "video") if f.keyframe]
        assert keyframes and keyframes[0].track.codec == "H264"
        assert (keyframes[0].width, keyframes[0].height) == (WIDTH, HEIGHT)
    finally:
        await router.close()
        for client in clients:
            await client.drop()
        uninstall_host_addresses()
