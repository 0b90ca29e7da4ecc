"""End-to-end bench: a real server (in-process or a subprocess), its REST API, and browser stand-ins.

A :class:`Browser` joins through ``/ws`` like the web client and publishes the pre-encoded media of
``tests/media/media_harness.py`` (a solid colour and a sine tone per participant) from real aiortc
peers; what it sends is remembered (``PacketSource.served``) so recordings can be matched to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import json
import os
import signal
import socket
import statistics
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import av
from aiohttp import web
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcconfiguration import RTCBundlePolicy
from media_harness import (
    AUDIO_CLOCK,
    AUDIO_FRAME,
    COLOURS,
    FPS,
    TONES,
    VIDEO_CLOCK,
    _video_frames,
    encode_opus,
)
from signaling_harness import WsPeer

from hearing_server.config import Config
from media.aiortc_adapter import ReceiverTap, redirect_keyframe_requests
from recording.composite import PROGRESS_NAME, playback_dir
from recording.media_info import TAG_EPOCH_US, TAG_KIND, TAG_PARTICIPANT_ID

PASSWORD = "a long enough password for tests"
GOP = FPS  # a keyframe every second


@dataclass(frozen=True)
class Clip:
    """A participant's pre-encoded media that decodes end to end, however it is cut or looped.

    (``media_harness.Clip`` answers a keyframe request with a keyframe from a second encode and loops
    onto an inter frame, so its stream does not decode continuously: fine for forwarding, not here.)
    """

    colour: tuple[int, int, int]
    tone_hz: float
    video: list[bytes]
    keyframes: frozenset[int]  # indices into ``video``; index 0 is one
    audio: list[bytes]


def make_clip(index: int, seconds: float = 2.0) -> Clip:
    """Colour ``COLOURS[index]`` with a moving block (every frame differs) and tone ``TONES[index]``."""
    frames = _video_frames(COLOURS[index], int(seconds * FPS))
    encoder = av.CodecContext.create("libvpx", "w")
    encoder.width, encoder.height, encoder.pix_fmt = frames[0].width, frames[0].height, "yuv420p"
    encoder.time_base = fractions.Fraction(1, FPS)
    encoder.framerate = fractions.Fraction(FPS, 1)
    encoder.bit_rate = 300_000
    encoder.gop_size = GOP
    encoder.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0", "kf-min-dist": str(GOP)}
    video: list[bytes] = []
    keyframes: set[int] = set()
    for number, frame in enumerate(frames):
        frame.pict_type = (
            av.video.frame.PictureType.I if number % GOP == 0 else av.video.frame.PictureType.NONE
        )
        for packet in encoder.encode(frame):
            if packet.is_keyframe:
                keyframes.add(len(video))
            video.append(bytes(packet))
    for packet in encoder.encode(None):
        video.append(bytes(packet))
    assert len(video) == len(frames) and 0 in keyframes
    return Clip(COLOURS[index], TONES[index], video, frozenset(keyframes), encode_opus(TONES[index], seconds))


class ClipTrack(MediaStreamTrack):
    """Serves a clip's packets at real-time pace, looping; a keyframe request skips to the next keyframe."""

    def __init__(self, kind: str, packets: list[bytes], keyframes: frozenset[int] = frozenset()) -> None:
        super().__init__()
        self.kind = kind
        self._packets = packets
        self._keyframes = sorted(keyframes)
        self._step = VIDEO_CLOCK // FPS if kind == "video" else AUDIO_FRAME
        self._interval = self._step / (VIDEO_CLOCK if kind == "video" else AUDIO_CLOCK)
        self._count = 0
        self._position = 0
        self._start: float | None = None
        self._keyframe_wanted = False
        self.served: list[tuple[bytes, float]] = []  # (packet, time.time() when handed to the sender)

    def request_keyframe(self) -> None:
        self._keyframe_wanted = True

    async def recv(self) -> av.Packet:
        if self.readyState != "live":
            raise MediaStreamError
        now = time.monotonic()
        if self._start is None:
            self._start = now
        due = self._start + self._count * self._interval
        if due > now:
            await asyncio.sleep(due - now)
        if self._keyframe_wanted and self._keyframes:
            self._keyframe_wanted = False
            if self._position not in self._keyframes:
                later = [k for k in self._keyframes if k > self._position]
                self._position = later[0] if later else self._keyframes[0]
        data = self._packets[self._position]
        self._position = (self._position + 1) % len(self._packets)
        packet = av.Packet(data)
        packet.pts = self._count * self._step
        packet.time_base = fractions.Fraction(1, VIDEO_CLOCK if self.kind == "video" else AUDIO_CLOCK)
        self._count += 1
        self.served.append((data, time.time()))
        return packet


async def until(condition: Callable[[], bool], within: float, what: str = "condition") -> None:
    """Poll ``condition`` every 50 ms; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not met within {within} s")
        await asyncio.sleep(0.05)


class ServerApi:
    """The REST API of a running server, as a logged-in staff member's browser calls it."""

    def __init__(self, base: str) -> None:
        self.base = base.rstrip("/")
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())
        self.cookie = ""
        self.csrf = ""
        self.user_agent = "ConsoleBrowser/1.0"

    async def close(self) -> None:
        await self.http.close()

    def headers(self) -> dict[str, str]:
        return {
            "Cookie": f"hs_session={self.cookie}",
            "X-CSRF-Token": self.csrf,
            "User-Agent": self.user_agent,
        }

    async def login(self, username: str, password: str) -> None:
        async with self.http.post(
            f"{self.base}/api/v1/auth/login", json={"username": username, "password": password}
        ) as response:
            assert response.status == 200, await response.text()
            self.cookie = response.cookies["hs_session"].value
            session = await response.json()
            self.csrf = session["csrf_token"]
        if session["must_change_password"]:  # the first admin's one-time password: replaced at once
            change = {"current_password": password, "new_password": PASSWORD + " (admin)"}
            await self.ok("POST", "/auth/password", change)

    async def call(self, method: str, path: str, body: Any = None, **query: Any) -> tuple[int, Any]:
        async with self.http.request(
            method, f"{self.base}/api/v1{path}", json=body, params=query or None, headers=self.headers()
        ) as response:
            data = await response.json() if response.content_type == "application/json" else None
            return response.status, data

    async def ok(self, method: str, path: str, body: Any = None, **query: Any) -> Any:
        status, data = await self.call(method, path, body, **query)
        assert status < 300, (method, path, status, data)
        return data

    async def staff_operator(self, username: str = "clerk") -> None:
        """As admin: create an operator account, then continue logged in as that operator."""
        await self.ok("POST", "/users", {"username": username, "role": "operator", "password": PASSWORD})
        await self.login(username, PASSWORD)

    async def schedule(self, start_in_minutes: int = 5) -> dict[str, Any]:
        start = time.time() + start_in_minutes * 60
        body = {
            "case_number": f"2-{int(start) % 100000}/2026",
            "title": "Recorded v. Sealed",
            "courtroom": "Room 5",
            "scheduled_start": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start)),
            "duration_minutes": 60,
            "presiding_judge": "A. Judge",
            "notice_language": "ru",
        }
        result: dict[str, Any] = await self.ok("POST", "/hearings", body)
        return result

    async def invite(self, hearing_id: str, name: str, role: str = "witness") -> tuple[str, str]:
        """Add a party and issue their link; returns (party id, token)."""
        party = await self.ok("POST", f"/hearings/{hearing_id}/parties", {"role": role, "display_name": name})
        issued = await self.ok("POST", f"/hearings/{hearing_id}/parties/{party['id']}/invitation")
        return party["id"], issued["url"].rsplit("/", 1)[1]

    async def record(self, hearing_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.ok("GET", f"/hearings/{hearing_id}/record")
        return result

    async def events(self, hearing_id: str, after_seq: int = 0) -> list[dict[str, Any]]:
        page = await self.ok("GET", f"/hearings/{hearing_id}/events", after_seq=after_seq)
        return list(page["items"])

    async def socket(self, user_agent: str, *, staff: bool) -> WsPeer:
        headers = {"Origin": self.base, "User-Agent": user_agent}
        if staff:
            headers["Cookie"] = f"hs_session={self.cookie}"
        return WsPeer(await self.http.ws_connect(f"{self.base}/ws", headers=headers))

    async def courtroom(self, hearing_id: str) -> WsPeer:
        peer = await self.socket("CourtroomPC/1.0", staff=True)
        await peer.send("join", hearing_id=hearing_id, **{"as": "courtroom"})
        await peer.expect("hearing")
        return peer

    async def waiting_party(self, token: str, user_agent: str) -> WsPeer:
        """A party through the notice into the waiting room."""
        peer = await self.socket(user_agent, staff=False)
        await peer.send("join", token=token)
        notice = (await peer.expect("hearing"))["notice"]
        await peer.send("confirm_notice", language=notice["language"], notice_sha256=notice["sha256"])
        await peer.expect_state("confirmed")
        await peer.send("ready")
        await peer.expect_state("waiting")
        return peer


@dataclass
class LiveServer:
    """The real application on a loopback port, with an operator logged in to its API."""

    app: web.Application
    config: Config
    api: ServerApi

    def folder(self, relative: str) -> Path:
        return self.config.recordings_dir / relative


class Browser:
    """A participant's page: signaling over ``/ws`` and publish/subscribe peers with pre-encoded media."""

    def __init__(self, peer: WsPeer, clip: Clip) -> None:
        self.peer = peer
        self.clip = clip
        hello = next(m for m in peer.seen if m["type"] == "hearing")
        self.participant_id: str = hello["you"]["participant_id"]
        self.publish_pc: RTCPeerConnection | None = None
        self.subscribe_pc: RTCPeerConnection | None = None
        self.video: ClipTrack | None = None
        self.audio: ClipTrack | None = None
        self.messages: list[dict[str, Any]] = []
        self.received: dict[str, int] = {}  # mid → frames received
        self._tasks: set[asyncio.Task[None]] = set()

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def publish(self) -> None:
        """Send camera and microphone; from now on this object reads the socket."""
        config = RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
        self.subscribe_pc = RTCPeerConnection(config)
        self.subscribe_pc.on("track", self._on_track)
        self.publish_pc = RTCPeerConnection(config)
        self.video = ClipTrack("video", self.clip.video, self.clip.keyframes)
        self.audio = ClipTrack("audio", self.clip.audio)
        for source in (self.video, self.audio):
            transceiver = self.publish_pc.addTransceiver(source, direction="sendonly")
            redirect_keyframe_requests(transceiver.sender, source.request_keyframe)
        await self.publish_pc.setLocalDescription(await self.publish_pc.createOffer())
        await self.peer.send("publish_offer", sdp=self.publish_pc.localDescription.sdp)
        self._spawn(self._signal())

    async def send(self, message_type: str, /, **fields: Any) -> int:
        """Send a message; returns the count of messages received so far (for ``wait_for(after=)``)."""
        mark = len(self.messages)
        await self.peer.send(message_type, **fields)
        return mark

    async def wait_for(
        self,
        kind: str,
        where: Callable[[dict[str, Any]], bool] | None = None,
        within: float = 5.0,
        after: int = 0,
    ) -> dict[str, Any]:
        """The first message of ``kind`` (matching ``where``) among those received after the first
        ``after`` ones, waiting up to ``within`` s for it."""

        def found() -> dict[str, Any] | None:
            for message in self.messages[after:]:
                if message["type"] == kind and (where is None or where(message)):
                    return message
            return None

        await until(lambda: found() is not None, within, f"{kind} message")
        result = found()
        assert result is not None
        return result

    def state(self) -> dict[str, Any] | None:
        states = [m for m in self.messages if m["type"] == "state"]
        return states[-1] if states else None

    async def _signal(self) -> None:
        with contextlib.suppress(ConnectionError, asyncio.CancelledError, RuntimeError):
            self.messages.extend(self.peer.seen)
            while True:
                message = await self.peer._next(3600)
                self.messages.append(message)
                if message["type"] == "publish_answer":
                    assert self.publish_pc is not None
                    await self.publish_pc.setRemoteDescription(
                        RTCSessionDescription(sdp=message["sdp"], type="answer")
                    )
                elif message["type"] == "subscribe_offer":
                    assert self.subscribe_pc is not None
                    await self.subscribe_pc.setRemoteDescription(
                        RTCSessionDescription(sdp=message["sdp"], type="offer")
                    )
                    await self.subscribe_pc.setLocalDescription(await self.subscribe_pc.createAnswer())
                    await self.peer.send("subscribe_answer", sdp=self.subscribe_pc.localDescription.sdp)

    def _on_track(self, track: MediaStreamTrack) -> None:
        assert self.subscribe_pc is not None
        transceiver = next(t for t in self.subscribe_pc.getTransceivers() if t.receiver.track is track)
        ReceiverTap(transceiver.receiver)  # encoded frames, no decoding in the test's peers
        self._spawn(self._read(track, transceiver))

    async def _read(self, track: MediaStreamTrack, transceiver: Any) -> None:
        with contextlib.suppress(MediaStreamError, asyncio.CancelledError):
            while True:
                await track.recv()
                mid = transceiver.mid or "?"
                self.received[mid] = self.received.get(mid, 0) + 1

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for pc in (self.publish_pc, self.subscribe_pc):
            if pc is not None:
                await pc.close()
        with contextlib.suppress(Exception):
            await self.peer.close()


# --- reading the hearing folder ------------------------------------------------------------------


@dataclass(frozen=True)
class RecordedPacket:
    """One packet of a segment file: its bytes and its time on the hearing timeline (UTC seconds)."""

    data: bytes
    wallclock: float
    end: float


@dataclass(frozen=True)
class Segment:
    """One recorded segment file, read back with av."""

    path: Path
    participant_id: str
    kind: str
    epoch: float
    packets: list[RecordedPacket]

    @property
    def first(self) -> float:
        return self.packets[0].wallclock

    @property
    def last(self) -> float:
        return self.packets[-1].end

    @property
    def duration(self) -> float:
        return self.last - self.first


def read_segment(path: Path) -> Segment:
    """Demux every packet of a segment (no decoding) with its place on the shared timeline."""
    with av.open(str(path)) as container:
        tags = {k.upper(): v for k, v in container.metadata.items()}
        epoch = int(tags[TAG_EPOCH_US]) / 1_000_000
        stream = container.streams[0]
        packets = []
        for packet in container.demux(stream):
            if packet.pts is None or packet.size == 0:
                continue
            start = epoch + float(packet.pts * packet.time_base)
            duration = float((packet.duration or 0) * packet.time_base)
            packets.append(RecordedPacket(bytes(packet), start, start + duration))
    return Segment(path, tags[TAG_PARTICIPANT_ID], tags[TAG_KIND], epoch, packets)


def served_offsets(segment: Segment, source: ClipTrack) -> list[float]:
    """For each recorded packet: its timeline time minus when the publisher's page handed it to WebRTC.

    Packets repeat as a clip loops (every ~2 s); each is matched to the sending nearest in time.
    """
    sent: dict[bytes, list[float]] = {}
    for data, at in source.served:
        sent.setdefault(data, []).append(at)
    offsets = []
    for packet in segment.packets:
        times = sent.get(packet.data)
        if times:
            offsets.append(min((packet.wallclock - t for t in times), key=abs))
    return offsets


def median(values: list[float]) -> float:
    return statistics.median(values)


# --- processes ----------------------------------------------------------------------------------


def stop_renders(root: Path) -> None:
    """Kill playback renders still running for hearing folders under ``root`` (tests leave no process)."""
    for progress in root.rglob(PROGRESS_NAME):
        try:
            pid = json.loads(progress.read_text()).get("pid")
        except (OSError, ValueError):
            continue
        if pid and _is_render(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _is_render(pid: int) -> bool:
    try:
        return b"recording.composite" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def playback_progress(folder: Path) -> Path:
    return playback_dir(folder) / PROGRESS_NAME


def thread_cpu_seconds(thread: threading.Thread) -> float:
    """CPU time of one running thread of this process."""
    assert thread.ident is not None
    return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))


def process_cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and its ended threads, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class ServerProcess:
    """``python -m hearing_server serve`` on a loopback port (plain HTTP): started, killed, restarted."""

    def __init__(
        self,
        data_dir: Path,
        port: int,
        *,
        env: dict[str, str] | None = None,
        open_files: int | None = None,
        tls: bool = False,
    ) -> None:
        self.data_dir = data_dir
        self.port = port
        self.env = env or {}
        self.open_files = open_files  # RLIMIT_NOFILE of the server process (ulimit -n)
        self.tls = tls
        self.base = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
        self.process: asyncio.subprocess.Process | None = None
        self.output: list[str] = []
        self._readers: list[asyncio.Task[None]] = []

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    async def start(self) -> str | None:
        """Start and wait until it listens; returns the first-start admin password if one was made."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("HEARING_")}
        env["HEARING_ICE_HOST_ADDRESSES"] = "127.0.0.1"
        env.update(self.env)
        plain = [] if self.tls else ["--plain-http"]
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "hearing_server", "serve", *plain, "--host", "127.0.0.1",
            "--port", str(self.port), "--data-dir", str(self.data_dir),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
            preexec_fn=self._limits if self.open_files else None,
        )  # fmt: skip
        assert self.process.stdout is not None and self.process.stderr is not None
        self._readers.append(asyncio.ensure_future(self._drain(self.process.stderr)))
        password = None
        async with asyncio.timeout(60):
            while line := (await self.process.stdout.readline()).decode():
                self.output.append(line)
                if "one-time password" in line:
                    password = line.rsplit(": ", 1)[1].strip()
                if "listening on" in line:
                    break
            else:
                raise AssertionError("the server exited:\n" + "".join(self.output))
        self._readers.append(asyncio.ensure_future(self._drain(self.process.stdout)))
        return password

    def _limits(self) -> None:
        import resource

        assert self.open_files is not None
        resource.setrlimit(resource.RLIMIT_NOFILE, (self.open_files, self.open_files))

    def open_fds(self) -> int:
        """File descriptors the server process holds now."""
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def rss_mb(self) -> float:
        """Resident memory of the server process, MB."""
        with open(f"/proc/{self.pid}/status", encoding="ascii") as status:
            kb = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
        return kb / 1024

    async def _drain(self, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            self.output.append(line.decode(errors="replace"))

    async def kill(self) -> float:
        """SIGKILL (a power cut, as far as the server can tell); returns the UTC time of the kill."""
        assert self.process is not None
        killed_at = time.time()
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()
        return killed_at

    async def stop(self) -> None:
        """SIGTERM and wait; SIGKILL if it does not stop."""
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(30):
                    await self.process.wait()
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        for reader in self._readers:
            reader.cancel()
        self._readers.clear()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def sealed_record(api: ServerApi, hearing_id: str, within: float = 30.0) -> dict[str, Any]:
    """GET …/record until the hearing shows as sealed (the automatic seal after ``end``)."""
    deadline = time.monotonic() + within
    while True:
        record = await api.record(hearing_id)
        # The manifest is on disk a moment before the hearing is marked sealed in the database.
        if (record["seal"]["sealed"] and record["status"] == "sealed") or time.monotonic() > deadline:
            return record
        await asyncio.sleep(0.2)
