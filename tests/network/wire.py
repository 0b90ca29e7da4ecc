"""A shaped cable between two interfaces: delay, random loss and a rate limit, in user space.

    python wire.py IF_A IF_B CONFIG.json

Run inside a lab host that has two interfaces without addresses; every Ethernet frame arriving on one
goes out of the other after the configured treatment. This stands in for ``tc netem``, which this
machine's kernel lacks (CONFIG_NET_SCH_NETEM is not set; ``tbf`` and ``htb`` exist but cannot delay).
CONFIG.json holds ``{"a_to_b": {...}, "b_to_a": {...}}`` with ``delay_ms``, ``jitter_ms``, ``loss_pct``,
``rate_kbit`` (0 = unlimited) and ``queue_ms`` (the most a frame may wait for the rate, then it is
dropped, as a router's queue would); it is read again on SIGHUP. The senders on both ends must not
leave checksums or segmentation to the device (``ethtool -K IF tx off tso off gso off``), since a packet
socket forwards frames exactly as they are.
"""

from __future__ import annotations

import heapq
import json
import random
import select
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4


@dataclass
class Direction:
    """One direction of the cable: its settings and the frames waiting to go out."""

    out: socket.socket
    delay_s: float = 0.0
    jitter_s: float = 0.0
    loss: float = 0.0
    rate_bps: float = 0.0
    queue_s: float = 0.3
    busy_until: float = 0.0
    waiting: list[tuple[float, int, bytes]] = field(default_factory=list)
    dropped: int = 0
    passed: int = 0

    def configure(self, settings: dict[str, Any]) -> None:
        """Apply ``delay_ms``, ``jitter_ms``, ``loss_pct``, ``rate_kbit``, ``queue_ms`` (missing = none)."""
        self.delay_s = float(settings.get("delay_ms", 0)) / 1000
        self.jitter_s = float(settings.get("jitter_ms", 0)) / 1000
        self.loss = float(settings.get("loss_pct", 0)) / 100
        self.rate_bps = float(settings.get("rate_kbit", 0)) * 1000
        self.queue_s = float(settings.get("queue_ms", 300)) / 1000

    def arrive(self, frame: bytes, now: float, seq: int) -> None:
        """A frame to carry: lose it, queue it behind the rate, delay it."""
        if self.loss and random.random() < self.loss:
            self.dropped += 1
            return
        start = now
        if self.rate_bps:
            start = max(now, self.busy_until)
            if start - now > self.queue_s:
                self.dropped += 1
                return
            self.busy_until = start + len(frame) * 8 / self.rate_bps
        jitter = random.uniform(-self.jitter_s, self.jitter_s) if self.jitter_s else 0.0
        due = max(start, self.busy_until) + max(0.0, self.delay_s + jitter)
        heapq.heappush(self.waiting, (due, seq, frame))

    def send_due(self, now: float) -> None:
        """Send every frame whose time has come."""
        while self.waiting and self.waiting[0][0] <= now:
            _, _, frame = heapq.heappop(self.waiting)
            try:
                self.out.send(frame)
                self.passed += 1
            except OSError:
                self.dropped += 1


def open_interface(name: str) -> socket.socket:
    """A packet socket that reads and writes whole frames on interface ``name``."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.bind((name, 0))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.setblocking(False)
    return sock


def main() -> None:
    """Carry frames between the two interfaces until terminated."""
    name_a, name_b, config_path = sys.argv[1:4]
    side_a, side_b = open_interface(name_a), open_interface(name_b)
    a_to_b, b_to_a = Direction(side_b), Direction(side_a)
    inbound = {side_a.fileno(): (side_a, a_to_b), side_b.fileno(): (side_b, b_to_a)}

    def load(*_: object) -> None:
        settings = json.loads(Path(config_path).read_text())
        a_to_b.configure(settings.get("a_to_b", {}))
        b_to_a.configure(settings.get("b_to_a", {}))

    load()
    signal.signal(signal.SIGHUP, load)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    seq = 0
    print("wire ready", flush=True)
    while True:
        now = time.monotonic()
        due = [d.waiting[0][0] for d in (a_to_b, b_to_a) if d.waiting]
        timeout = max(0.0, min(due) - now) if due else 1.0
        try:
            readable, _, _ = select.select(list(inbound), [], [], timeout)
        except InterruptedError:
            continue
        now = time.monotonic()
        for fd in readable:
            sock, direction = inbound[fd]
            for _ in range(256):
                try:
                    frame, address = sock.recvfrom(65536)
                except BlockingIOError:
                    break
                if address[2] == PACKET_OUTGOING:
                    continue  # our own sends, seen again on the way out
                seq += 1
                direction.arrive(frame, now, seq)
        for direction in (a_to_b, b_to_a):
            direction.send_due(time.monotonic())


if __name__ == "__main__":
    main()
