"""The listening socket: per-address connection caps, header and TLS-handshake timeouts, and the serve loop.

aiohttp's ``run_app`` opens its socket with asyncio's defaults — a 60 s TLS handshake, no cap per client
address — so a few hosts could hold thousands of half-open connections (#18.4). :func:`serve` runs the same
application the same way (signals, graceful shutdown) on a :class:`GuardedSite` instead: handshakes must
finish within ``tls_handshake_timeout_s``; headers must arrive within ``http_header_timeout_s`` (aiohttp's
keep-alive timer, which also runs from the moment a connection opens); and an address holding
``connections_per_address`` connections has further ones closed at once. Behind the reverse proxy
(``plain_http``) every connection comes from the proxy, so no per-address cap applies there.

The cap is checked when the TCP connection arrives, before the TLS handshake: the TLS layer is asyncio's own
``SSLProtocol`` (what ``create_server(ssl=...)`` puts in front of a protocol), inserted by
:class:`_CappedProtocol` itself; it works the same on uvloop's transports.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from asyncio.sslproto import SSLProtocol
from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiohttp.web_runner import GracefulExit

from hearing_server.config import Config

log = logging.getLogger(__name__)

REFUSAL_LOG_INTERVAL_S = 60.0


class AddressCap:
    """Counts open connections per client address and refuses those beyond ``limit`` (0: no cap)."""

    def __init__(self, limit: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._limit = limit
        self._open: dict[str, int] = {}
        self._clock = clock
        self._last_warning = float("-inf")
        self.refused = 0

    def take(self, address: str) -> bool:
        """Count a new connection from ``address``; False (and not counted) when it is at the cap."""
        count = self._open.get(address, 0)
        if self._limit and count >= self._limit:
            self.refused += 1
            now = self._clock()
            if now - self._last_warning >= REFUSAL_LOG_INTERVAL_S:
                self._last_warning = now
                log.warning("refusing connections from %s: %d open (the cap)", address, count)
            return False
        self._open[address] = count + 1
        return True

    def give_back(self, address: str) -> None:
        """A connection from ``address`` closed."""
        count = self._open.get(address, 0) - 1
        if count > 0:
            self._open[address] = count
        else:
            self._open.pop(address, None)

    def open(self, address: str) -> int:
        """Connections ``address`` holds now."""
        return self._open.get(address, 0)


class _CappedProtocol(asyncio.Protocol):
    """Stands in front of aiohttp's request handler: a connection passes the address cap on arrival, then
    (over HTTPS) its TLS handshake, and only then reaches aiohttp. Counting before the handshake keeps a
    flood of half-open handshakes from one address as bounded as finished connections."""

    def __init__(
        self,
        handler: Callable[[], asyncio.Protocol],
        cap: AddressCap,
        tls: ssl.SSLContext | None,
        handshake_timeout_s: float,
    ) -> None:
        self._handler = handler
        self._cap = cap
        self._tls = tls
        self._handshake_timeout = handshake_timeout_s
        self._inner: asyncio.Protocol | None = None
        self._address: str | None = None  # set while the connection counts against its address

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._inner is not None:  # the TLS layer reports its own (secure) transport: hand it on
            self._inner.connection_made(transport)
            return
        peer = transport.get_extra_info("peername")
        address = str(peer[0]) if isinstance(peer, tuple) and peer else ""
        if not self._cap.take(address):
            abort = getattr(transport, "abort", transport.close)  # no lingering close for a refused one
            abort()
            return
        self._address = address
        self._inner = self._handler()
        if self._tls is None:
            self._inner.connection_made(transport)
            return
        # The TLS layer goes in between now, before a byte is read (no race with the ClientHello); it
        # calls connection_made again once the handshake is done, or fails the waiter.
        handshake: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        handshake.add_done_callback(self._handshake_done)
        secure = SSLProtocol(
            asyncio.get_running_loop(),
            self,
            self._tls,
            handshake,
            server_side=True,
            ssl_handshake_timeout=self._handshake_timeout,  # type: ignore[arg-type]  # a float works
        )
        transport.set_protocol(secure)
        secure.connection_made(transport)

    def _handshake_done(self, handshake: asyncio.Future[None]) -> None:
        if handshake.cancelled() or handshake.exception() is not None:
            self._release()  # aiohttp never saw this connection

    def _release(self) -> None:
        if self._address is not None:
            self._cap.give_back(self._address)
            self._address = None

    def connection_lost(self, exc: Exception | None) -> None:
        self._release()
        if self._inner is not None:
            inner, self._inner = self._inner, None
            inner.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._inner is not None:
            self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._inner is not None else None

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()


class GuardedSite(web.TCPSite):
    """A TCP site with a per-address connection cap in front of the TLS handshake, and a handshake timeout."""

    def __init__(
        self,
        runner: web.AppRunner,
        host: str,
        port: int,
        *,
        ssl_context: ssl.SSLContext | None,
        handshake_timeout_s: float,
        cap: AddressCap,
    ) -> None:
        # A deep accept queue: under a flood, legitimate SYNs are not dropped and retried for seconds.
        super().__init__(runner, host, port, ssl_context=ssl_context, backlog=1024)
        self._handshake_timeout = handshake_timeout_s
        self.cap = cap

    async def start(self) -> None:
        """Listen; each connection passes the cap (and the TLS handshake) before aiohttp sees it."""
        await web.BaseSite.start(self)
        server = self._runner.server
        assert server is not None
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _CappedProtocol(server, self.cap, self._ssl_context, self._handshake_timeout),
            self._host,
            self._port,
            backlog=self._backlog,
            reuse_address=True,
        )


async def _run(
    app: web.Application,
    config: Config,
    ssl_context: ssl.SSLContext | None,
    announce: Callable[[], None],
    runner_options: dict[str, Any],
) -> None:
    runner = web.AppRunner(
        app, handle_signals=True, keepalive_timeout=config.http_header_timeout_s, **runner_options
    )
    await runner.setup()
    try:
        cap = AddressCap(0 if config.plain_http else config.connections_per_address)
        site = GuardedSite(
            runner,
            config.host,
            config.port,
            ssl_context=ssl_context,
            handshake_timeout_s=config.tls_handshake_timeout_s,
            cap=cap,
        )
        await site.start()
        announce()
        await asyncio.Event().wait()  # until a signal raises GracefulExit
    finally:
        await runner.cleanup()


def serve(
    app: web.Application,
    config: Config,
    ssl_context: ssl.SSLContext | None,
    *,
    announce: Callable[[], None],
    loop: asyncio.AbstractEventLoop | None = None,
    **runner_options: Any,
) -> None:
    """Serve ``app`` until SIGINT or SIGTERM, then shut down gracefully (as ``aiohttp.web.run_app``)."""
    loop = loop or asyncio.new_event_loop()
    main = loop.create_task(_run(app, config, ssl_context, announce, runner_options))
    try:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(main)
    except (GracefulExit, KeyboardInterrupt):
        pass
    finally:
        try:
            if not main.done():
                main.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    loop.run_until_complete(main)
        finally:
            _cancel_all(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()


def _cancel_all(loop: asyncio.AbstractEventLoop) -> None:
    tasks = asyncio.all_tasks(loop)
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
