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
