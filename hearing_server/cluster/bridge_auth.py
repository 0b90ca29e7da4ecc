"""Signed openings of the internal signaling bridge between nodes: HMAC-SHA256 over who, what and when.

The opening node signs its own id, the hosting node's id, the hearing, a timestamp, a random nonce and the
client's address and user agent with ``cluster_secret``; the host refuses forged, stale and replayed ones.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import quote, unquote

HEADER_PREFIX = "X-Hearing-Bridge-"
FIELDS = ("From", "To", "Hearing", "Time", "Nonce", "Client-Ip", "Client-Agent")
SIGNATURE = HEADER_PREFIX + "Signature"
MAX_AGE_S = 30.0  # covers clock skew between nodes (a few seconds) with a wide margin


class BridgeRefused(Exception):
    """A bridge opening that is not accepted; the message says why (forged, stale, replayed, misdirected)."""


@dataclass(frozen=True)
class BridgeOpening:
    """A verified opening: the bridged client's hearing, address and user agent."""

    from_node: str
    hearing_id: str
    client_ip: str
    client_agent: str


def _mac(secret: str, values: list[str]) -> str:
    message = "\n".join(v.replace("\n", " ") for v in values).encode("utf-8")
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def sign_opening(
    secret: str,
    *,
    from_node: str,
    to_node: str,
    hearing_id: str,
    client_ip: str,
    client_agent: str,
    now: float | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """The headers of a bridge opening from ``from_node`` to ``to_node`` for one client of one hearing."""
    values = [
        from_node,
        to_node,
        hearing_id,
        f"{time.time() if now is None else now:.3f}",
        nonce or secrets.token_hex(16),
        quote(client_ip, safe=""),
        quote(client_agent, safe=" ;,()/.:"),  # headers carry ASCII only
    ]
    headers = {HEADER_PREFIX + name: value for name, value in zip(FIELDS, values, strict=True)}
    headers[SIGNATURE] = _mac(secret, values)
    return headers


class OpeningVerifier:
    """Checks bridge openings addressed to this node; remembers nonces for as long as they could be fresh."""

    def __init__(self, secret: str, node_id: str, clock: Callable[[], float] = time.time) -> None:
        self._secret = secret
        self._node_id = node_id
        self._clock = clock
        self._seen: dict[str, float] = {}

    def verify(self, headers: Mapping[str, str]) -> BridgeOpening:
        """The opening in ``headers``, or :class:`BridgeRefused`."""
        values = [headers.get(HEADER_PREFIX + name, "") for name in FIELDS]
        signature = headers.get(SIGNATURE, "")
        if not hmac.compare_digest(_mac(self._secret, values), signature):
            raise BridgeRefused("bad signature")
        from_node, to_node, hearing_id, sent, nonce, client_ip, client_agent = values
        if to_node != self._node_id:
            raise BridgeRefused(f"addressed to node {to_node!r}")
        now = self._clock()
        try:
            age = abs(now - float(sent))
        except ValueError as exc:
            raise BridgeRefused("bad timestamp") from exc
        if age > MAX_AGE_S:
            raise BridgeRefused(f"stale opening ({age:.0f} s)")
        self._seen = {n: t for n, t in self._seen.items() if t > now - 2 * MAX_AGE_S}
        if len(nonce) < 16 or nonce in self._seen:
            raise BridgeRefused("replayed opening")
        self._seen[nonce] = now
        return BridgeOpening(from_node, hearing_id, unquote(client_ip), unquote(client_agent))
