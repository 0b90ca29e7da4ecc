"""The attackers of ``test_exhaustion.py``'s flood, in a process of their own so that their TLS work does
not slow the test's own measurements: slow connections and idle WebSockets from loopback addresses.

Usage: ``python flood_child.py PORT SECONDS``; prints ``flooding`` once every connection is under way and one
JSON line with the outcome when the server has cut off every slow connection (or after SECONDS, when the
attackers give up and close what is left): how many were cut off, the longest any lasted once established,
and what became of the idle sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import sys
import time
from collections import Counter

import aiohttp

SLOW_CONNECTIONS = 600  # 400 trickling headers over TLS, 200 never finishing the TLS handshake
IDLE_SOCKETS = 300
FLOODER, SOCKET_HOARDER = "127.0.0.2", "127.0.0.3"  # loopback addresses of the attackers


def client_tls() -> ssl.SSLContext:
    """A client context that accepts the server's self-signed certificate (no CA store is loaded: cheap)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


TLS = client_tls()


class Trickle:
    """A connection that sends its request headers one byte at a time, never finishing them."""

    def __init__(self, port: int, tls: bool) -> None:
        self.port = port
        self.tls = tls
        self.closed_by_server_at: float | None = None
        self.opened_at: float | None = None  # TCP (bare) or TLS (trickling) connection established

    async def run(self, stop: asyncio.Event) -> None:
        try:
            reader, writer = await asyncio.open_connection(
                "127.0.0.1",
                self.port,
                ssl=TLS if self.tls else None,
                server_hostname="localhost" if self.tls else None,
                local_addr=(FLOODER, 0),
                ssl_handshake_timeout=30 if self.tls else None,
            )
        except (OSError, ssl.SSLError, TimeoutError):
            self.closed_by_server_at = time.monotonic()  # refused (at the cap) or cut during the handshake
            return
        self.opened_at = time.monotonic()
        try:
            if self.tls:
                request = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: " + b"a" * 4000
                for byte in request:
                    if stop.is_set():
                        break
                    writer.write(bytes([byte]))
                    await writer.drain()
                    if await _closed(reader, 0.5):
                        self.closed_by_server_at = time.monotonic()
                        break
            elif await _closed(reader, 60, stop):  # a bare TCP connection: the TLS handshake never starts
                self.closed_by_server_at = time.monotonic()
        except (OSError, ssl.SSLError):
            self.closed_by_server_at = time.monotonic()
        finally:
            writer.close()
            with contextlib.suppress(OSError, ssl.SSLError):
                await writer.wait_closed()


async def _closed(reader: asyncio.StreamReader, within: float, stop: asyncio.Event | None = None) -> bool:
    """Whether the server closed the connection within ``within`` seconds (or until ``stop``)."""
    waiters = [asyncio.ensure_future(reader.read(65536))]
    if stop is not None:
        waiters.append(asyncio.ensure_future(stop.wait()))
    done, pending = await asyncio.wait(waiters, timeout=within, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    if waiters[0] in done:
        with contextlib.suppress(Exception):
            return waiters[0].result() == b""  # EOF: the server closed
        return True
    return False


async def _idle_socket(base: str, results: Counter[str]) -> None:
    """A signaling socket that never joins."""
    connector = aiohttp.TCPConnector(ssl=TLS, local_addr=(SOCKET_HOARDER, 0))
    async with aiohttp.ClientSession(connector=connector) as http:
        try:
            ws = await http.ws_connect(f"{base}/ws", headers={"Origin": base}, heartbeat=None)
        except aiohttp.WSServerHandshakeError as exc:
            results[f"refused {exc.status}"] += 1
            return
        except (aiohttp.ClientError, OSError):
            results["reset"] += 1
            return
        started = time.monotonic()
        messages = [message async for message in ws]
        codes = [m.json().get("code") for m in messages if m.type is aiohttp.WSMsgType.TEXT]
        lasted = time.monotonic() - started
        results[f"closed {ws.close_code} {codes} after ~{round(lasted)} s"] += 1


async def main(port: int, seconds: float) -> None:
    base = f"https://127.0.0.1:{port}"
    stop = asyncio.Event()
    trickles = [Trickle(port, tls=index % 3 != 0) for index in range(SLOW_CONNECTIONS)]
    flood = [asyncio.ensure_future(t.run(stop)) for t in trickles]
    idle: Counter[str] = Counter()
    hoard = [asyncio.ensure_future(_idle_socket(base, idle)) for _ in range(IDLE_SOCKETS)]
    print("flooding", flush=True)
    # every connection must be cut off by the server; the attackers give up after ``seconds``
    done, _pending = await asyncio.wait(flood, timeout=seconds)
    cut_off = sum(t.closed_by_server_at is not None for t in trickles)
    lasted = [t.closed_by_server_at - t.opened_at for t in trickles if t.closed_by_server_at and t.opened_at]
    stop.set()
    await asyncio.wait_for(asyncio.gather(*flood, *hoard), 30)
    outcome = {"cut_off": cut_off, "longest_s": round(max(lasted, default=0.0), 2), "idle": dict(idle)}
    print(json.dumps(outcome), flush=True)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), float(sys.argv[2])))
