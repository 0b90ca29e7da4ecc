"""Synthetic parties: real aiortc peers that join a hearing through ``/ws`` like a phone would.

A :class:`Party` presents its invitation token, confirms the notice with the SHA-256 the
server sent, says ``ready``, waits to be admitted, publishes the pre-encoded clip and
answers every ``subscribe_offer``.  It never decodes: a :class:`ReceiverTap` hands it
the encoded frames, which it names by their bytes (a clip position) for the delay figure.

:func:`worker_main` runs a few parties in one process (multiprocessing, spawn) and takes
its orders from the benchmark over a pipe.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import aiohttp
import av
from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from benchmarks.media import Clip, ClipTrack, load_clip
from media.aiortc_adapter import ReceiverTap, install_host_addresses, redirect_keyframe_requests
from media.contract import MediaSettings
from media.peer import peer_configuration

SETTINGS = MediaSettings(host_addresses=["127.0.0.1"])  # loopback only, no STUN/TURN
RECEIVE_BUFFER_BYTES = 4 << 20
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)


@dataclass
class RemoteTrack:
    """What one subscriber received from one publisher's track."""

    times: list[float] = field(default_factory=list)  # wall-clock receive time of every frame
    first_keyframe: bool | None = None


def rtp_counts(receiver: RTCRtpReceiver) -> tuple[int, int, int]:
    """(expected, received, retransmitted) RTP packets of a receiver's primary stream.

    aiortc's ``getStats`` keys the primary and the RTX stream alike, so one hides the other;
    this reads the per-SSRC counters it keeps (a private detail of aiortc 1.16).
    """
    streams = getattr(receiver, "_RTCRtpReceiver__remote_streams", {})
    rtx = getattr(receiver, "_RTCRtpReceiver__rtx_ssrc", {})
    expected = received = retransmitted = 0
    for ssrc, stream in list(streams.items()):
        if ssrc in rtx:
            retransmitted += stream.packets_received
        else:
            expected += stream.packets_expected
            received += stream.packets_received
    return expected, received, retransmitted


def enlarge_receive_buffers(pc: RTCPeerConnection, size: int = RECEIVE_BUFFER_BYTES) -> None:
    """Give the party's UDP sockets a deep receive buffer, so that a party process that waits for
    the CPU drops nothing (the server under test keeps the system default)."""
    for transceiver in pc.getTransceivers():
        transport = transceiver.receiver.transport
        gatherer = transport.transport.iceGatherer if transport is not None else None
        connection = getattr(gatherer, "_connection", None)
        for protocol in getattr(connection, "_protocols", []):
            sock = protocol.transport.get_extra_info("socket") if protocol.transport else None
            if sock is not None:
                with contextlib.suppress(OSError):  # SO_RCVBUFFORCE needs CAP_NET_ADMIN
                    sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, size)


class Party:
    """One synthetic participant on its own WebSocket and two peer connections."""

    def __init__(
        self, label: str, token: str, base_url: str, clip: Clip, positions: dict[bytes, int]
    ) -> None:
        self.label = label
        self.token = token
        self.base_url = base_url
        self.clip = clip
        self.positions = positions
        self.participant_id = ""
        self.state = "new"
        self.errors: list[str] = []
        self.join_sent: float | None = None
        self.subscribe_connected_at: float | None = None
        self.remote: dict[tuple[str, str], RemoteTrack] = defaultdict(RemoteTrack)
        self.receipts: list[tuple[str, int, float]] = []  # (publisher, clip position, receive time)
        self.video: ClipTrack | None = None
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._publish: RTCPeerConnection | None = None
        self._subscribe: RTCPeerConnection | None = None
        self._mapping: dict[str, str] = {}  # mid → publisher participant id
        self._receivers: dict[str, RTCRtpReceiver] = {}  # mid → receiver
        self._tasks: set[asyncio.Task[None]] = set()
        self._readied = self._published = False

    # --- signaling -----------------------------------------------------------------------

    async def join(self) -> None:
        origin = self.base_url
        self._session = aiohttp.ClientSession()
        self._ws = await self._session.ws_connect(
            f"{self.base_url}/ws", headers={"Origin": origin, "User-Agent": "BenchParty/1.0"}
        )
        self.join_sent = time.time()
        await self._send("join", token=self.token)
        self._spawn(self._read_socket())

    async def _send(self, message_type: str, **fields: Any) -> None:
        assert self._ws is not None
        await self._ws.send_str(json.dumps({"type": message_type, **fields}))

    async def _read_socket(self) -> None:
        assert self._ws is not None
        async for frame in self._ws:
            if frame.type is not aiohttp.WSMsgType.TEXT:
                break
            try:
                await self._handle(json.loads(frame.data))
            except Exception as exc:  # noqa: BLE001 - a party reports, the benchmark decides
                self.errors.append(f"{type(exc).__name__}: {exc}")
        if self.state != "closed":
            self.errors.append(f"socket closed ({self._ws.close_code})")

    async def _handle(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "hearing":
            self.participant_id = message["you"]["participant_id"]
            notice = message.get("notice")
            if notice:
                await self._send(
                    "confirm_notice", language=notice["language"], notice_sha256=notice["sha256"]
                )
        elif kind == "state":
            self.state = message["you"]["state"]
            if self.state == "confirmed" and not self._readied:
                self._readied = True
                await self._send("ready")
            elif self.state == "in_hearing" and not self._published:
                self._published = True
                await self._start_media()
        elif kind == "publish_answer":
            assert self._publish is not None
            await self._publish.setRemoteDescription(RTCSessionDescription(sdp=message["sdp"], type="answer"))
        elif kind == "subscribe_offer":
            await self._answer(message["sdp"], message["tracks"])
        elif kind == "error":
            self.errors.append(f"{message.get('code')}: {message.get('message')}")

    # --- media -----------------------------------------------------------------------------

    async def _start_media(self) -> None:
        # the subscribe connection exists before the offer goes: its first offer may come first
        subscribe = self._subscribe = RTCPeerConnection(peer_configuration(SETTINGS))
        subscribe.on("track", lambda track: self._on_track(subscribe, track))

        @subscribe.on("connectionstatechange")
        def _changed() -> None:
            if subscribe.connectionState == "connected" and self.subscribe_connected_at is None:
                self.subscribe_connected_at = time.time()

        self._publish = RTCPeerConnection(peer_configuration(SETTINGS))
        self.video = ClipTrack("video", self.clip)
        for source in (self.video, ClipTrack("audio", self.clip)):
            transceiver = self._publish.addTransceiver(source, direction="sendonly")
            redirect_keyframe_requests(transceiver.sender, source.request_keyframe)
        await self._publish.setLocalDescription(await self._publish.createOffer())
        await self._send("publish_offer", sdp=self._publish.localDescription.sdp)

    async def _answer(self, sdp: str, tracks: list[dict[str, str]]) -> None:
        if self._subscribe is None:
            return
        self._mapping = {t["mid"]: t["participant_id"] for t in tracks}
        await self._subscribe.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        await self._subscribe.setLocalDescription(await self._subscribe.createAnswer())
        enlarge_receive_buffers(self._subscribe)
        await self._send("subscribe_answer", sdp=self._subscribe.localDescription.sdp)

    def _on_track(self, pc: RTCPeerConnection, track: MediaStreamTrack) -> None:
        transceiver = next(t for t in pc.getTransceivers() if t.receiver.track is track)
        ReceiverTap(transceiver.receiver)  # encoded frames, never decoded
        self._spawn(self._read_track(track, transceiver))

    async def _read_track(self, track: MediaStreamTrack, transceiver: Any) -> None:
        kind = track.kind
        try:
            while True:
                packet = await track.recv()
                now = time.time()
                assert isinstance(packet, av.Packet)  # the tap delivers encoded frames
                mid = transceiver.mid or ""
                publisher = self._mapping.get(mid, "?")
                self._receivers[mid] = transceiver.receiver
                remote = self.remote[(publisher, kind)]
                if remote.first_keyframe is None:
                    remote.first_keyframe = bool(packet.is_keyframe)
                remote.times.append(now)
                if kind == "video":
                    self.receipts.append((publisher, self.positions.get(bytes(packet), -1), now))
        except MediaStreamError:
            pass

    def rtp_snapshot(self) -> dict[str, tuple[int, int, int]]:
        """RTP counters per ``publisher/kind``."""
        snapshot: dict[str, tuple[int, int, int]] = {}
        for mid, receiver in list(self._receivers.items()):
            publisher = self._mapping.get(mid, "?")
            snapshot[f"{publisher}/{receiver.track.kind}"] = rtp_counts(receiver)
        return snapshot

    @property
    def publishing(self) -> bool:
        """Whether the publish connection is up."""
        return self._publish is not None and self._publish.connectionState == "connected"

    def video_sources(self, within_s: float = 1.0) -> list[str]:
        """Publishers whose video arrived within the last ``within_s`` seconds."""
        now = time.time()
        return [
            p
            for (p, kind), r in self.remote.items()
            if kind == "video" and r.times and now - r.times[-1] < within_s
        ]

    def report(self, start: float, end: float) -> dict[str, Any]:
        """Everything the benchmark needs from this party about the window [start, end]."""
        remote = {}
        for (publisher, kind), track in self.remote.items():
            remote[f"{publisher}/{kind}"] = {
                "frames": sum(1 for t in track.times if start <= t <= end),
                "first_at": track.times[0] if track.times else None,
                "first_keyframe": track.first_keyframe,
            }
        return {
            "label": self.label,
            "participant_id": self.participant_id,
            "state": self.state,
            "errors": self.errors[:20],
            "join_sent": self.join_sent,
            "subscribe_connected_at": self.subscribe_connected_at,
            "remote": remote,
            "receipts": [r for r in self.receipts if start <= r[2] <= end],
            "sent": self.video.sent_between(start - 5.0, end) if self.video else {},
            "keyframe_requests": self.video.keyframe_requests if self.video else 0,
        }

    async def close(self) -> None:
        self.state = "closed"
        for task in list(self._tasks):
            task.cancel()
        for pc in (self._publish, self._subscribe):
            if pc is not None:
                await pc.close()
        if self._ws is not None:
            await self._ws.close()
        if self._session is not None:
            await self._session.close()

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


# --- the worker process ------------------------------------------------------------------------


async def _sleep_until(wall: float) -> None:
    delay = wall - time.time()
    if delay > 0:
        await asyncio.sleep(delay)


async def _serve(conn: Connection, spec: dict[str, Any]) -> None:
    install_host_addresses(SETTINGS)
    loop = asyncio.get_running_loop()
    orders: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    def listen() -> None:
        while True:
            try:
                order = conn.recv()
            except (EOFError, OSError):
                order = {"op": "stop"}
            loop.call_soon_threadsafe(orders.put_nowait, order)
            if order["op"] == "stop":
                return

    threading.Thread(target=listen, daemon=True).start()
    clip, _ = load_clip()
    positions = clip.positions()
    parties = [
        (Party(p["label"], p["token"], spec["base_url"], clip, positions), bool(p.get("late")))
        for p in spec["parties"]
    ]
    conn.send({"op": "ready"})
    try:
        while True:
            order = await orders.get()
            op = order["op"]
            if op == "join":
                late = bool(order.get("late"))
                await asyncio.gather(*(party.join() for party, is_late in parties if is_late == late))
                conn.send({"op": "joined"})
            elif op == "status":
                conn.send(
                    {
                        "op": "status",
                        "parties": {
                            party.label: {
                                "state": party.state,
                                "publishing": party.publishing,
                                "video_from": party.video_sources(),
                                "errors": party.errors[:5],
                            }
                            for party, _ in parties
                        },
                    }
                )
            elif op == "measure":
                await _sleep_until(order["start"])
                rtp_start = {party.label: party.rtp_snapshot() for party, _ in parties}
                cpu_start = time.process_time()
                await _sleep_until(order["end"])
                cpu = time.process_time() - cpu_start
                reports = []
                for party, late in parties:
                    report = party.report(order["start"], order["end"])
                    report["late"] = late
                    report["rtp_start"] = rtp_start[party.label]
                    report["rtp_end"] = party.rtp_snapshot()
                    reports.append(report)
                conn.send({"op": "measured", "cpu_s": cpu, "parties": reports})
            elif op == "stop":
                break
    finally:
        for party, _ in parties:
            try:
                await asyncio.wait_for(party.close(), 5)
            except Exception:  # noqa: BLE001, S110 - closing at the end; the process exits next
                pass
        conn.send({"op": "stopped"})


def worker_main(conn: Connection, spec: dict[str, Any]) -> None:
    """Entry point of a worker process: run its parties until told to stop (uvloop when present)."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(_serve(conn, spec))
    else:
        uvloop.run(_serve(conn, spec))
