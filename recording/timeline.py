"""Placing recorded frames on the hearing's shared timeline (server wall-clock time).

A publisher's RTCP sender reports tie its RTP time to its own wall clock, which keeps its
audio and video aligned; one offset per publisher connection, taken when the first frame is
mapped, moves that clock onto the server's.  Until a sender report arrives, arrival time is used.
"""

from __future__ import annotations

from media.contract import SenderReport, TrackInfo


def publisher_connection(track: TrackInfo) -> str:
    """Which publisher connection a track came over: its participant plus the connection's generation.

    Track ids are ``"<participant>/<kind>/<generation>"``; ids of another shape share one
    connection per participant.
    """
    parts = track.track_id.rsplit("/", 2)
    generation = parts[2] if len(parts) == 3 else ""
    return f"{track.participant_id}/{generation}"


class PublisherClock:
    """The offset between one publisher connection's sender-report clock and the server's clock."""

    def __init__(self) -> None:
        self.offset: float | None = None

    def to_server_time(self, sender_time: float, arrival: float) -> float:
        """Server time of a publisher time; the first call fixes the offset from its arrival time."""
        if self.offset is None:
            self.offset = arrival - sender_time
        return sender_time + self.offset


class TrackClock:
    """Maps one track's RTP times to server wall-clock time, never going backwards."""

    def __init__(self, publisher: PublisherClock, clock_rate: int) -> None:
        self._publisher = publisher
        self._clock_rate = clock_rate
        self._last: float | None = None
        self.report: SenderReport | None = None  # the latest sender report of the track

    def wallclock(self, rtp_timestamp: int, arrival: float) -> float:
        """Server wall-clock time of a frame with this (32-bit or unwrapped) RTP time, arrived then."""
        report = self.report
        if report is None:
            value = arrival
        else:
            # the report's RTP time is 32 bits: take the unwrapped time nearest to this frame
            delta = (report.rtp_timestamp - rtp_timestamp) & 0xFFFFFFFF
            if delta >= 1 << 31:
                delta -= 1 << 32
            sender_time = report.ntp_time - delta / self._clock_rate
            value = self._publisher.to_server_time(sender_time, arrival)
        if self._last is not None and value <= self._last:
            # switching from arrival to report time may step back by the network delay
            value = self._last + 1e-6
        self._last = value
        return value
