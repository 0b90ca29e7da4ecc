"""A minimal TURN client run inside a test host: Allocate, then CreatePermission for some peers.

    python turn_probe.py SERVER PORT {udp,tcp,tls} USERNAME PASSWORD [PEER ...]

Prints one JSON object: ``{"allocated": bool, "error": [code, reason] | null, "relayed": [ip, port] | null,
"permissions": {peer: null | [code, reason]}}``. Uses aioice's TURN client protocol (the one aiortc
uses), so the credentials are checked exactly as the server's own peer connections present them.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import sys
from typing import Any

from aioice import stun
from aioice.turn import TurnClientTcpProtocol, TurnClientUdpProtocol


async def probe(
    server: str, port: int, transport: str, username: str, password: str, peers: list[str]
) -> Any:
    """Allocate a relay with the given credentials, then ask permission to reach each of ``peers``."""
    loop = asyncio.get_running_loop()
    address = (server, port)
    protocol: TurnClientTcpProtocol | TurnClientUdpProtocol
    inner: asyncio.BaseTransport
    if transport in ("tcp", "tls"):
        context = None
        if transport == "tls":
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE  # the lab's relay has a throw-away self-signed certificate
        inner, protocol = await loop.create_connection(
            lambda: TurnClientTcpProtocol(address, username, password, 600, 300),
            host=server,
            port=port,
            ssl=context,
        )
    else:
        inner, protocol = await loop.create_datagram_endpoint(
            lambda: TurnClientUdpProtocol(address, username, password, 600, 300), remote_addr=address
        )
    result: dict[str, Any] = {"allocated": False, "error": None, "relayed": None, "permissions": {}}
    try:
        try:
            relayed = await asyncio.wait_for(protocol.connect(), 10)
        except stun.TransactionFailed as exc:
            result["error"] = list(exc.response.attributes.get("ERROR-CODE", (0, "")))
            return result
        result["allocated"] = True
        result["relayed"] = list(relayed)
        for peer in peers:
            request = stun.Message(
                message_method=stun.Method.CREATE_PERMISSION, message_class=stun.Class.REQUEST
            )
            request.attributes["XOR-PEER-ADDRESS"] = (peer, 9)
            try:
                await asyncio.wait_for(protocol.request_with_retry(request), 10)
                result["permissions"][peer] = None
            except stun.TransactionFailed as exc:
                result["permissions"][peer] = list(exc.response.attributes.get("ERROR-CODE", (0, "")))
        if protocol.refresh_task is not None:
            protocol.refresh_task.cancel()
        return result
    finally:
        inner.close()


def main() -> None:
    """Command line entry: see the module docstring."""
    server, port, transport, username, password, *peers = sys.argv[1:]
    print(json.dumps(asyncio.run(probe(server, int(port), transport, username, password, peers))))


if __name__ == "__main__":
    main()
