"""One published packet to every down track: the fan-out, in C when built.

With the send step in C (:mod:`media.sender`), what a forward still cost in Python was the down
track's own rewrite — its gating, offsets and last-sent bookkeeping, a Python call per
subscriber per packet.  A :class:`Route` holds that state for one down track
(:class:`~media.downtrack.DownTrack` keeps its offsets, epoch and counters there, not in its own
attributes), so :func:`fan_out` (``media/_sender.c``) can forward a packet to every down track
in its steady state — ready, not held, started — whose connection sends through the C sender,
without leaving C.  Every other down track (waiting for a keyframe, held back, sending from
Python) gets its :meth:`~media.downtrack.DownTrack.forward` called, in the same order; that
method is the reference the C path is tested against, datagram for datagram.

Without the extension :class:`PythonRoute` holds the same state and :func:`python_fan_out`
calls every down track's ``forward``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol


class RouteState(Protocol):
    """One down track's rewrite state; -1 stands for "none" in the optional sequence numbers."""

    out: Any  # has ``.sender``: the subscribe connection's current sender
    extension: bytes
    steady: bool
    first_byte: int
    payload_type: int
    ssrc: int
    abs_send_time_at: int
    seq_offset: int
    ts_offset: int
    epoch_start: int
    epoch_out_start: int
    last_out_seq: int
    last_out_ts: int
    last_sent_at: float
    packets_sent: int
    octets_sent: int


class Forwarding(Protocol):
    """What :func:`fan_out` calls for a down track it does not forward itself."""

    def forward(self, seq: int, timestamp: int, flags: int, payload: bytes, keyframe: bool) -> None:
        """One packet of the source: rewrite and send it, or leave it out."""


class PythonRoute:
    """:class:`RouteState` in Python (the extension is not built)."""

    __slots__ = (
        "out",
        "extension",
        "steady",
        "first_byte",
        "payload_type",
        "ssrc",
        "abs_send_time_at",
        "seq_offset",
        "ts_offset",
        "epoch_start",
        "epoch_out_start",
        "last_out_seq",
        "last_out_ts",
        "last_sent_at",
        "packets_sent",
        "octets_sent",
    )

    def __init__(self, out: Any) -> None:
        self.out = out
        self.extension = b""
        self.steady = False
        self.first_byte = 0x80
        self.payload_type = 0
        self.ssrc = 0
        self.abs_send_time_at = -1
        self.seq_offset = 0
        self.ts_offset = 0
        self.epoch_start = -1
        self.epoch_out_start = -1
        self.last_out_seq = -1
        self.last_out_ts = 0
        self.last_sent_at = 0.0
        self.packets_sent = 0
        self.octets_sent = 0


def python_fan_out(
    routes: Sequence[RouteState],
    down_tracks: Sequence[Forwarding],
    seq: int,
    timestamp: int,
    flags: int,
    payload: bytes,
    keyframe: bool,
) -> int:
    """Every down track's own ``forward``; no packet is sent here (0)."""
    for down_track in down_tracks:
        down_track.forward(seq, timestamp, flags, payload, keyframe)
    return 0


FanOut = Callable[[Sequence[RouteState], Sequence[Forwarding], int, int, int, bytes, bool], int]

Route: Callable[[Any], RouteState]
fan_out: FanOut
try:
    from ._sender import Route, fan_out
except ImportError:  # not built: no compiler or headers at install
    Route, fan_out = PythonRoute, python_fan_out
