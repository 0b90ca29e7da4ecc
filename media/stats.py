"""Counters and the transit-time histogram of the media plane, read by the control plane's /metrics.

Plain numbers (no prometheus_client here: ``media`` imports nothing of the control plane);
one :class:`MediaStats` per process, handed to every router.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass, field

# seconds; Prometheus-style upper bounds (the last bucket is +Inf)
TRANSIT_BUCKETS_S: tuple[float, ...] = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.002,
    0.005,
    0.01,
    0.02,
    0.05,
    0.1,
)
_BUCKETS_NS = tuple(int(bound * 1e9) for bound in TRANSIT_BUCKETS_S)


@dataclass
class MediaStats:
    """What the media plane did since the process started."""

    packets_in: int = 0  # RTP packets received from publishers (after SRTP)
    packets_out: int = 0  # RTP packets sent to subscribers (including retransmissions)
    dropped_malformed: int = 0  # datagrams that failed SRTP, RTP or RTCP parsing
    dropped_unknown: int = 0  # well-formed RTP of no known track (unknown SSRC or payload type)
    nacks_answered: int = 0  # retransmissions sent from the packet cache
    nacks_missed: int = 0  # NACKed packets no longer (or never) in the cache
    nacks_sent: int = 0  # sequence numbers the server NACKed to publishers
    plis_received: int = 0  # PLI/FIR from subscribers
    keyframe_requests_sent: int = 0  # PLIs sent to publishers
    video_pauses: int = 0  # congestion control held back (more) video from a subscriber
    video_resumes: int = 0  # ... and let (more) video through again
    transit_buckets: list[int] = field(default_factory=lambda: [0] * (len(_BUCKETS_NS) + 1))
    transit_count: int = 0
    transit_sum_ns: int = 0

    def observe_transit(self, nanoseconds: int) -> None:
        """One forwarded packet's time from datagram in to its last datagram out."""
        self.transit_buckets[bisect_left(_BUCKETS_NS, nanoseconds)] += 1
        self.transit_count += 1
        self.transit_sum_ns += nanoseconds

    def transit_quantile(self, q: float) -> float | None:
        """An upper bound (bucket edge, seconds) of the q-quantile of transit times; None if empty."""
        if not self.transit_count:
            return None
        rank = q * self.transit_count
        seen = 0
        for index, count in enumerate(self.transit_buckets):
            seen += count
            if seen >= rank:
                return TRANSIT_BUCKETS_S[index] if index < len(TRANSIT_BUCKETS_S) else float("inf")
        return float("inf")

    def counters(self) -> dict[str, int]:
        """The counters by name (for exposition)."""
        return {
            "packets_in": self.packets_in,
            "packets_out": self.packets_out,
            "dropped_malformed": self.dropped_malformed,
            "dropped_unknown": self.dropped_unknown,
            "nacks_answered": self.nacks_answered,
            "nacks_missed": self.nacks_missed,
            "nacks_sent": self.nacks_sent,
            "plis_received": self.plis_received,
            "keyframe_requests_sent": self.keyframe_requests_sent,
            "video_pauses": self.video_pauses,
            "video_resumes": self.video_resumes,
        }


def summed(parts: Iterable[MediaStats]) -> MediaStats:
    """Counters and histograms added up (e.g. over the media worker processes of one server)."""
    total = MediaStats()
    for part in parts:
        for name in total.counters():
            setattr(total, name, getattr(total, name) + getattr(part, name))
        total.transit_buckets = [
            a + b for a, b in zip(total.transit_buckets, part.transit_buckets, strict=True)
        ]
        total.transit_count += part.transit_count
        total.transit_sum_ns += part.transit_sum_ns
    return total
