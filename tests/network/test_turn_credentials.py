"""coturn accepts the short-lived credentials and refuses expired and forged ones (issue #16, test 4).

A real coturn (Debian's package, started by the test with ``use-auth-secret``) runs in the TURN host;
a TURN client (aioice's, as aiortc uses it) in the phone host behind the NAT allocates a relay with
credentials made by :mod:`hearing_server.turn` — over UDP and TCP on 3478 and TLS on 443 — and asks
permission to reach the media server (allowed) and another lab address (denied: private ranges).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from coturn import Coturn, start_coturn
from netlab import ROUTER_WAN, SERVER_ADDRESS, TURN_ADDRESS, PhoneNetwork

from hearing_server.config import load_config
from hearing_server.turn import ice_servers, turn_credentials, turn_password

pytestmark = [pytest.mark.network, pytest.mark.slow]

SECRET = "a court's TURN secret, only in the lab"
PROBE = str(Path(__file__).resolve().parent / "turn_probe.py")
PORTS = {"udp": 3478, "tcp": 3478, "tls": 443}


@pytest.fixture
def turn(net: PhoneNetwork, tmp_path: Path) -> Coturn:
    """coturn in the TURN host, relaying to the media server only."""
    return start_coturn(net.turn, tmp_path / "turn", SECRET, allowed_peers=[SERVER_ADDRESS])


def allocate(net: PhoneNetwork, transport: str, username: str, password: str, *peers: str) -> dict[str, Any]:
    """Run the TURN client in the phone host; its JSON result."""
    result = net.phone.run(
        [sys.executable, PROBE, TURN_ADDRESS, str(PORTS[transport]), transport, username, password, *peers],
        timeout=40,
    )
    return json.loads(result.stdout)


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
def test_fresh_credentials_allocate_a_relay(net: PhoneNetwork, turn: Coturn, transport: str) -> None:
    config = load_config(
        environ={}, turn_urls=turn.urls(), turn_secret=SECRET, turn_ttl_s=600, ice_host_addresses=[]
    )
    server = ice_servers(config, "party-7")[0]
    assert server["urls"] == turn.urls()
    started = time.monotonic()
    result = allocate(net, transport, server["username"], server["credential"], SERVER_ADDRESS)
    elapsed = time.monotonic() - started
    assert result["allocated"], (result, turn.log()[-2000:])
    assert result["relayed"][0] == TURN_ADDRESS
    assert result["permissions"] == {SERVER_ADDRESS: None}
    assert elapsed < 10
    print(f"{transport}: allocated {result['relayed']} in {elapsed:.2f} s (including the client's start)")


def test_expired_credentials_are_refused(net: PhoneNetwork, turn: Coturn) -> None:
    username, password = turn_credentials(SECRET, "party-7", ttl_s=600, now=time.time() - 601)
    result = allocate(net, "tcp", username, password)
    assert not result["allocated"]
    assert result["error"][0] == 401, result


def test_forged_credentials_are_refused(net: PhoneNetwork, turn: Coturn) -> None:
    username, _ = turn_credentials(SECRET, "party-7", ttl_s=600)
    forged = [
        (username, turn_password("another secret", username)),  # signed with the wrong secret
        (username.replace("party-7", "party-8"), turn_password(SECRET, username)),  # another's password
        (f"{int(time.time()) + 10 * 86400}:party-7", turn_password(SECRET, username)),  # a later expiry
        (username, ""),
    ]
    for name, password in forged:
        result = allocate(net, "tls", name, password)
        assert not result["allocated"], (name, result)
        assert result["error"][0] == 401, (name, result)


def test_the_relay_reaches_the_media_server_only(net: PhoneNetwork, turn: Coturn) -> None:
    username, password = turn_credentials(SECRET, "party-7", ttl_s=600)
    result = allocate(net, "tcp", username, password, SERVER_ADDRESS, ROUTER_WAN, "10.1.2.3", "127.0.0.1")
    assert result["allocated"], result
    assert result["permissions"][SERVER_ADDRESS] is None
    for denied in (ROUTER_WAN, "10.1.2.3", "127.0.0.1"):
        assert result["permissions"][denied][0] == 403, (denied, result)
