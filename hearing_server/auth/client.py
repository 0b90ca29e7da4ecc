"""What the server may record about the caller: network address and user agent."""

from __future__ import annotations

from aiohttp import web

from hearing_server.config import CONFIG

MAX_USER_AGENT = 400


def client_ip(request: web.Request) -> str:
    """The caller's address; behind the reverse proxy (``plain_http``) the last X-Forwarded-For hop."""
    if request.app[CONFIG].plain_http:
        forwarded = request.headers.get("X-Forwarded-For", "")
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if hops:
            return hops[-1][:64]
    return (request.remote or "")[:64]


def user_agent(request: web.Request) -> str:
    """The caller's User-Agent header, shortened to what the database keeps."""
    return request.headers.get("User-Agent", "")[:MAX_USER_AGENT]
