"""What one forwarded packet costs on the server's packet path, with real SRTP and real sockets.

Drives the media plane's own objects — ``TransportTap`` (SRTP unprotect), ``Ingress`` (demux,
REMB estimator), ``PublishedTrack`` (reports, NACK bookkeeping, packet cache, keyframe
spotting) and one ``DownTrack`` per subscriber (rewrite, SRTP protect, ``sendto`` on a UDP
socket to loopback) — with N VP8-sized packets, without ICE/DTLS set-up (keys are made up).
Prints CPU µs per incoming packet and per forwarded packet.  No network beyond 127.0.0.1.

    .venv/bin/python benchmarks/packet_cost.py --packets 200000 --subscribers 3
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import struct
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pylibsrtp import Policy, Session  # noqa: E402

from media.contract import TrackInfo  # noqa: E402
from media.downtrack import DownTrack, LegParameters  # noqa: E402
from media.ingress import Ingress  # noqa: E402
from media.published_track import PublishedTrack  # noqa: E402
from media.rtp import build_extensions  # noqa: E402
from media.sender import NativeSender, PacketSender, PythonSender  # noqa: E402
from media.srtp import SrtpContext, native_handles  # noqa: E402
from media.stats import MediaStats  # noqa: E402
from media.transport_tap import TransportTap  # noqa: E402

KEY = bytes(range(30))


class _Events:
    """Stands in for a peer connection's event emitter (the tap only subscribes)."""

    def on(self, event: str, handler: Any) -> None:
        pass


def _session(direction: int) -> Session:
    policy = Policy(key=KEY, ssrc_type=direction, srtp_profile=Policy.SRTP_PROFILE_AES128_CM_SHA1_80)
    policy.allow_repeat_tx = True
    policy.window_size = 1024
    return Session(policy)


def _sender(sink: socket.socket, port: int, native: bool) -> PacketSender:
    session = _session(Policy.SSRC_ANY_OUTBOUND)
    if native and NativeSender is not None:
        return NativeSender(session, *native_handles(session), sink.fileno(), "127.0.0.1", port)
    return PythonSender(session, sink, ("127.0.0.1", port))


def _tap(stats: MediaStats, sink: socket.socket, port: int, native: bool = True) -> TransportTap:
    tap = TransportTap(_Events(), lambda data, at: None, lambda data: None, stats)  # type: ignore[arg-type]
    tap._rx = SrtpContext(_session(Policy.SSRC_ANY_INBOUND))
    tap.sender = _sender(sink, port, native)
    tap.installed = True
    return tap


def main() -> None:
    asyncio.run(run())


async def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=100_000)
    parser.add_argument("--subscribers", type=int, default=3)
    parser.add_argument("--payload", type=int, default=1100, help="bytes of VP8 payload per packet")
    parser.add_argument(
        "--python-sender", action="store_true", help="send from Python, not media._sender (C)"
    )
    args = parser.parse_args()

    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.setblocking(False)
    port = receiver.getsockname()[1]
    out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    out.setblocking(False)

    stats = MediaStats()
    ingress = Ingress(_Events(), stats)  # type: ignore[arg-type]
    ingress.tap = _tap(stats, out, port)
    ingress.tap._on_rtp, ingress.tap._on_rtcp = ingress._on_rtp, ingress._on_rtcp
    info = TrackInfo("p/video/1", "p", "video", "VP8", 90000)
    track = PublishedTrack(
        info, ingress.tap.send_rtcp, 1, None, stats, 0.5, on_live=lambda t: None, on_ended=lambda t: None
    )
    ingress.add_track(track, [96], 97, abs_send_time_id=2)
    for index in range(args.subscribers):
        leg = LegParameters(1000 + index, 2000 + index, 98, 99, str(index), 1, 3)
        tap = _tap(stats, out, port, native=not args.python_sender)
        down = DownTrack("video", leg, tap, stats)
        down.attach(track)
        down.set_ready(True)

    publisher = _session(Policy.SSRC_ANY_OUTBOUND)
    payload_rest = os.urandom(args.payload - 2)
    packets = []
    for seq in range(args.packets):
        first_of_frame = seq % 10 == 0
        descriptor = bytes([0x10 if first_of_frame else 0x00, 0x00 if seq == 0 else 0x01])
        extension = build_extensions([(2, (seq * 1000 & 0xFFFFFF).to_bytes(3, "big"))])
        header = struct.pack(
            "!BBHII", 0x90, (0x80 if seq % 10 == 9 else 0) | 96, seq & 0xFFFF, seq // 10 * 3000, 42
        )
        packets.append(publisher.protect(header + extension + descriptor + payload_rest))

    receive = ingress.tap._receive
    drained = 0
    started_cpu, started = time.process_time(), time.perf_counter()
    for index, data in enumerate(packets):
        receive(data)
        if index % 64 == 63:  # keep the receiving socket's buffer from overflowing (not timed apart)
            try:
                while True:
                    receiver.recv(2048)
                    drained += 1
            except BlockingIOError:
                pass
    cpu, wall = time.process_time() - started_cpu, time.perf_counter() - started
    forwarded = stats.packets_out
    sending = "Python" if args.python_sender or NativeSender is None else "C (media._sender)"
    print(f"packets in {stats.packets_in}, forwarded {forwarded} ({args.subscribers} subscribers)")
    print(f"sent from {sending}")
    per_in, per_wall = cpu / args.packets * 1e6, wall / args.packets * 1e6
    print(f"CPU per incoming packet  {per_in:.1f} µs (wall {per_wall:.1f} µs)")
    print(f"CPU per forwarded packet {cpu / max(forwarded, 1) * 1e6:.1f} µs (drains included)")
    p50, p99 = stats.transit_quantile(0.5) or 0, stats.transit_quantile(0.99) or 0
    print(f"transit p50 ≤ {p50 * 1e3:.2f} ms, p99 ≤ {p99 * 1e3:.2f} ms (histogram bucket bounds)")
    print(f"malformed {stats.dropped_malformed}, unknown {stats.dropped_unknown}")


if __name__ == "__main__":
    main()
