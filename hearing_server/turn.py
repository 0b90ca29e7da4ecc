"""Short-lived TURN credentials (the TURN REST API scheme that coturn's ``use-auth-secret`` checks).

Each participant gets its own username ``<expiry unix time>:<participant id>`` and the password
``base64(HMAC-SHA1(secret, username))``; the relay recomputes the password from the shared secret and
refuses the username once its expiry has passed. No static password ever reaches a page.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable
from typing import Any

SERVER_USER = "media-server"  # the user part of the credentials of the server's own peer connections


def turn_password(secret: str, username: str) -> str:
    """The password the relay expects for ``username``: base64 of HMAC-SHA1 keyed with the shared secret."""
    digest = hmac.new(secret.encode("utf-8"), username.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def turn_credentials(secret: str, user: str, ttl_s: float, now: float | None = None) -> tuple[str, str]:
    """``(username, password)`` for ``user``, valid ``ttl_s`` seconds from ``now`` (default: the clock)."""
    user = user.replace(":", "_")  # the relay reads the expiry up to the first ':'
    expiry = int((time.time() if now is None else now) + ttl_s)
    username = f"{expiry}:{user}"
    return username, turn_password(secret, username)


def ice_servers(config: Any, user: str, now: float | None = None) -> list[dict[str, Any]]:
    """The ICE servers of one participant (or of the server, ``user=SERVER_USER``) as RTCIceServer dicts.

    The configured ``ice_servers`` (STUN, no credentials) come first, then one entry with every
    ``turn_urls`` URL and fresh credentials for ``user`` when a relay is configured. ``config`` is the
    server's :class:`hearing_server.config.Config` (anything with those attributes).
    """
    servers: list[dict[str, Any]] = [{"urls": url} for url in config.ice_servers]
    if config.turn_urls and config.turn_secret:
        username, credential = turn_credentials(config.turn_secret, user, config.turn_ttl_s, now)
        servers.append({"urls": list(config.turn_urls), "username": username, "credential": credential})
    return servers


def ice_servers_for(config: Any) -> Callable[[str | None], list[dict[str, Any]]]:
    """A function giving the ICE servers of participant ``user`` (``None``: the server's own peer
    connections), with credentials made afresh at each call: a hearing may outlive one set."""
    return lambda user: ice_servers(config, SERVER_USER if user is None else user)


__all__ = ["SERVER_USER", "ice_servers", "ice_servers_for", "turn_credentials", "turn_password"]
