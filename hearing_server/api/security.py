"""Security headers on every response (pages, API, errors, files, WebSocket handshakes)."""

from __future__ import annotations

from aiohttp import web

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
# connect-src 'self' covers the same-origin WebSocket (ws: for http, wss: for https; CSP Level 3), and nothing
# else: a bare ``wss: ws:`` would let an injected script open sockets to any host, even in cleartext.
HSTS = "max-age=31536000"

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Permissions-Policy": "camera=(self), microphone=(self)",
}


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Set the headers just before a response is sent; HSTS only over HTTPS.

    Runs as an ``on_response_prepare`` signal rather than a middleware so that it also covers responses
    that never pass through middlewares' return path (static files, WebSocket handshakes).
    """
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if request.secure:
        response.headers.setdefault("Strict-Transport-Security", HSTS)


def setup(app: web.Application) -> None:
    """Install the headers on ``app``."""
    app.on_response_prepare.append(add_security_headers)
