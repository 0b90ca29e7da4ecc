"""Test participants for the media plane: real aiortc peers publishing pre-encoded media.

Each participant publishes VP8 frames of one solid colour (with a small moving block so
that every frame differs) and Opus packets of one sine tone, encoded once with av and served
at real-time pace from a track whose ``recv()`` returns ``av.Packet`` (no encoding in tests).
"""

from __future__ import annotations

import asyncio
import fractions
import math
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import av
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpCodecParameters, RTCSessionDescription
from aiortc.codecs import depayload
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcconfiguration import RTCBundlePolicy

from media.aiortc_adapter import ReceiverTap, redirect_keyframe_requests
from media.bitstream import frame_size, is_keyframe
from media.contract import ConnectionState, LinkQuality, RtpPacket, SenderReport, TrackInfo, TrackMapping
from media.errors import MediaError
from media.router import Router

WIDTH, HEIGHT, FPS = 320, 240, 15
VIDEO_CLOCK, AUDIO_CLOCK = 90000, 48000
AUDIO_FRAME = 960  # 20 ms of Opus

COLOURS: list[tuple[int, int, int]] = [
    (220, 30, 30),
    (30, 200, 40),
    (40, 60, 230),
    (230, 210, 30),
    (200, 40, 200),
]
TONES: list[float] = [440.0, 660.0, 880.0, 1100.0, 1320.0]


@dataclass(frozen=True)
class Clip:
    """One participant's pre-encoded media."""

    colour: tuple[int, int, int]
    tone_hz: float
    video: list[bytes]  # a keyframe, then inter frames
    video_intra: list[bytes]  # every frame again, as a keyframe (served on a keyframe request)
    audio: list[bytes]


def _yuv(colour: tuple[int, int, int]) -> tuple[int, int, int]:
    r, g, b = (c / 255 for c in colour)
    y = 16 + 65.481 * r + 128.553 * g + 24.966 * b
    u = 128 - 37.797 * r - 74.203 * g + 112.0 * b
    v = 128 + 112.0 * r - 93.786 * g - 18.214 * b
    return round(y), round(u), round(v)


def _video_frames(colour: tuple[int, int, int], count: int) -> list[av.VideoFrame]:
    y, u, v = _yuv(colour)
    frames = []
    for index in range(count):
        frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
        luma = bytearray([y]) * (WIDTH * HEIGHT)
        x0 = (index * 8) % (WIDTH - 16)
        for row in range(4, 20):  # a small bright block moving along the top edge
            luma[row * WIDTH + x0 : row * WIDTH + x0 + 16] = bytes([235]) * 16
        frame.planes[0].update(bytes(luma))
        frame.planes[1].update(bytes([u]) * frame.planes[1].buffer_size)
        frame.planes[2].update(bytes([v]) * frame.planes[2].buffer_size)
        frame.pts = index
        frames.append(frame)
    return frames


def encode_vp8(frames: list[av.VideoFrame], gop: int, bit_rate: int, fps: int) -> list[bytes]:
    """Encode frames with libvpx in real-time mode; gop=1 makes every frame a keyframe."""
    encoder = av.CodecContext.create("libvpx", "w")
    encoder.width, encoder.height = frames[0].width, frames[0].height
    encoder.pix_fmt = "yuv420p"
    encoder.time_base = fractions.Fraction(1, fps)
    encoder.framerate = fractions.Fraction(fps, 1)
    encoder.bit_rate = bit_rate
    encoder.gop_size = gop
    encoder.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0", "auto-alt-ref": "0"}
    packets = [bytes(p) for frame in frames for p in encoder.encode(frame)]
    packets += [bytes(p) for p in encoder.encode(None)]
    assert len(packets) == len(frames), (len(packets), len(frames))
    return packets


def encode_opus(tone_hz: float, seconds: float) -> list[bytes]:
    """Opus packets (20 ms, mono) of a sine tone."""
    encoder = av.CodecContext.create("libopus", "w")
    encoder.sample_rate = AUDIO_CLOCK
    encoder.layout = "mono"
    encoder.format = "s16"
    encoder.bit_rate = 32000
    encoder.time_base = fractions.Fraction(1, AUDIO_CLOCK)
    packets: list[bytes] = []
    count = int(seconds * AUDIO_CLOCK / AUDIO_FRAME)
    for index in range(count):
        samples = bytearray()
        for n in range(AUDIO_FRAME):
            t = (index * AUDIO_FRAME + n) / AUDIO_CLOCK
            samples += int(12000 * math.sin(2 * math.pi * tone_hz * t)).to_bytes(2, "little", signed=True)
        frame = av.AudioFrame(format="s16", layout="mono", samples=AUDIO_FRAME)
        frame.planes[0].update(bytes(samples))
        frame.sample_rate = AUDIO_CLOCK
        frame.pts = index * AUDIO_FRAME
        frame.time_base = fractions.Fraction(1, AUDIO_CLOCK)
        packets += [bytes(p) for p in encoder.encode(frame)]
    packets += [bytes(p) for p in encoder.encode(None)]
    return packets


def make_clip(index: int, seconds: float = 2.0) -> Clip:
    frames = _video_frames(COLOURS[index], int(seconds * FPS))
    return Clip(
        colour=COLOURS[index],
        tone_hz=TONES[index],
        video=encode_vp8(frames, gop=10_000, bit_rate=300_000, fps=FPS),
        video_intra=encode_vp8(
            _video_frames(COLOURS[index], int(seconds * FPS)), gop=1, bit_rate=300_000, fps=FPS
        ),
        audio=encode_opus(TONES[index], seconds),
    )


def mean_colour(keyframe: bytes) -> tuple[int, int, int]:
    """Decode a VP8 keyframe and average the RGB of the frame's lower half (away from the block)."""
    decoder = av.CodecContext.create("libvpx", "r")
    frames = decoder.decode(av.Packet(keyframe))
    assert frames, "keyframe did not decode"
    rgb = frames[0].reformat(format="rgb24")
    plane = rgb.planes[0]
    data = bytes(plane)
    sums = [0, 0, 0]
    count = 0
    for row in range(HEIGHT // 2, HEIGHT, 4):
        line = data[row * plane.line_size : row * plane.line_size + WIDTH * 3]
        for channel in range(3):
            sums[channel] += sum(line[channel::3])
        count += WIDTH
    return (sums[0] // count, sums[1] // count, sums[2] // count)


class PacketSource(MediaStreamTrack):
    """Serves pre-encoded packets at real-time pace; honours keyframe requests for video."""

    def __init__(self, kind: str, packets: list[bytes], intra: list[bytes] | None = None) -> None:
        super().__init__()
        self.kind = kind
        self._packets = packets
        self._intra = intra
        self._clock = VIDEO_CLOCK if kind == "video" else AUDIO_CLOCK
        self._step = VIDEO_CLOCK // FPS if kind == "video" else AUDIO_FRAME
        self._interval = self._step / self._clock
        self._count = 0
        self._start: float | None = None
        self._keyframe_wanted = False
        # (frame, capture time): the wall-clock time the frame was due, which its RTP time stands for
        self.served: list[tuple[bytes, float]] = []
        self._start_wall = 0.0
        self.keyframe_requests = 0

    def request_keyframe(self) -> None:
        self.keyframe_requests += 1
        self._keyframe_wanted = True

    async def recv(self) -> av.Packet:
        if self.readyState != "live":
            raise MediaStreamError
        now = time.monotonic()
        if self._start is None:
            self._start = now
            self._start_wall = time.time()
        due = self._start + self._count * self._interval
        if due > now:
            await asyncio.sleep(due - now)
        index = self._count
        # the clip loops without its first frame, so the only keyframes are requested ones
        position = 0 if index == 0 else 1 + (index - 1) % (len(self._packets) - 1)
        if self._intra is not None and self._keyframe_wanted and index > 0:
            self._keyframe_wanted = False
            data = self._intra[position]
        else:
            data = self._packets[position]
        packet = av.Packet(data)
        packet.pts = index * self._step
        packet.time_base = fractions.Fraction(1, self._clock)
        self._count += 1
        self.served.append((data, self._start_wall + index * self._interval))
        return packet


@dataclass
class Received:
    """One frame a client received, attributed to a publisher through the offer's mapping."""

    data: bytes
    keyframe: bool
    at: float  # time.monotonic()


def client_configuration() -> RTCConfiguration:
    return RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)


class Client:
    """A participant's stand-in for a browser: publishes its clip and receives the others."""

    def __init__(self, participant_id: str, clip: Clip, router: Router) -> None:
        self.participant_id = participant_id
        self.clip = clip
        self.router = router
        self.publish_pc: RTCPeerConnection | None = None
        self.subscribe_pc: RTCPeerConnection | None = None
        self.video: PacketSource | None = None
        self.audio: PacketSource | None = None
        self.mapping: dict[str, TrackMapping] = {}
        self.received: dict[tuple[str, str], list[Received]] = defaultdict(list)
        self.offers = 0
        self.subscribe_connected_at: float | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def join(self, audio: bool = True, video: bool = True) -> None:
        """Open new publish and subscribe connections (a reconnect when called again)."""
        self.subscribe_pc = RTCPeerConnection(client_configuration())
        self.subscribe_connected_at = None
        self.mapping = {}
        subscribe_pc = self.subscribe_pc
        subscribe_pc.on("track", lambda track: self._on_track(subscribe_pc, track))

        @subscribe_pc.on("connectionstatechange")
        def _connected() -> None:
            if subscribe_pc.connectionState == "connected" and self.subscribe_connected_at is None:
                self.subscribe_connected_at = time.monotonic()

        self.publish_pc = RTCPeerConnection(client_configuration())
        sources = []
        if video:
            self.video = PacketSource("video", self.clip.video, self.clip.video_intra)
            sources.append(self.video)
        if audio:
            self.audio = PacketSource("audio", self.clip.audio)
            sources.append(self.audio)
        for source in sources:
            transceiver = self.publish_pc.addTransceiver(source, direction="sendonly")
            redirect_keyframe_requests(transceiver.sender, source.request_keyframe)
        await self.publish_pc.setLocalDescription(await self.publish_pc.createOffer())
        answer = await self.router.publish(self.participant_id, self.publish_pc.localDescription.sdp)
        await self.publish_pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))

    async def answer_offer(self, sdp: str, tracks: list[TrackMapping]) -> None:
        assert self.subscribe_pc is not None
        self.offers += 1
        self.mapping = {mapping.mid: mapping for mapping in tracks}
        await self.subscribe_pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        await self.subscribe_pc.setLocalDescription(await self.subscribe_pc.createAnswer())
        await self.router.subscriber_answer(self.participant_id, self.subscribe_pc.localDescription.sdp)

    def frames_from(self, publisher: str, kind: str) -> list[Received]:
        return self.received[(publisher, kind)]

    def count(self, publisher: str, kind: str) -> int:
        return len(self.received[(publisher, kind)])

    async def drop(self) -> None:
        """Vanish without leaving: close the client's connections."""
        for pc in (self.publish_pc, self.subscribe_pc):
            if pc is not None:
                await pc.close()
        for task in list(self._tasks):
            task.cancel()

    def _on_track(self, pc: RTCPeerConnection, track: MediaStreamTrack) -> None:
        transceiver = next(t for t in pc.getTransceivers() if t.receiver.track is track)
        ReceiverTap(transceiver.receiver)
        task = asyncio.ensure_future(self._read(track, lambda: transceiver.mid))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _read(self, track: MediaStreamTrack, mid: Callable[[], str | None]) -> None:
        try:
            while True:
                packet = await track.recv()
                mapping = self.mapping.get(mid() or "")
                publisher = mapping.participant_id if mapping else "?"
                self.received[(publisher, track.kind)].append(
                    Received(bytes(packet), bool(packet.is_keyframe), time.monotonic())
                )
        except MediaStreamError:
            pass


@dataclass(frozen=True)
class SinkFrame:
    """A frame put together (in the test) from the packets a sink received."""

    track: TrackInfo
    data: bytes
    timestamp: int
    keyframe: bool
    width: int | None
    height: int | None


@dataclass
class RecordingSink:
    """A PacketSink that keeps everything it is given, in order."""

    events: list[tuple[str, object]] = field(default_factory=list)
    keyframe_requesters: dict[str, Callable[[], None]] = field(default_factory=dict)

    def track_started(self, track: TrackInfo, request_keyframe: Callable[[], None]) -> None:
        self.events.append(("started", track))
        self.keyframe_requesters[track.track_id] = request_keyframe

    def packet(self, packet: RtpPacket) -> None:
        self.events.append(("packet", packet))

    def sender_report(self, track: TrackInfo, report: SenderReport) -> None:
        self.events.append(("report", (track, report)))

    def track_ended(self, track: TrackInfo) -> None:
        self.events.append(("ended", track))

    def packets(self, participant_id: str, kind: str) -> list[RtpPacket]:
        return [
            p
            for name, p in self.events
            if name == "packet"
            and isinstance(p, RtpPacket)
            and p.track.participant_id == participant_id
            and p.track.kind == kind
        ]

    def frames(self, participant_id: str, kind: str) -> list[SinkFrame]:
        """The complete frames among the packets (consecutive sequence numbers up to the marker)."""
        return frames_from_packets(self.packets(participant_id, kind))


def frames_from_packets(packets: list[RtpPacket]) -> list[SinkFrame]:
    """Reassemble frames from one track's packets in arrival order, as a recorder would (no loss on loopback).

    A frame is every packet of one RTP timestamp with consecutive sequence numbers, ending in a marker
    (video) or a single packet (audio); an incomplete frame is left out.
    """
    frames: list[SinkFrame] = []
    ordered = sorted(packets, key=lambda p: p.arrival)
    pending: list[RtpPacket] = []
    for packet in ordered:
        if pending and (
            packet.timestamp != pending[0].timestamp
            or packet.sequence_number != (pending[-1].sequence_number + 1) & 0xFFFF
        ):
            pending = []
        pending.append(packet)
        if packet.track.kind == "audio" or packet.marker:
            track = packet.track
            codec = RTCRtpCodecParameters(mimeType=f"{track.kind}/{track.codec}", clockRate=track.clock_rate)
            data = b"".join(depayload(codec, p.payload) for p in pending)
            keyframe = is_keyframe(track.codec, data)
            size = frame_size(track.codec, data) if keyframe and track.kind == "video" else None
            frames.append(
                SinkFrame(
                    track,
                    data,
                    packet.timestamp,
                    keyframe,
                    size[0] if size else None,
                    size[1] if size else None,
                )
            )
            pending = []
    return frames


class Hearing:
    """MediaEvents for the tests: routes subscribe offers to the clients like a WebSocket would."""

    def __init__(self) -> None:
        self.clients: dict[str, Client] = {}
        self.states: list[tuple[str, ConnectionState]] = []
        self.link_qualities: list[tuple[str, LinkQuality]] = []
        self.offer_errors: list[BaseException] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def subscriber_offer(self, participant_id: str, sdp: str, tracks: list[TrackMapping]) -> None:
        client = self.clients.get(participant_id)
        if client is None:
            return
        # delivered later, as over a WebSocket: the router must not depend on an inline answer
        task = asyncio.ensure_future(self._answer(client, sdp, tracks))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, client: Client, sdp: str, tracks: list[TrackMapping]) -> None:
        try:
            await client.answer_offer(sdp, tracks)
        except (MediaError, Exception) as exc:  # recorded; tests assert there are none
            self.offer_errors.append(exc)

    def connection_state_changed(self, participant_id: str, state: ConnectionState) -> None:
        self.states.append((participant_id, state))

    def link_quality_changed(self, participant_id: str, quality: LinkQuality) -> None:
        self.link_qualities.append((participant_id, quality))

    def state_of(self, participant_id: str) -> ConnectionState | None:
        states = [s for p, s in self.states if p == participant_id]
        return states[-1] if states else None


async def wait_for(condition: Callable[[], bool], within: float, step: float = 0.05) -> bool:
    """Poll until the condition holds; False on timeout."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if condition():
            return True
        await asyncio.sleep(step)
    return condition()


class Room:
    """A router with its events and sink, and a way to make clients for it."""

    def __init__(self, router: Router, hearing: Hearing, sink: RecordingSink, clips: list[Clip]) -> None:
        self.router = router
        self.hearing = hearing
        self.sink = sink
        self.clips = clips

    def client(self, participant_id: str, clip_index: int) -> Client:
        client = Client(participant_id, self.clips[clip_index], self.router)
        self.hearing.clients[participant_id] = client
        return client
