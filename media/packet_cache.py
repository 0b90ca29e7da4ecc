"""The last packets of one published video track, by sequence number, to answer subscribers' NACKs."""

from __future__ import annotations

CACHE_SIZE = 1024  # ~2 s of 640x480 video at 2.5 Mbit/s; a power of two


class PacketCache:
    """A ring of recent packets (sequence number, RTP timestamp, flags, payload) indexed by seq.

    ``flags``: bit 0 the marker, bit 1 whether the payload ends in RTP padding.
    """

    __slots__ = ("_slots",)

    def __init__(self) -> None:
        self._slots: list[tuple[int, int, int, bytes] | None] = [None] * CACHE_SIZE

    def put(self, sequence_number: int, timestamp: int, flags: int, payload: bytes) -> None:
        """Keep a packet; it replaces the one CACHE_SIZE sequence numbers before it."""
        self._slots[sequence_number & (CACHE_SIZE - 1)] = (sequence_number, timestamp, flags, payload)

    def get(self, sequence_number: int) -> tuple[int, int, int, bytes] | None:
        """The packet with this sequence number if it is still cached."""
        entry = self._slots[sequence_number & (CACHE_SIZE - 1)]
        if entry is None or entry[0] != sequence_number:
            return None
        return entry
