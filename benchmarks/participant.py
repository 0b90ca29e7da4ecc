"""Synthetic parties: aiortc sets up ICE/DTLS through the real join path, then RTP goes by hand.

A :class:`Party` joins our server like a phone: it presents its invitation token on ``/ws``,
confirms the notice with the SHA-256 the server sent, says ``ready``, waits to be admitted,
sends ``publish_offer`` and answers every ``subscribe_offer``.  A :class:`JanusParty` joins a
Janus VideoRoom room over the Janus HTTP API (publisher ``joinandconfigure`` with its offer; one
subscriber handle with ``streams: [{feed}]``, extended by ``subscribe`` as publishers appear).
Both publish the pre-packetized clip and count what they receive on the raw sockets
(:mod:`benchmarks.rawmedia`); aiortc never encodes, decodes, packetizes or depacketizes.

:func:`worker_main` runs a few parties in one process (multiprocessing, spawn, pinned to the
load generator's CPU) and takes its orders from the benchmark over a pipe.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

import aiohttp
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.rtcconfiguration import RTCBundlePolicy

from benchmarks.janus_server import JanusApi
from benchmarks.media import PacketizedClip, load_clip
from benchmarks.rawmedia import (
    Inbox,
    OutStream,
    Pacer,
    RawPath,
    SilentTrack,
    mute_sender_rtcp,
    publish_streams,
    publisher_feedback,
)

HOST_ADDRESSES = ["127.0.0.1"]  # loopback only, no STUN/TURN


def install_host_addresses() -> None:
    """Make aioice offer 127.0.0.1 (it skips loopback addresses when it gathers host candidates)."""
    import aioice.ice

    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: list(HOST_ADDRESSES)


def peer_connection() -> RTCPeerConnection:
    """A peer connection with no STUN/TURN server and one transport for everything."""
    return RTCPeerConnection(RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))


class CheapParty:
    """The media half of a synthetic party: a publish and a subscribe connection on raw sockets."""

    def __init__(self, label: str, clip: PacketizedClip, pacer: Pacer) -> None:
        self.label = label
        self.clip = clip
        self.pacer = pacer
        self.participant_id = ""
        self.state = "new"
        self.errors: list[str] = []
        self.join_sent: float | None = None
        self.subscribe_connected_at: float | None = None
        self.streams: list[OutStream] = []
        self.inbox: Inbox | None = None
        self._publish: RTCPeerConnection | None = None
        self._subscribe: RTCPeerConnection | None = None
        self._publish_path: RawPath | None = None
        self._offer_sdp = ""
        self._mapping: dict[str, str] = {}  # subscribe mid → publisher
        self._tasks: set[asyncio.Task[None]] = set()

    async def join(self) -> None:
        """Start joining (signaling of the SFU under test)."""
        raise NotImplementedError

    # --- publish -------------------------------------------------------------------------------

    async def _publish_offer(self) -> str:
        """Create the publish connection (video + audio, send only) and return its offer."""
        pc = self._publish = peer_connection()
        for kind in ("video", "audio"):
            transceiver = pc.addTransceiver(SilentTrack(kind), direction="sendonly")
            mute_sender_rtcp(transceiver.sender)
        await pc.setLocalDescription(await pc.createOffer())
        self._publish_path = RawPath(pc, on_rtp=lambda data, now: None, on_rtcp=lambda data: None)
        self._publish_path.attach()
        self._offer_sdp = pc.localDescription.sdp
        return self._offer_sdp

    async def _publish_answered(self, sdp: str) -> None:
        """Apply the SFU's answer; start sending once DTLS is up."""
        assert self._publish is not None and self._publish_path is not None
        await self._publish.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        if self.streams:
            return
        self.streams = publish_streams(self._offer_sdp, sdp, self._publish_path, self.clip)
        self._publish_path.on_rtcp = publisher_feedback(self.streams)
        self._spawn(self._start_sending(self._publish_path))

    async def _start_sending(self, path: RawPath) -> None:
        deadline = time.monotonic() + 30
        while not path.ready:
            if time.monotonic() > deadline:
                self.errors.append("publish connection not up within 30 s")
                return
            await asyncio.sleep(0.01)
        for stream in self.streams:
            self.pacer.add(stream)

    # --- subscribe -----------------------------------------------------------------------------

    async def _subscribe_answer(self, sdp: str, mapping: dict[str, str]) -> str:
        """Answer an offer of the SFU's subscribe connection; the first one creates it."""
        pc = self._subscribe
        if pc is None:
            pc = self._subscribe = peer_connection()

            @pc.on("connectionstatechange")
            def _changed() -> None:
                if pc.connectionState == "connected" and self.subscribe_connected_at is None:
                    self.subscribe_connected_at = time.time()

        self._mapping.update(mapping)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        if self.inbox is None:

            def path_for(inbox: Inbox, pc: RTCPeerConnection = pc) -> RawPath:
                return RawPath(pc, on_rtp=inbox.on_rtp, on_rtcp=inbox.on_rtcp, lazy=True)

            self.inbox = Inbox(path_for, self.clip.keys)
            self.inbox.path.attach()
            self.pacer.add_inbox(self.inbox)
        self.inbox.describe(sdp, self._mapping)
        return str(pc.localDescription.sdp)

    # --- status and report ---------------------------------------------------------------------

    @property
    def publishing(self) -> bool:
        """Whether the publish connection is up and sending."""
        return self._publish_path is not None and self._publish_path.ready and bool(self.streams)

    def video_sources(self, within_s: float = 1.0) -> list[str]:
        """Publishers whose video arrived within the last ``within_s`` seconds."""
        if self.inbox is None:
            return []
        now = time.time()
        sources = []
        for ssrc, track in list(self.inbox.tracks.items()):
            publisher, kind = self.inbox.key_of(ssrc)
            if kind == "video" and track.keyframe_at is not None and now - track.last_at < within_s:
                sources.append(publisher)
        return sources

    def rtp_snapshot(self) -> dict[str, tuple[int, int, int]]:
        """RTP counters per ``publisher/kind``."""
        return self.inbox.counters() if self.inbox is not None else {}

    def report(self, start: float, end: float) -> dict[str, Any]:
        """Everything the benchmark needs from this party about the window [start, end]."""
        remote: dict[str, dict[str, Any]] = {}
        receipts: list[tuple[str, int, float]] = []
        if self.inbox is not None:
            for ssrc, track in list(self.inbox.tracks.items()):
                publisher, kind = self.inbox.key_of(ssrc)
                remote[f"{publisher}/{kind}"] = {
                    "frames": sum(1 for t in track.frames if start <= t <= end),
                    "first_at": track.keyframe_at if kind == "video" else track.first_at,
                    "first_keyframe": track.first_keyframe,
                }
            receipts = [
                (self.inbox.key_of(ssrc)[0], position, at)
                for ssrc, position, at in self.inbox.receipts
                if start <= at <= end
            ]
        video = next((s for s in self.streams if s.kind == "video"), None)
        paths = [p for p in (self._publish_path, self.inbox.path if self.inbox else None) if p is not None]
        return {
            "label": self.label,
            "participant_id": self.participant_id,
            "state": self.state,
            "errors": self.errors[:20],
            "join_sent": self.join_sent,
            "subscribe_connected_at": self.subscribe_connected_at,
            "remote": remote,
            "receipts": receipts,
            "sent": video.sent_between(start - 5.0, end) if video else {},
            "keyframe_requests": video.keyframe_requests if video else 0,
            "retransmitted_by_publisher": sum(s.retransmitted for s in self.streams),
            "srtp_errors": sum(p.srtp_errors for p in paths),
        }

    async def close(self) -> None:
        """Close both connections."""
        self.state = "closed"
        for task in list(self._tasks):
            task.cancel()
        for pc in (self._publish, self._subscribe):
            if pc is not None:
                await pc.close()

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


class Party(CheapParty):
    """A party of a hearing on our server, on its own WebSocket with its invitation token."""

    def __init__(self, label: str, token: str, base_url: str, clip: PacketizedClip, pacer: Pacer) -> None:
        super().__init__(label, clip, pacer)
        self.token = token
        self.base_url = base_url
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._readied = self._published = False

    async def join(self) -> None:
        """Open ``/ws`` and present the invitation token."""
        self._session = aiohttp.ClientSession()
        self._ws = await self._session.ws_connect(
            f"{self.base_url}/ws", headers={"Origin": self.base_url, "User-Agent": "BenchParty/2.0"}
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
                await self._send("publish_offer", sdp=await self._publish_offer())
        elif kind == "publish_answer":
            await self._publish_answered(message["sdp"])
        elif kind == "subscribe_offer":
            mapping = {t["mid"]: t["participant_id"] for t in message["tracks"]}
            await self._send("subscribe_answer", sdp=await self._subscribe_answer(message["sdp"], mapping))
        elif kind == "error":
            self.errors.append(f"{message.get('code')}: {message.get('message')}")

    async def close(self) -> None:
        """Close the connections and the WebSocket."""
        await super().close()
        if self._ws is not None:
            await self._ws.close()
        if self._session is not None:
            await self._session.close()


class JanusParty(CheapParty):
    """A participant of a Janus VideoRoom room: one session, a publisher and a subscriber handle."""

    def __init__(self, label: str, room: int, base_url: str, clip: PacketizedClip, pacer: Pacer) -> None:
        super().__init__(label, clip, pacer)
        self.room = room
        self.base_url = base_url
        self._http: aiohttp.ClientSession | None = None
        self._api: JanusApi | None = None
        self._publisher_handle = 0
        self._subscriber_handle = 0
        self._feeds: set[int] = set()
        self._subscribing = asyncio.Lock()

    async def join(self) -> None:
        """Create the session, join as publisher and configure with the offer."""
        self._http = aiohttp.ClientSession()
        api = self._api = JanusApi(self.base_url, self._http)
        self.join_sent = time.time()
        await api.create()
        self._publisher_handle = await api.attach()
        self._spawn(self._poll())
        offer = await self._publish_offer()
        await api.message(
            self._publisher_handle,
            {
                "request": "joinandconfigure",
                "ptype": "publisher",
                "room": self.room,
                "display": self.label,
                "audio": True,
                "video": True,
            },
            jsep={"type": "offer", "sdp": offer},
        )

    async def _poll(self) -> None:
        assert self._api is not None
        while self.state != "closed":
            try:
                events = await self._api.events()
            except (TimeoutError, aiohttp.ClientError) as exc:
                if self.state != "closed":
                    self.errors.append(f"events: {type(exc).__name__}: {exc}")
                await asyncio.sleep(0.5)
                continue
            for event in events:
                try:
                    await self._event(event)
                except Exception as exc:  # noqa: BLE001 - a party reports, the benchmark decides
                    self.errors.append(f"{type(exc).__name__}: {exc}")

    async def _event(self, event: dict[str, Any]) -> None:
        assert self._api is not None
        if event.get("janus") != "event":
            return
        data = event.get("plugindata", {}).get("data", {})
        jsep = event.get("jsep")
        if "error" in data:
            self.errors.append(f"janus: {data.get('error_code')} {data['error']}")
        if event.get("sender") == self._publisher_handle:
            if data.get("videoroom") == "joined":
                self.participant_id = str(data["id"])
                self.state = "in_hearing"
            if jsep is not None and jsep.get("type") == "answer":
                await self._publish_answered(jsep["sdp"])
            feeds = [int(p["id"]) for p in data.get("publishers") or [] if int(p["id"]) not in self._feeds]
            if feeds:
                self._spawn(self._subscribe_to(feeds))
        elif event.get("sender") == self._subscriber_handle:
            for stream in data.get("streams") or []:
                if "feed_id" in stream and "mid" in stream:
                    self._mapping[str(stream["mid"])] = str(stream["feed_id"])
            if jsep is not None and jsep.get("type") == "offer":
                answer = await self._subscribe_answer(jsep["sdp"], {})
                await self._api.message(
                    self._subscriber_handle, {"request": "start"}, jsep={"type": "answer", "sdp": answer}
                )

    async def _subscribe_to(self, feeds: list[int]) -> None:
        assert self._api is not None
        async with self._subscribing:
            feeds = [feed for feed in feeds if feed not in self._feeds]
            if not feeds:
                return
            self._feeds.update(feeds)
            streams = [{"feed": feed} for feed in feeds]
            if not self._subscriber_handle:
                self._subscriber_handle = await self._api.attach()
                await self._api.message(
                    self._subscriber_handle,
                    {"request": "join", "ptype": "subscriber", "room": self.room, "streams": streams},
                )
            else:
                await self._api.message(self._subscriber_handle, {"request": "subscribe", "streams": streams})

    async def close(self) -> None:
        """Close the connections and destroy the Janus session."""
        await super().close()
        if self._api is not None:
            with contextlib.suppress(Exception):
                await self._api.destroy()
        if self._http is not None:
            await self._http.close()


# --- the worker process ------------------------------------------------------------------------


async def _sleep_until(wall: float) -> None:
    delay = wall - time.time()
    if delay > 0:
        await asyncio.sleep(delay)


def _make_party(
    spec: dict[str, Any], party: dict[str, Any], clip: PacketizedClip, pacer: Pacer
) -> CheapParty:
    if spec.get("sfu") == "janus":
        return JanusParty(party["label"], int(party["room"]), spec["base_url"], clip, pacer)
    return Party(party["label"], party["token"], spec["base_url"], clip, pacer)


async def _serve(conn: Connection, spec: dict[str, Any]) -> None:
    install_host_addresses()
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
    clip = PacketizedClip.of(load_clip()[0])
    pacer = Pacer()
    parties = [(_make_party(spec, p, clip, pacer), bool(p.get("late"))) for p in spec["parties"]]
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
                sent_start = pacer.packets_sent()
                times_start = os.times()
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
                sent = pacer.packets_sent() - sent_start
                times = os.times()
                conn.send(
                    {
                        "op": "measured",
                        "cpu_s": cpu,
                        "system_s": times.system - times_start.system,
                        "packets_sent": sent,
                        "parties": reports,
                    }
                )
            elif op == "stop":
                break
    finally:
        pacer.stop()
        for party, _ in parties:
            try:
                await asyncio.wait_for(party.close(), 5)
            except Exception:  # noqa: BLE001, S110 - closing at the end; the process exits next
                pass
        conn.send({"op": "stopped"})


def worker_main(conn: Connection, spec: dict[str, Any]) -> None:
    """Entry point of a worker process: run its parties until told to stop (uvloop when present)."""
    cpus = spec.get("cpus")
    if cpus:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, set(cpus))
    try:
        import uvloop
    except ImportError:
        asyncio.run(_serve(conn, spec))
    else:
        uvloop.run(_serve(conn, spec))
