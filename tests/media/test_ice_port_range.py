"""ICE host candidates bind within the configured UDP port range (aioice picks ephemeral ports itself)."""

from __future__ import annotations

import asyncio
import socket

import aioice.ice
import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription
from media_harness import client_configuration, wait_for

from media.aiortc_adapter import (
    PortRange,
    install_host_addresses,
    install_port_range,
    uninstall_host_addresses,
    uninstall_port_range,
)
from media.contract import MediaSettings

pytestmark = pytest.mark.media


def _free_block(size: int) -> int:
    """The first port of ``size`` consecutive free UDP ports on loopback."""
    for base in range(42000, 60000, size):
        sockets = []
        try:
            for port in range(base, base + size):
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                sockets.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise AssertionError("no free port block")


def _ports(sdp: str) -> set[int]:
    return {int(line.split()[5]) for line in sdp.splitlines() if line.startswith("a=candidate:")}


async def test_ice_candidates_bind_in_the_range_skipping_taken_ports_and_connect() -> None:
    low = _free_block(4)
    taken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    taken.bind(("127.0.0.1", low + 1))
    install_host_addresses(MediaSettings(host_addresses=["127.0.0.1"]))
    install_port_range(low, low + 3)
    offerer, answerer = RTCPeerConnection(client_configuration()), RTCPeerConnection(client_configuration())
    try:
        offerer.createDataChannel("probe")
        await offerer.setLocalDescription(await offerer.createOffer())
        await answerer.setRemoteDescription(offerer.localDescription)
        await answerer.setLocalDescription(await answerer.createAnswer())
        await offerer.setRemoteDescription(
            RTCSessionDescription(sdp=answerer.localDescription.sdp, type="answer")
        )
        used = _ports(offerer.localDescription.sdp) | _ports(answerer.localDescription.sdp)
        assert len(used) == 2 and used <= set(range(low, low + 4)) - {low + 1}, (low, used)
        assert await wait_for(lambda: offerer.connectionState == "connected", 10), offerer.connectionState
        # the range is full now but for one port; a third agent takes it, a fourth finds none
        third = RTCPeerConnection(client_configuration())
        third.createDataChannel("probe")
        await third.setLocalDescription(await third.createOffer())
        assert _ports(third.localDescription.sdp) == set(range(low, low + 4)) - {low + 1} - used
        fourth = RTCPeerConnection(client_configuration())
        fourth.createDataChannel("probe")
        await fourth.setLocalDescription(await fourth.createOffer())
        assert _ports(fourth.localDescription.sdp) == set()
        await third.close()
        await fourth.close()
    finally:
        uninstall_port_range()
        uninstall_host_addresses()
        taken.close()
        await offerer.close()
        await answerer.close()
    assert aioice.ice.asyncio is asyncio  # uninstalled: ephemeral ports again


def test_a_bad_range_is_refused() -> None:
    with pytest.raises(ValueError):
        PortRange(5000, 4000)
