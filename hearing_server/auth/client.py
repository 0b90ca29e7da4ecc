"""What the server may record about the caller: network address and user agent.

``client_ip`` is the one place that decides a caller's address: the connection's peer, or — only when that
peer is a configured trusted reverse proxy — the rightmost X-Forwarded-For hop that is not itself a trusted
proxy (hops further left were written by the client and prove nothing).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from aiohttp import web

from hearing_server.config import CONFIG, IPNetwork

MAX_USER_AGENT = 400
MAX_ADDRESS = 64
FORWARDED_FOR = "X-Forwarded-For"


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An address as proxies write it: ``1.2.3.4``, ``1.2.3.4:80``, ``2001:db8::1``, ``[2001:db8::1]:80``."""
    text = text.strip()
    if text.startswith("[") and "]" in text:
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _trusted(address: ipaddress.IPv4Address | ipaddress.IPv6Address, proxies: Sequence[IPNetwork]) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address.version == net.version and address in net for net in proxies)


def forwarded_client(peer: str, forwarded_for: Sequence[str], proxies: Sequence[IPNetwork]) -> str:
    """The client's address given the connection's ``peer``, the X-Forwarded-For header values and the
    trusted proxies: the peer itself unless it is trusted, else the rightmost untrusted hop."""
    peer_address = _address(peer)
    if peer_address is None or not proxies or not _trusted(peer_address, proxies):
        return peer[:MAX_ADDRESS]
    hops = [hop for value in forwarded_for for hop in value.split(",") if hop.strip()]
    client = peer_address
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            break  # not an address: what is left of it cannot be believed; the last proxy is what we know
        client = address
        if not _trusted(address, proxies):
            break
    return str(client)[:MAX_ADDRESS]


def client_ip(request: web.Request) -> str:
    """The caller's address (see the module's note on reverse proxies)."""
    proxies = request.app[CONFIG].trusted_proxy_networks
    return forwarded_client(request.remote or "", request.headers.getall(FORWARDED_FOR, []), proxies)


def user_agent(request: web.Request) -> str:
    """The caller's User-Agent header, shortened to what the database keeps."""
    return request.headers.get("User-Agent", "")[:MAX_USER_AGENT]
