"""Participants with real aiortc peers over ``/ws`` publishing pre-encoded media (no encoding, no decoding).

A :class:`MediaBrowser` is a participant's page: its signaling socket, a publish connection serving a clip of
the media harness, and a subscribe connection whose frames are counted per publisher. It can drop its
network abruptly (peer connections and socket closed without ``leave``) and come back with the same token.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from media_harness import Clip, PacketSource, client_configuration
from signaling_harness import Bench, WsPeer
from sqlalchemy import select

from hearing_server.config import CONFIG
from hearing_server.record.folder import resolve_folder
from hearing_server.store.db import SESSIONS
from hearing_server.store.models import Hearing
from media.aiortc_adapter import ReceiverTap, redirect_keyframe_requests
from recording.hashchain import ChainVerification, verify_chain
from recording.verify import VerificationReport, verify_hearing

LOG_NAME = "confirmation-log.jsonl"


class MediaBrowser:
    """A participant's page: signaling, publishing its clip, counting what it receives per publisher."""

    def __init__(self, peer: WsPeer, clip: Clip) -> None:
        self.peer = peer
        self.clip = clip
        self.publish_pc: RTCPeerConnection | None = None
        self.subscribe_pc: RTCPeerConnection | None = None
        self.mids: dict[str, str] = {}
        self.frames: dict[tuple[str, str], list[float]] = defaultdict(list)  # (publisher, kind) → arrivals
        self.messages: list[dict[str, Any]] = []
        self.sources: list[PacketSource] = []
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def participant_id(self) -> str:
        hearing = next(m for m in self.peer.seen if m["type"] == "hearing")
        return str(hearing["you"]["participant_id"])

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def publish(self) -> None:
        """Open publish and subscribe connections and offer the clip's audio and video."""
        self.subscribe_pc = RTCPeerConnection(client_configuration())
        self.subscribe_pc.on("track", self._on_track)
        self.publish_pc = RTCPeerConnection(client_configuration())
        for source in (
            PacketSource("video", self.clip.video, self.clip.video_intra),
            PacketSource("audio", self.clip.audio),
        ):
            self.sources.append(source)
            transceiver = self.publish_pc.addTransceiver(source, direction="sendonly")
            redirect_keyframe_requests(transceiver.sender, source.request_keyframe)
        await self.publish_pc.setLocalDescription(await self.publish_pc.createOffer())
        self._spawn(self._signal())
        await self.peer.send("publish_offer", sdp=self.publish_pc.localDescription.sdp)

    async def _signal(self) -> None:
        with contextlib.suppress(ConnectionError, asyncio.CancelledError, RuntimeError):
            while True:
                message = await self.peer._next(3600)
                self.messages.append(message)
                if message["type"] == "publish_answer" and self.publish_pc is not None:
                    answer = RTCSessionDescription(sdp=message["sdp"], type="answer")
                    await self.publish_pc.setRemoteDescription(answer)
                elif message["type"] == "subscribe_offer" and self.subscribe_pc is not None:
                    self.mids.update({t["mid"]: t["participant_id"] for t in message["tracks"]})
                    offer = RTCSessionDescription(sdp=message["sdp"], type="offer")
                    await self.subscribe_pc.setRemoteDescription(offer)
                    await self.subscribe_pc.setLocalDescription(await self.subscribe_pc.createAnswer())
                    await self.peer.send("subscribe_answer", sdp=self.subscribe_pc.localDescription.sdp)

    def _on_track(self, track: MediaStreamTrack) -> None:
        assert self.subscribe_pc is not None
        transceiver = next(t for t in self.subscribe_pc.getTransceivers() if t.receiver.track is track)
        ReceiverTap(transceiver.receiver)  # encoded frames straight from the jitter buffer: no decoding
        self._spawn(self._read(track, lambda: self.mids.get(transceiver.mid or "", "?")))

    async def _read(self, track: MediaStreamTrack, publisher: Callable[[], str]) -> None:
        with contextlib.suppress(MediaStreamError, asyncio.CancelledError):
            while True:
                await track.recv()
                self.frames[(publisher(), track.kind)].append(time.monotonic())

    def count(self, publisher: str, kind: str = "video") -> int:
        return len(self.frames[(publisher, kind)])

    def longest_gap(self, publisher: str, since: float, kind: str = "video") -> float:
        """The longest time without a frame from ``publisher`` since ``since`` (up to now)."""
        times = [since] + [t for t in self.frames[(publisher, kind)] if t >= since] + [time.monotonic()]
        return max(b - a for a, b in zip(times, times[1:], strict=False))

    def errors(self) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["type"] == "error"]

    async def drop(self) -> None:
        """The network vanishes: peer connections and socket closed, no ``leave`` sent."""
        for task in list(self._tasks):
            task.cancel()
        for pc in (self.publish_pc, self.subscribe_pc):
            if pc is not None:
                await pc.close()
        self.publish_pc = self.subscribe_pc = None
        await self.peer.ws.close()

    async def close(self) -> None:
        await self.drop()


async def until(condition: Callable[[], bool], within: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not met within {within} s")
        await asyncio.sleep(0.05)


async def hearing_folder(bench: Bench, hearing_id: str) -> Path:
    async with bench.app[SESSIONS]() as db:
        hearing = await db.get(Hearing, hearing_id)
        assert hearing is not None and hearing.recording_path is not None
        return resolve_folder(bench.app[CONFIG].recordings_dir, hearing.recording_path)


async def hearing_status(bench: Bench, hearing_id: str) -> str:
    async with bench.app[SESSIONS]() as db:
        return str((await db.execute(select(Hearing.status).where(Hearing.id == hearing_id))).scalar_one())


async def log_verifies(bench: Bench, hearing_id: str) -> ChainVerification:
    """The hearing's confirmation log, checked link by link (asserted intact)."""
    chain = verify_chain((await hearing_folder(bench, hearing_id)) / LOG_NAME)
    assert chain.valid, chain.problem
    return chain


async def sealed_and_verified(bench: Bench, hearing_id: str) -> VerificationReport:
    """Wait for the seal after ``end``; the folder's files, log and signature verify."""
    deadline = time.monotonic() + 20
    while await hearing_status(bench, hearing_id) != "sealed":
        assert time.monotonic() < deadline, "the hearing was not sealed"
        await asyncio.sleep(0.2)
    folder = await hearing_folder(bench, hearing_id)
    report = await asyncio.to_thread(verify_hearing, folder, bench.app[CONFIG].court_cert_path)
    assert report.valid, report.to_dict()
    return report
