"""The signaling bridge: a participant's WebSocket reaching a node that does not host its hearing is piped
to the hosting node's internal endpoint ``/internal/bridge`` (signed openings, see cluster.bridge_auth)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from datetime import UTC, datetime

import aiohttp
from aiohttp import WSMsgType, web
from sqlalchemy.exc import SQLAlchemyError

from hearing_server.auth.client import client_ip
from hearing_server.auth.invitations import resolve_invitation
from hearing_server.cluster.bridge_auth import BridgeOpening, BridgeRefused, sign_opening
from hearing_server.cluster.leases import ClusterFull, Host, LeaseHeld
from hearing_server.cluster.node import CLUSTER_NODE
from hearing_server.config import CONFIG
from hearing_server.domain.errors import HearingError
from hearing_server.domain.ids import is_valid_id
from hearing_server.store.db import SESSIONS
from hearing_server.web.cluster import BRIDGE_VERIFIER

log = logging.getLogger(__name__)

BRIDGE_PATH = "/internal/bridge"
CONNECT_TIMEOUT_S = 5.0


async def hearing_of_join(app: web.Application, text: str) -> str | None:
    """The hearing a first ``join`` message asks for (None: not a usable join; the session answers it)."""
    try:
        message = json.loads(text)
    except ValueError:
        return None
    if not isinstance(message, dict) or message.get("type") != "join":
        return None
    hearing_id = message.get("hearing_id")
    if isinstance(hearing_id, str) and is_valid_id(hearing_id):
        return hearing_id
    token = message.get("token")
    if not isinstance(token, str) or len(token) > 200:
        return None
    async with app[SESSIONS]() as session:
        try:
            _invitation, _party, hearing = await resolve_invitation(session, token, datetime.now(UTC))
        except HearingError:
            return None
    return hearing.id


async def remote_host(app: web.Application, text: str) -> tuple[str, Host] | None:
    """The other node to bridge this connection to, or None when it is served here (or refused here)."""
    node = app.get(CLUSTER_NODE)
    if node is None:
        return None
    try:
        hearing_id = await hearing_of_join(app, text)
    except (SQLAlchemyError, OSError):
        return None
    if hearing_id is None:
        return None
    try:
        host = await node.table.place(hearing_id)
    except LeaseHeld as exc:
        if exc.stale:
            return None  # being recovered: the local join answers with the refusal
        host = exc.host
    except (ClusterFull, SQLAlchemyError, OSError):
        return None  # the local join gives the same answer as a protocol error
    if host.node_id == node.node_id:
        return None
    return hearing_id, host


async def bridge(
    app: web.Application,
    request: web.Request,
    ws: web.WebSocketResponse,
    first: str,
    hearing_id: str,
    host: Host,
) -> None:
    """Pipe the client's socket to ``host`` until either side closes, starting with ``first``."""
    config = app[CONFIG]
    headers = sign_opening(
        config.cluster_secret,
        from_node=config.node_id,
        to_node=host.node_id,
        hearing_id=hearing_id,
        client_ip=client_ip(request),
        client_agent=request.headers.get("User-Agent", ""),
    )
    cookie = request.headers.get("Cookie")
    if cookie:
        headers["Cookie"] = cookie  # a staff member's login session, checked by the host
    url = (
        host.internal_url.rstrip("/").replace("https://", "wss://").replace("http://", "ws://") + BRIDGE_PATH
    )
    timeout = aiohttp.ClientTimeout(total=None, connect=CONNECT_TIMEOUT_S)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        try:
            upstream = await http.ws_connect(url, headers=headers, ssl=False, heartbeat=15.0)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            log.warning("bridge to node %s failed: %s", host.node_id, exc)
            await ws.send_str(
                json.dumps(
                    {
                        "type": "error",
                        "code": "internal_error",
                        "message": "the hosting node cannot be reached",
                    }
                )
            )
            await ws.close(code=1011)
            return
        log.info("bridging a client of hearing %s to node %s", hearing_id, host.node_id)
        await upstream.send_str(first)
        await _pipe(ws, upstream)


async def _pipe(client: web.WebSocketResponse, upstream: aiohttp.ClientWebSocketResponse) -> None:
    async def down() -> None:
        async for frame in upstream:
            if frame.type is WSMsgType.TEXT:
                await client.send_str(frame.data)
        await client.close(code=upstream.close_code or 1001)

    async def up() -> None:
        async for frame in client:
            if frame.type is WSMsgType.TEXT:
                await upstream.send_str(frame.data)
            elif frame.type is WSMsgType.BINARY:
                await upstream.send_bytes(frame.data)
        await upstream.close(code=client.close_code or 1000)

    tasks = [asyncio.ensure_future(down()), asyncio.ensure_future(up())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await upstream.close()
        with contextlib.suppress(Exception):
            await client.close()


def verify_opening(request: web.Request) -> BridgeOpening:
    """The signed bridge opening of this request (hearing, client address and user agent, bridging node),
    or HTTP 403."""
    try:
        return request.app[BRIDGE_VERIFIER].verify(request.headers)
    except BridgeRefused as exc:
        log.warning("bridge opening from %s refused: %s", request.remote, exc)
        raise web.HTTPForbidden(text=f"bridge opening refused: {exc}") from exc
