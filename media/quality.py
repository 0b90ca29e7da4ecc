"""Connection quality of one participant from aiortc's statistics: round trip, loss, bitrates."""

from __future__ import annotations

import time
from dataclasses import dataclass

from aiortc import RTCPeerConnection

from .contract import ConnectionQuality, ConnectionState


@dataclass(frozen=True)
class _Counters:
    at: float
    packets_received: int
    packets_lost: int
    bytes_received: int
    bytes_sent: int


class QualityMeter:
    """Turns successive statistics of a participant's two connections into rates.

    Loss and bitrates cover the time since the previous reading (since the connections
    started, on the first reading).
    """

    def __init__(self) -> None:
        self._previous: _Counters | None = None
        self._started = time.monotonic()

    async def measure(
        self,
        participant_id: str,
        state: ConnectionState,
        publish: RTCPeerConnection | None,
        subscribe: RTCPeerConnection | None,
    ) -> ConnectionQuality:
        inbound = await _stats(publish)
        outbound = await _stats(subscribe)
        round_trips = [
            s.roundTripTime
            for s in outbound
            if s.type == "remote-inbound-rtp" and getattr(s, "roundTripTime", None) is not None
        ]
        now = _Counters(
            at=time.monotonic(),
            packets_received=sum(s.packetsReceived for s in inbound if s.type == "inbound-rtp"),
            packets_lost=sum(max(0, s.packetsLost) for s in inbound if s.type == "inbound-rtp"),
            bytes_received=sum(s.bytesReceived for s in inbound if s.type == "transport"),
            bytes_sent=sum(s.bytesSent for s in outbound if s.type == "transport"),
        )
        before = self._previous or _Counters(self._started, 0, 0, 0, 0)
        self._previous = now
        seconds = max(now.at - before.at, 1e-3)
        received = max(0, now.packets_received - before.packets_received)
        lost = max(0, now.packets_lost - before.packets_lost)
        return ConnectionQuality(
            participant_id=participant_id,
            state=state,
            round_trip_ms=1000 * sum(round_trips) / len(round_trips) if round_trips else None,
            packet_loss_pct=100 * lost / (received + lost) if received + lost else None,
            inbound_kbps=_kbps(now.bytes_received - before.bytes_received, seconds) if publish else None,
            outbound_kbps=_kbps(now.bytes_sent - before.bytes_sent, seconds) if subscribe else None,
        )


async def _stats(pc: RTCPeerConnection | None) -> list:
    if pc is None or pc.connectionState == "closed":
        return []
    try:
        return list((await pc.getStats()).values())
    except Exception:
        return []


def _kbps(octets: int, seconds: float) -> float:
    return max(0, octets) * 8 / 1000 / seconds
