"""The signaling endpoint ``GET /ws`` and its wiring into the application."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from urllib.parse import urlsplit

from aiohttp import WSMessage, WSMsgType, web

from hearing_server import turn
from hearing_server.api.metrics import METRICS
from hearing_server.api.registry import ROUTES, endpoint
from hearing_server.auth.access import PUBLIC
from hearing_server.auth.client import client_ip, user_agent
from hearing_server.auth.guessing import GuessGuard
from hearing_server.cluster.node import CLUSTER_NODE
from hearing_server.config import CONFIG, Config
from hearing_server.record.event_log import EVENTS
from hearing_server.services.room_store import SqlRoomStore
from hearing_server.store.db import SESSIONS
from hearing_server.web.bridge import BRIDGE_PATH, bridge, remote_host, verify_opening
from hearing_server.web.entry import ConnectionGate, LiveEntry
from media.stats import MediaStats
from signaling.admission import SocketAdmission
from signaling.live import LiveHearings, media_factory_counting_into
from signaling.room.media_session import MediaFactory, RecordingFactory
from signaling.room.participant import ClientInfo
from signaling.room.store import RoomSettings
from signaling.session import SignalingSession

LIVE_HEARINGS = web.AppKey("live_hearings", LiveHearings)
LIVE_ENTRY = web.AppKey("live_entry", LiveEntry)
SOCKET_ADMISSION = web.AppKey("socket_admission", SocketAdmission)
MEDIA_FACTORY: web.AppKey[MediaFactory] = web.AppKey("media_factory")
RECORDING_FACTORY: web.AppKey[RecordingFactory] = web.AppKey("recording_factory")
ON_ENDED: web.AppKey[Callable[[str], Awaitable[None]]] = web.AppKey("on_hearing_ended")
BRIDGED: web.AppKey[set[web.WebSocketResponse]] = web.AppKey("bridged_sockets")
HEARTBEAT_S = 15.0


def _origin(url: str) -> str:
    parts = urlsplit(url.strip().lower())
    return f"{parts.scheme}://{parts.netloc}"


def origin_allowed(request: web.Request, config: Config) -> bool:
    """Whether the page that opened the socket is served by this server (stops cross-site WebSockets)."""
    origin = request.headers.get("Origin")
    if not origin or origin == "null":
        return False
    allowed = {_origin(config.effective_public_url), _origin(f"{request.scheme}://{request.host}")}
    return _origin(origin) in allowed


async def websocket(request: web.Request) -> web.StreamResponse:
    """Upgrade to the signaling WebSocket and serve it until it closes."""
    config = request.app[CONFIG]
    if not origin_allowed(request, config):
        raise web.HTTPForbidden(text="origin not allowed")
    ws = web.WebSocketResponse(heartbeat=HEARTBEAT_S, max_msg_size=2 * config.ws_max_message_bytes)
    if not ws.can_prepare(request).ok:
        raise web.HTTPBadRequest(text="WebSocket upgrade expected")
    client = ClientInfo(ip=client_ip(request), user_agent=user_agent(request))
    ticket = request.app[SOCKET_ADMISSION].enter(client.ip)
    if ticket is None:
        raise web.HTTPTooManyRequests(text="too many signaling connections from this address")
    try:
        await ws.prepare(request)
        connected_at = asyncio.get_running_loop().time()
        first: WSMessage | None = None
        if CLUSTER_NODE in request.app:
            # A cluster node looks at the join first: a hearing hosted by another node is bridged there.
            # The join deadline runs from the upgrade, so it covers this read too (a socket silent past it
            # goes to the session, whose deadline has passed: it answers join_timeout and closes).
            with contextlib.suppress(TimeoutError):
                first = await ws.receive(timeout=config.ws_join_timeout_s)
            if first is not None:
                if first.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                    return ws
                if first.type is WSMsgType.TEXT and len(first.data) <= config.ws_max_message_bytes:
                    remote = await remote_host(request.app, first.data)
                    if remote is not None:
                        # The hosting node seats the party (and enforces its join deadline on the bridge);
                        # here the socket counts as joined, so parties behind one address are not capped
                        # at the unjoined limit.
                        ticket.joined()
                        bridges = request.app[BRIDGED]
                        bridges.add(ws)
                        try:
                            await bridge(request.app, request, ws, first.data, *remote)
                        finally:
                            bridges.discard(ws)
                        return ws
        gate = ConnectionGate(request.app[LIVE_ENTRY], request, client.ip)
        session = SignalingSession(
            ws,
            client,
            request.app[LIVE_HEARINGS],
            gate,
            first=first,
            ticket=ticket,
            join_timeout_s=config.ws_join_timeout_s,
            connected_at=connected_at,
        )
        await session.run()
    finally:
        ticket.leave()
    return ws


async def bridged_websocket(request: web.Request) -> web.StreamResponse:
    """The hosting node's end of the bridge: a signed opening from another node, then a normal session
    with the party's own address and user agent, and the node that bridged it (in the log's entries)."""
    opening = verify_opening(request)
    ip = opening.client_ip
    config = request.app[CONFIG]
    ws = web.WebSocketResponse(heartbeat=HEARTBEAT_S, max_msg_size=2 * config.ws_max_message_bytes)
    if not ws.can_prepare(request).ok:
        raise web.HTTPBadRequest(text="WebSocket upgrade expected")
    await ws.prepare(request)
    client = ClientInfo(ip=ip, user_agent=opening.client_agent, via_node=opening.from_node)
    gate = ConnectionGate(request.app[LIVE_ENTRY], request, ip)
    # The bridging node admitted the socket (SocketAdmission); the join deadline applies here as well.
    session = SignalingSession(
        ws, client, request.app[LIVE_HEARINGS], gate, join_timeout_s=config.ws_join_timeout_s
    )
    await session.run()
    return ws


def room_settings(config: Config) -> RoomSettings:
    """The live room's settings from the server's configuration."""
    return RoomSettings(
        max_participants=config.max_participants,
        reconnect_grace_s=config.reconnect_grace_s,
        timezone=config.timezone,
        ice_host_addresses=list(config.ice_host_addresses),
        ice_servers=list(config.ice_servers),
        ice_servers_for=turn.ice_servers_for(config),
        video_codec=config.video_codec,
        ws_max_message_bytes=config.ws_max_message_bytes,
        ws_messages_per_s=config.ws_messages_per_s,
        readmit_after_interruption=config.readmit_after_interruption,
        node_id=config.node_id,
    )


async def _live_hearings(app: web.Application) -> AsyncIterator[None]:
    config, refused = app[CONFIG], app[METRICS].refused_guesses
    guesses = GuessGuard(
        config.token_failures_per_address,
        config.token_failures_budget,
        on_refused=lambda scope: refused.labels(scope).inc(),
    )
    app[LIVE_ENTRY] = LiveEntry(app[SESSIONS], app[EVENTS], guesses)
    media_stats = MediaStats()
    if METRICS in app:
        app[METRICS].watch_media(media_stats)
    node = app.get(CLUSTER_NODE)
    registry = LiveHearings(
        room_settings(app[CONFIG]),
        SqlRoomStore(app[SESSIONS], app[EVENTS]),
        media_factory=app.get(MEDIA_FACTORY) or media_factory_counting_into(media_stats),
        recording_factory=app.get(RECORDING_FACTORY),
        on_ended=app.get(ON_ENDED),
        placement=node,
    )
    app[LIVE_HEARINGS] = registry
    if node is not None:
        node.attach(registry.hosted, registry.leave)  # hearing_server.web.drain adds what a drain does
    yield
    await registry.close(config.shutdown_grace_s)


async def _interrupt_live_hearings(app: web.Application) -> None:
    # Runs before open connections are cancelled, so hearings end as "interrupted", not as mass disconnects.
    if LIVE_HEARINGS in app:
        await app[LIVE_HEARINGS].close(app[CONFIG].shutdown_grace_s)
    # Bridged clients go away now (their pages reconnect through another node), not at the shutdown timeout.
    for ws in list(app.get(BRIDGED, ())):
        with contextlib.suppress(Exception):
            await ws.close(code=1001)


def setup(
    app: web.Application,
    *,
    media_factory: MediaFactory | None = None,
    recording_factory: RecordingFactory | None = None,
    on_ended: Callable[[str], Awaitable[None]] | None = None,
) -> None:
    """Add ``/ws`` and the live-hearing registry; call after the database wiring of ``create_app``."""
    if media_factory is not None:
        app[MEDIA_FACTORY] = media_factory
    if recording_factory is not None:
        app[RECORDING_FACTORY] = recording_factory
    if on_ended is not None:
        app[ON_ENDED] = on_ended
    app[ROUTES].add(
        endpoint(
            "GET",
            "/ws",
            access=PUBLIC,  # the socket authenticates its first message (invitation token or staff session)
            summary="Signaling WebSocket of live hearings (docs/protocol.md)",
            tag="live",
            raw=True,
            openapi=False,
        )(websocket)
    )
    if app[CONFIG].clustered:
        app[ROUTES].add(
            endpoint(
                "GET",
                BRIDGE_PATH,
                access=PUBLIC,  # between nodes: every opening is signed with the cluster secret (bridge_auth)
                summary="Internal signaling bridge from another node of the cluster",
                tag="live",
                raw=True,
                openapi=False,
            )(bridged_websocket)
        )
    app[BRIDGED] = set()
    config = app[CONFIG]
    app[SOCKET_ADMISSION] = SocketAdmission(config.ws_per_address, config.ws_unjoined_per_address)
    app.cleanup_ctx.append(_live_hearings)
    app.on_shutdown.append(_interrupt_live_hearings)
