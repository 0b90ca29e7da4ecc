"""Real aiortc peers through ``/ws`` and the real media router: courtroom and party see and hear each other.

Run inside a loopback-only namespace:
    unshare -n sh -c 'ip link set lo up && .venv/bin/pytest tests/signaling/test_signaling_media.py'
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import json
import math
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import av
import numpy as np
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcconfiguration import RTCBundlePolicy
from signaling_harness import Bench, WsPeer

from media.aiortc_adapter import install_host_addresses, uninstall_host_addresses
from media.contract import MediaSettings
from signaling.live import default_media_factory

pytestmark = [pytest.mark.media, pytest.mark.slow]

WIDTH, HEIGHT, FPS = 160, 120, 15
RATE, SAMPLES = 48000, 960


class ColourTrack(MediaStreamTrack):
    """A camera showing one solid colour (the client encodes it, as a browser would)."""

    kind = "video"

    def __init__(self, rgb: tuple[int, int, int]) -> None:
        super().__init__()
        self._image = np.zeros((HEIGHT, WIDTH, 3), dtype=np.uint8)
        self._image[:, :] = rgb
        self._count = 0
        self._start = time.monotonic()

    async def recv(self) -> av.VideoFrame:
        due = self._start + self._count / FPS
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        frame = av.VideoFrame.from_ndarray(self._image, format="rgb24")
        frame.pts, frame.time_base = self._count * (90000 // FPS), fractions.Fraction(1, 90000)
        self._count += 1
        return frame


class ToneTrack(MediaStreamTrack):
    """A microphone playing one sine tone."""

    kind = "audio"

    def __init__(self, hz: float) -> None:
        super().__init__()
        self._hz = hz
        self._count = 0
        self._start = time.monotonic()

    async def recv(self) -> av.AudioFrame:
        due = self._start + self._count * SAMPLES / RATE
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        t = (np.arange(SAMPLES) + self._count * SAMPLES) / RATE
        samples = (10000 * np.sin(2 * math.pi * self._hz * t)).astype(np.int16).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate, frame.pts = RATE, self._count * SAMPLES
        frame.time_base = fractions.Fraction(1, RATE)
        self._count += 1
        return frame


class Browser:
    """Stands in for a participant's browser page: signaling over ``/ws``, publish and subscribe peers."""

    def __init__(self, peer: WsPeer, rgb: tuple[int, int, int], hz: float) -> None:
        self.peer = peer
        self.rgb, self.hz = rgb, hz
        self.publish_pc: RTCPeerConnection | None = None
        self.subscribe_pc: RTCPeerConnection | None = None
        self.mids: dict[str, str] = {}  # mid → publishing participant
        self.video: dict[str, list[tuple[int, int, int]]] = defaultdict(list)
        self.audio: dict[str, list[np.ndarray]] = defaultdict(list)
        self.messages: list[dict[str, Any]] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def publish(self) -> None:
        config = RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
        # a publish opens a new subscribe connection: the offers that follow belong to this one
        self.subscribe_pc = RTCPeerConnection(config)
        self.subscribe_pc.on("track", self._on_track)
        self.publish_pc = RTCPeerConnection(config)
        self.publish_pc.addTransceiver(ColourTrack(self.rgb), direction="sendonly")
        self.publish_pc.addTransceiver(ToneTrack(self.hz), direction="sendonly")
        await self.publish_pc.setLocalDescription(await self.publish_pc.createOffer())
        await self.peer.send("publish_offer", sdp=self.publish_pc.localDescription.sdp)
        self._spawn(self._signal())

    async def _signal(self) -> None:
        with contextlib.suppress(ConnectionError, asyncio.CancelledError):
            while True:
                message = await self.peer._next(3600)
                self.messages.append(message)
                if message["type"] == "publish_answer":
                    assert self.publish_pc is not None
                    answer = RTCSessionDescription(sdp=message["sdp"], type="answer")
                    await self.publish_pc.setRemoteDescription(answer)
                elif message["type"] == "subscribe_offer":
                    assert self.subscribe_pc is not None
                    self.mids.update({t["mid"]: t["participant_id"] for t in message["tracks"]})
                    offer = RTCSessionDescription(sdp=message["sdp"], type="offer")
                    await self.subscribe_pc.setRemoteDescription(offer)
                    await self.subscribe_pc.setLocalDescription(await self.subscribe_pc.createAnswer())
                    await self.peer.send("subscribe_answer", sdp=self.subscribe_pc.localDescription.sdp)

    def _on_track(self, track: MediaStreamTrack) -> None:
        assert self.subscribe_pc is not None
        transceiver = next(t for t in self.subscribe_pc.getTransceivers() if t.receiver.track is track)
        self._spawn(self._read(track, lambda: self.mids.get(transceiver.mid or "", "?")))

    async def _read(self, track: MediaStreamTrack, publisher: Callable[[], str]) -> None:
        with contextlib.suppress(MediaStreamError, asyncio.CancelledError):
            while True:
                frame = await track.recv()
                if isinstance(frame, av.VideoFrame):
                    image = frame.to_ndarray(format="rgb24")
                    self.video[publisher()].append(tuple(int(c) for c in image.reshape(-1, 3).mean(axis=0)))
                else:
                    self.audio[publisher()].append(
                        frame.to_ndarray().reshape(-1)[:: len(frame.layout.channels)]
                    )

    def tone_of(self, publisher: str) -> float:
        """The dominant frequency of the audio received from ``publisher``."""
        samples = np.concatenate(self.audio[publisher][-25:]).astype(np.float64)
        spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
        return float(np.fft.rfftfreq(len(samples), 1 / RATE)[int(np.argmax(spectrum))])

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for pc in (self.publish_pc, self.subscribe_pc):
            if pc is not None:
                await pc.close()


async def until(condition: Callable[[], bool], within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.1)


def close_to(rgb: tuple[int, ...], expected: tuple[int, int, int]) -> bool:
    return all(abs(a - b) <= 30 for a, b in zip(rgb, expected, strict=True))


@pytest.fixture
async def media_bench(make_bench: Callable[..., Awaitable[Bench]]) -> AsyncIterator[Bench]:
    bench = await make_bench(media_factory=default_media_factory)
    await bench.make_hearing()
    # the test's own peers run in this process too: they need the loopback host address from the start
    install_host_addresses(MediaSettings(host_addresses=["127.0.0.1"]))
    try:
        yield bench
    finally:
        uninstall_host_addresses()


async def test_courtroom_and_party_see_and_hear_each_other(media_bench: Bench) -> None:
    bench = media_bench
    operator = await bench.operator(await bench.make_staff())
    courtroom_id = next(m for m in operator.seen if m["type"] == "hearing")["you"]["participant_id"]
    await operator.send("open_waiting_room")
    party_id, token = await bench.make_party("Remote Witness")
    party = await bench.waiting_party(token)
    await operator.send("admit", party_id=party_id)
    await party.expect_state("in_hearing")

    red, blue = (220, 30, 30), (40, 60, 230)
    courtroom_browser, party_browser = Browser(operator, red, 440.0), Browser(party, blue, 880.0)
    try:
        await courtroom_browser.publish()
        await party_browser.publish()
        await operator.send("start")  # nothing is forwarded before the start
        await until(
            lambda: (
                len(party_browser.video[courtroom_id]) > 10 and len(courtroom_browser.video[party_id]) > 10
            )
        )
        assert close_to(party_browser.video[courtroom_id][-1], red), party_browser.video[courtroom_id][-1]
        assert close_to(courtroom_browser.video[party_id][-1], blue), courtroom_browser.video[party_id][-1]
        await until(
            lambda: (
                len(party_browser.audio[courtroom_id]) > 30 and len(courtroom_browser.audio[party_id]) > 30
            )
        )
        assert abs(party_browser.tone_of(courtroom_id) - 440.0) < 20
        assert abs(courtroom_browser.tone_of(party_id) - 880.0) < 20

        # the court mutes the party: their audio stops reaching the courtroom, their video does not
        await operator.send("mute", party_id=party_id, kind="audio")
        await asyncio.sleep(0.6)
        audio_before, video_before = (
            len(courtroom_browser.audio[party_id]),
            len(courtroom_browser.video[party_id]),
        )
        await asyncio.sleep(1.0)
        assert len(courtroom_browser.audio[party_id]) - audio_before <= 2
        assert len(courtroom_browser.video[party_id]) - video_before > 5

        await operator.send("end")
        await until(lambda: any(m["type"] == "hearing_ended" for m in party_browser.messages), within=5)
        quality = [m for m in courtroom_browser.messages if m["type"] == "quality"]
        assert quality and {q["participant_id"] for q in quality[-1]["participants"]} == {
            courtroom_id,
            party_id,
        }
    finally:
        await courtroom_browser.close()
        await party_browser.close()
    assert json.dumps(party_browser.messages)  # everything the server sent was JSON
