"""Connection quality of one participant from the media plane's own counters and the subscriber's reports."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .contract import ConnectionQuality, ConnectionState

if TYPE_CHECKING:
    from .negotiation import PublishConnection, SubscribeConnection


@dataclass(frozen=True)
class _Counters:
    at: float
    packets_expected: int
    packets_received: int
    bytes_received: int
    bytes_sent: int


class QualityMeter:
    """Turns successive readings of a participant's two connections into rates.

    Loss and bitrates cover the time since the previous reading (since the connections
    started, on the first reading); the round trip is the subscriber's latest estimate.
    """

    def __init__(self) -> None:
        self._previous: _Counters | None = None
        self._started = time.monotonic()

    async def measure(
        self,
        participant_id: str,
        state: ConnectionState,
        publish: PublishConnection | None,
        subscribe: SubscribeConnection | None,
    ) -> ConnectionQuality:
        """The participant's quality since the previous reading."""
        tracks = publish.ingress.tracks if publish is not None else []
        now = _Counters(
            at=time.monotonic(),
            packets_expected=sum(t.reception.expected for t in tracks),
            packets_received=sum(t.reception.received for t in tracks),
            bytes_received=publish.ingress.tap.bytes_received if publish is not None else 0,
            bytes_sent=subscribe.egress.tap.bytes_sent if subscribe is not None else 0,
        )
        before = self._previous or _Counters(self._started, 0, 0, 0, 0)
        self._previous = now
        seconds = max(now.at - before.at, 1e-3)
        expected = now.packets_expected - before.packets_expected
        received = now.packets_received - before.packets_received
        lost = max(0, expected - received)
        round_trip = subscribe.egress.link.round_trip_s if subscribe is not None else None
        link = subscribe.egress.quality if subscribe is not None else None
        return ConnectionQuality(
            participant_id=participant_id,
            state=state,
            round_trip_ms=1000 * round_trip if round_trip is not None else None,
            packet_loss_pct=100 * lost / expected if expected > 0 else None,
            inbound_kbps=_kbps(now.bytes_received - before.bytes_received, seconds) if publish else None,
            outbound_kbps=_kbps(now.bytes_sent - before.bytes_sent, seconds) if subscribe else None,
            downlink_loss_pct=link.loss_pct if link is not None else None,
            video_paused=link is not None and link.video_paused,
        )


def _kbps(octets: int, seconds: float) -> float:
    return max(0, octets) * 8 / 1000 / seconds
