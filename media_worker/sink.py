"""The recording input of one hearing in a worker: hands the router's media to the recorder of the moment."""

from __future__ import annotations

from typing import Any


class HearingSink:
    """The sink a worker's router writes to; forwards to the hearing's recorder while there is one.

    Written against the sink protocol by name (``track_started``/``track_ended`` plus ``frame`` or
    ``packet``/``sender_report``), so it serves a frame-level and a packet-level media plane alike.
    Counts what passes through: the worker's load report.
    """

    def __init__(self) -> None:
        self.recorder: Any = None
        self.forwarded = 0

    def track_started(self, track: Any, *args: Any) -> None:
        """A track began."""
        if self.recorder is not None:
            self.recorder.track_started(track, *args)

    def frame(self, frame: Any) -> None:
        """One forwarded frame."""
        self.forwarded += 1
        if self.recorder is not None:
            self.recorder.frame(frame)

    def packet(self, packet: Any) -> None:
        """One forwarded packet."""
        self.forwarded += 1
        if self.recorder is not None:
            self.recorder.packet(packet)

    def sender_report(self, track: Any, report: Any) -> None:
        """A publisher's sender report."""
        if self.recorder is not None:
            self.recorder.sender_report(track, report)

    def track_ended(self, track: Any) -> None:
        """A track ended."""
        if self.recorder is not None:
            self.recorder.track_ended(track)
