"""Placing a participant's frames on the hearing's shared timeline (server wall-clock time).

A publisher's RTCP sender reports tie its RTP time to its own wall clock, which keeps its
audio and video aligned; one offset per participant, taken when the first frame is mapped,
moves that clock onto the server's.  Until a sender report arrives, arrival time is used.
"""

from __future__ import annotations

from .contract import SenderReport


class ParticipantClock:
    """The offset between one participant's sender-report clock and the server's clock."""

    def __init__(self) -> None:
        self.offset: float | None = None

    def to_server_time(self, sender_time: float, arrival: float) -> float:
        if self.offset is None:
            self.offset = arrival - sender_time
        return sender_time + self.offset


class TrackClock:
    """Maps one track's unwrapped RTP times to server wall-clock time, never going backwards."""

    def __init__(self, participant: ParticipantClock, clock_rate: int) -> None:
        self._participant = participant
        self._clock_rate = clock_rate
        self._last: float | None = None

    def wallclock(self, rtp_timestamp: int, arrival: float, report: SenderReport | None) -> float:
        if report is None:
            value = arrival
        else:
            # the report's RTP time is 32 bits: take the unwrapped time nearest to this frame
            delta = (report.rtp_timestamp - rtp_timestamp) & 0xFFFFFFFF
            if delta >= 1 << 31:
                delta -= 1 << 32
            sender_time = report.ntp_time - delta / self._clock_rate
            value = self._participant.to_server_time(sender_time, arrival)
        if self._last is not None and value <= self._last:
            # switching from arrival to report time may step back by the network delay
            value = self._last + 1e-6
        self._last = value
        return value
