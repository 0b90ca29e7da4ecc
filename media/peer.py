"""Creating the server's peer connections: configured ICE, one transport per connection."""

from __future__ import annotations

from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection
from aiortc.rtcconfiguration import RTCBundlePolicy

from .contract import MediaSettings


def peer_configuration(settings: MediaSettings) -> RTCConfiguration:
    """ICE servers only as configured (aiortc would otherwise use a public STUN server) and
    MAX_BUNDLE (with BALANCED the third and later m-lines never start, aiortc #1414)."""
    servers = [
        RTCIceServer(
            urls=server["urls"],
            username=server.get("username"),
            credential=server.get("credential"),
        )
        for server in (settings.ice_servers_source() if settings.ice_servers_source else settings.ice_servers)
    ]
    return RTCConfiguration(iceServers=servers, bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)


def create_peer_connection(settings: MediaSettings) -> RTCPeerConnection:
    """A peer connection for one leg of one participant."""
    return RTCPeerConnection(peer_configuration(settings))
