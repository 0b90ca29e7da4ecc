"""A subscriber's slot starts on keyframes, skips ahead when it falls behind and keeps RTP time smooth."""

from __future__ import annotations

import asyncio

from media.contract import EncodedFrame, TrackInfo
from media.forwarding import ForwardedTrack, KeyframeRequests

VIDEO = TrackInfo(track_id="p/video/1", participant_id="p", kind="video", codec="VP8", clock_rate=90000)


class Publisher:
    """Stands in for a PublishedTrack: counts keyframe requests."""

    def __init__(self) -> None:
        self.subscribers: set[ForwardedTrack] = set()
        self.keyframe_requests = 0

    def request_keyframe(self) -> None:
        self.keyframe_requests += 1


def frame(rtp: int, keyframe: bool = False) -> EncodedFrame:
    return EncodedFrame(
        track=VIDEO, data=rtp.to_bytes(8, "big"), rtp_timestamp=rtp, wallclock=0.0, keyframe=keyframe
    )


async def drain(track: ForwardedTrack) -> list[tuple[bytes, int]]:
    out = []
    while not track._queue.empty():
        packet = await track.recv()
        out.append((bytes(packet), packet.pts))
    return out


async def test_slot_forwards_from_a_keyframe_once_ready() -> None:
    publisher = Publisher()
    track = ForwardedTrack("video", capacity=10)
    track.attach(publisher)  # type: ignore[arg-type]
    track.push(frame(1000, keyframe=True))
    assert await drain(track) == [], "nothing before the subscriber negotiated the slot"
    track.set_ready(True)
    assert publisher.keyframe_requests == 1
    track.push(frame(4000))
    track.push(frame(7000, keyframe=True))
    track.push(frame(10000))
    assert [pts for _, pts in await drain(track)] == [7000, 10000]


async def test_full_queue_is_flushed_and_a_keyframe_requested() -> None:
    publisher = Publisher()
    track = ForwardedTrack("video", capacity=3)
    track.attach(publisher)  # type: ignore[arg-type]
    track.set_ready(True)
    track.push(frame(0, keyframe=True))
    for rtp in (3000, 6000, 9000):
        track.push(frame(rtp))
    assert publisher.keyframe_requests == 2
    assert await drain(track) == []
    track.push(frame(12000))  # a delta frame after the flush is useless
    track.push(frame(15000, keyframe=True))
    assert [pts for _, pts in await drain(track)] == [15000]


async def test_new_source_continues_the_slots_rtp_time() -> None:
    first, second = Publisher(), Publisher()
    track = ForwardedTrack("video", capacity=10)
    track.attach(first)  # type: ignore[arg-type]
    track.set_ready(True)
    track.push(frame(50_000, keyframe=True))
    track.push(frame(53_000))
    assert [pts for _, pts in await drain(track)] == [50_000, 53_000]
    track.attach(second)  # type: ignore[arg-type]
    assert first.subscribers == set() and second.subscribers == {track}
    track.set_ready(True)
    await asyncio.sleep(0.1)
    track.push(frame(9_000_000, keyframe=True))
    track.push(frame(9_003_000))
    pts = [pts for _, pts in await drain(track)]
    assert 53_000 + 8_000 < pts[0] < 53_000 + 20_000, "about 0.1 s later in the slot's own time"
    assert pts[1] - pts[0] == 3000


async def test_keyframe_requests_are_rate_limited_but_never_lost() -> None:
    sent: list[float] = []
    loop = asyncio.get_running_loop()

    def send() -> bool:
        sent.append(loop.time())
        return True

    requests = KeyframeRequests(send, min_interval_s=0.2)
    for _ in range(5):
        requests.request()
    assert len(sent) == 1
    await asyncio.sleep(0.3)
    assert len(sent) == 2 and sent[1] - sent[0] >= 0.19
    requests.close()
