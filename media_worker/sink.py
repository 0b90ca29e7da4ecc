"""The recording input of one hearing in a worker: hands the router's media to the recorder of the moment."""

from __future__ import annotations

from typing import Any


class HearingSink:
    """The sink a worker's router writes to; forwards to the hearing's recorder while there is one.

    Written against the sink protocols by name (``track_started``/``track_ended`` plus ``packet`` and
    ``sender_report``, or ``frame``).  It remembers the live tracks and their latest sender reports, so
    that a recorder attached later (the hearing starts after everyone connected, or resumes) records
    them from its start — as ``LiveRecording`` does for media in the server process.
    """

    def __init__(self) -> None:
        self.recorder: Any = None
        self.received = 0  # packets (or frames) handed to the sink: part of the load report
        self._tracks: dict[str, tuple[Any, tuple[Any, ...]]] = {}
        self._reports: dict[str, Any] = {}

    def attach(self, recorder: Any) -> None:
        """Record from now on into ``recorder`` (``None``: stop feeding any)."""
        self.recorder = recorder
        if recorder is None:
            return
        for track, args in self._tracks.values():
            recorder.track_started(track, *args)
            report = self._reports.get(track.track_id)
            if report is not None:
                recorder.sender_report(track, report)

    def track_started(self, track: Any, *args: Any) -> None:
        """A track began (``args``: its keyframe request, on a packet-level media plane)."""
        self._tracks[track.track_id] = (track, args)
        if self.recorder is not None:
            self.recorder.track_started(track, *args)

    def packet(self, packet: Any) -> None:
        """One forwarded packet."""
        self.received += 1
        if self.recorder is not None:
            self.recorder.packet(packet)

    def frame(self, frame: Any) -> None:
        """One forwarded frame."""
        self.received += 1
        if self.recorder is not None:
            self.recorder.frame(frame)

    def sender_report(self, track: Any, report: Any) -> None:
        """A publisher's sender report."""
        if track.track_id in self._tracks:
            self._reports[track.track_id] = report
        if self.recorder is not None:
            self.recorder.sender_report(track, report)

    def track_ended(self, track: Any) -> None:
        """A track ended."""
        self._tracks.pop(track.track_id, None)
        self._reports.pop(track.track_id, None)
        if self.recorder is not None:
            self.recorder.track_ended(track)
