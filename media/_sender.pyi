from collections.abc import Sequence
from typing import Any

FLAG_MARKER: int
FLAG_PADDING: int
EPOCH_SETTLED: int

class Sender:
    bytes_sent: int
    packets_sent: int
    def __init__(
        self, owner: object, protect: int, protect_rtcp: int, session: int, fd: int, host: str, port: int
    ) -> None: ...
    def send(self, packet: bytes) -> int: ...
    def send_rtcp(self, packet: bytes) -> int: ...
    def forward(
        self,
        first: int,
        second: int,
        seq: int,
        timestamp: int,
        ssrc: int,
        extension: bytes,
        abs_send_time_at: int,
        payload: bytes,
        /,
    ) -> int: ...
    def close(self) -> None: ...

class Route:
    out: Any
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
    def __init__(self, out: Any) -> None: ...

def fan_out(
    routes: Sequence[Any],
    down_tracks: Sequence[Any],
    seq: int,
    timestamp: int,
    flags: int,
    payload: bytes,
    keyframe: bool,
    /,
) -> int: ...
