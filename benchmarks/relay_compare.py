"""Server CPU of our forwarding router against aiortc's decode/re-encode MediaRelay.

A hearing of N participants (default 4), each publishing pre-encoded 640x480 30 fps VP8
(~1 Mbps) and Opus and receiving everyone else.  The server runs in its own process
(``--serve VARIANT``, JSON lines on stdin/stdout) so that only its CPU is measured; the
participants are aiortc peers in this process, receiving encoded frames without decoding.

Run inside a loopback-only network namespace:

    unshare -n sh -c 'ip link set lo up && .venv/bin/python benchmarks/relay_compare.py'

Variants: ``forwarding`` (media.Router, asyncio loop), ``forwarding-uvloop``
(the same on uvloop), ``relay`` (aiortc's MediaRelay as in aiortc's examples: every
published track decoded once, re-encoded per subscriber).
"""

from __future__ import annotations

import argparse
import asyncio
import fractions
import json
import os
import resource
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import av  # noqa: E402
from aiortc import RTCPeerConnection, RTCSessionDescription  # noqa: E402
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack  # noqa: E402

from benchmarks.media import Clip, make_clip  # noqa: E402
from benchmarks.server import udp_receive_buffer_drops  # noqa: E402
from media.aiortc_adapter import (  # noqa: E402
    ReceiverTap,
    install_host_addresses,
    redirect_keyframe_requests,
)
from media.contract import MediaSettings, TrackMapping  # noqa: E402
from media.peer import peer_configuration  # noqa: E402
from media.router import Router  # noqa: E402

WIDTH, HEIGHT, FPS = 640, 480, 30
VIDEO_BITRATE = 1_000_000
AUDIO_FRAME = 960
SETTINGS = MediaSettings(host_addresses=["127.0.0.1"])
SCRIPT = Path(__file__).resolve()


# --- pre-encoded media: benchmarks.media ------------------------------------------------------


class PacketSource(MediaStreamTrack):
    """Serves pre-encoded packets at real-time pace; a keyframe request serves an intra frame."""

    def __init__(self, kind: str, packets: list[bytes], intra: list[bytes] | None = None) -> None:
        super().__init__()
        self.kind = kind
        self._packets, self._intra = packets, intra
        self._clock = 90000 if kind == "video" else 48000
        self._step = 90000 // FPS if kind == "video" else AUDIO_FRAME
        self._count = 0
        self._start: float | None = None
        self._keyframe_wanted = False

    def request_keyframe(self) -> None:
        self._keyframe_wanted = True

    async def recv(self) -> av.Packet:
        now = time.monotonic()
        if self._start is None:
            self._start = now
        due = self._start + self._count * self._step / self._clock
        if due > now:
            await asyncio.sleep(due - now)
        index = self._count
        position = 0 if index == 0 else 1 + (index - 1) % (len(self._packets) - 1)
        if self._intra and self._keyframe_wanted and index:
            self._keyframe_wanted = False
            data = self._intra[position]
        else:
            data = self._packets[position]
        packet = av.Packet(data)
        packet.pts = index * self._step
        packet.time_base = fractions.Fraction(1, self._clock)
        self._count += 1
        return packet


# --- the server process --------------------------------------------------------------------------


class LineChannel:
    """JSON lines on stdout, for replies and events from the server process."""

    def send(self, message: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()


class ForwardingServer:
    def __init__(self, channel: LineChannel) -> None:
        self._channel = channel
        self.router = Router(SETTINGS, self)

    async def subscriber_offer(self, participant_id: str, sdp: str, tracks: list[TrackMapping]) -> None:
        self._channel.send(
            {
                "event": "offer",
                "pid": participant_id,
                "sdp": sdp,
                "tracks": [[t.mid, t.participant_id, t.kind] for t in tracks],
            }
        )

    def connection_state_changed(self, participant_id: str, state: str) -> None:
        pass

    def link_quality_changed(self, participant_id: str, quality: object) -> None:
        pass

    async def publish(self, pid: str, sdp: str) -> str:
        return await self.router.publish(pid, sdp)

    async def answer(self, pid: str, sdp: str) -> None:
        await self.router.subscriber_answer(pid, sdp)

    async def subscribe_all(self) -> None:
        pass  # the router offers tracks itself as they arrive

    async def close(self) -> None:
        await self.router.close()


class RelayServer:
    """aiortc's own way: decode every published track, MediaRelay, re-encode per subscriber."""

    def __init__(self, channel: LineChannel) -> None:
        from aiortc.contrib.media import MediaRelay

        install_host_addresses(SETTINGS)
        self._channel = channel
        self._relay = MediaRelay()
        self._tracks: dict[str, list[MediaStreamTrack]] = {}
        self._pcs: dict[tuple[str, str], RTCPeerConnection] = {}

    async def publish(self, pid: str, sdp: str) -> str:
        pc = RTCPeerConnection(peer_configuration(SETTINGS))
        self._pcs[(pid, "publish")] = pc
        tracks: list[MediaStreamTrack] = []
        pc.on("track", tracks.append)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        self._tracks[pid] = tracks
        return pc.localDescription.sdp

    async def subscribe_all(self) -> None:
        for pid in self._tracks:
            pc = RTCPeerConnection(peer_configuration(SETTINGS))
            self._pcs[(pid, "subscribe")] = pc
            owners = []
            for other, tracks in self._tracks.items():
                if other != pid:
                    for track in tracks:
                        pc.addTransceiver(self._relay.subscribe(track), direction="sendonly")
                        owners.append((other, track.kind))
            await pc.setLocalDescription(await pc.createOffer())
            mapping = [
                [t.mid, owner, kind] for t, (owner, kind) in zip(pc.getTransceivers(), owners, strict=True)
            ]
            self._channel.send(
                {"event": "offer", "pid": pid, "sdp": pc.localDescription.sdp, "tracks": mapping}
            )

    async def answer(self, pid: str, sdp: str) -> None:
        await self._pcs[(pid, "subscribe")].setRemoteDescription(
            RTCSessionDescription(sdp=sdp, type="answer")
        )

    async def close(self) -> None:
        for pc in self._pcs.values():
            await pc.close()


async def serve(variant: str) -> None:
    channel = LineChannel()
    server: ForwardingServer | RelayServer = (
        RelayServer(channel) if variant == "relay" else ForwardingServer(channel)
    )
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 20)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        request = json.loads(line)
        op, reply = request["op"], {"re": request["id"]}
        if op == "publish":
            reply["answer"] = await server.publish(request["pid"], request["sdp"])
        elif op == "answer":
            await server.answer(request["pid"], request["sdp"])
        elif op == "subscribe_all":
            await server.subscribe_all()
        elif op == "cpu":
            usage = resource.getrusage(resource.RUSAGE_SELF)
            reply.update(
                cpu=usage.ru_utime + usage.ru_stime, wall=time.monotonic(), rss_mb=usage.ru_maxrss / 1024
            )
        elif op == "close":
            await server.close()
            channel.send(reply)
            return
        channel.send(reply)


# --- the participants (this process) -------------------------------------------------------------


@dataclass
class Participant:
    pid: str
    publish: RTCPeerConnection
    subscribe: RTCPeerConnection
    mapping: dict[str, tuple[str, str]] = field(default_factory=dict)
    frames: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))


class ServerProcess:
    def __init__(self, process: asyncio.subprocess.Process, participants: dict[str, Participant]) -> None:
        self.process = process
        self.participants = participants
        self._replies: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._next = 0
        self._reader = asyncio.ensure_future(self._read())

    async def request(self, op: str, **fields: Any) -> dict[str, Any]:
        self._next += 1
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._replies[self._next] = future
        assert self.process.stdin is not None
        self.process.stdin.write((json.dumps({"op": op, "id": self._next, **fields}) + "\n").encode())
        await self.process.stdin.drain()
        return await asyncio.wait_for(future, 30)

    async def _read(self) -> None:
        assert self.process.stdout is not None
        while line := await self.process.stdout.readline():
            message = json.loads(line)
            if "re" in message:
                self._replies.pop(message["re"]).set_result(message)
            elif message.get("event") == "offer":
                asyncio.ensure_future(self._answer(message))

    async def _answer(self, message: dict[str, Any]) -> None:
        participant = self.participants[message["pid"]]
        participant.mapping = {mid: (owner, kind) for mid, owner, kind in message["tracks"]}
        pc = participant.subscribe
        await pc.setRemoteDescription(RTCSessionDescription(sdp=message["sdp"], type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        await self.request("answer", pid=participant.pid, sdp=pc.localDescription.sdp)


async def count_frames(participant: Participant, pc: RTCPeerConnection, track: MediaStreamTrack) -> None:
    transceiver = next(t for t in pc.getTransceivers() if t.receiver.track is track)
    try:
        while True:
            await track.recv()
            owner = participant.mapping.get(transceiver.mid or "")
            if owner:
                participant.frames[owner] += 1
    except MediaStreamError:
        pass


async def run_variant(variant: str, clip: Clip, count: int, seconds: float) -> dict[str, float]:
    install_host_addresses(SETTINGS)
    command = [sys.executable, str(SCRIPT), "--serve", variant]
    process = await asyncio.create_subprocess_exec(
        *command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=1 << 22
    )
    participants: dict[str, Participant] = {}
    server = ServerProcess(process, participants)
    tasks = []
    try:
        for index in range(count):
            pid = f"p{index}"
            config = peer_configuration(SETTINGS)
            participant = Participant(pid, RTCPeerConnection(config), RTCPeerConnection(config))
            participants[pid] = participant

            def on_track(track: MediaStreamTrack, participant: Participant = participant) -> None:
                receiver = next(
                    t.receiver for t in participant.subscribe.getTransceivers() if t.receiver.track is track
                )
                ReceiverTap(receiver)  # receive encoded frames: the participants never decode
                tasks.append(asyncio.ensure_future(count_frames(participant, participant.subscribe, track)))

            participant.subscribe.on("track", on_track)
            for source in (
                PacketSource("video", clip.video, clip.video_intra),
                PacketSource("audio", clip.audio),
            ):
                transceiver = participant.publish.addTransceiver(source, direction="sendonly")
                redirect_keyframe_requests(transceiver.sender, source.request_keyframe)
            await participant.publish.setLocalDescription(await participant.publish.createOffer())
            reply = await server.request("publish", pid=pid, sdp=participant.publish.localDescription.sdp)
            await participant.publish.setRemoteDescription(
                RTCSessionDescription(sdp=reply["answer"], type="answer")
            )
        await server.request("subscribe_all")

        def flowing() -> bool:
            return all(
                p.frames[(o, "video")] > 0 for p in participants.values() for o in participants if o != p.pid
            )

        deadline = time.monotonic() + 20
        while not flowing() and time.monotonic() < deadline:  # noqa: ASYNC110 - plain polling
            await asyncio.sleep(0.1)
        await asyncio.sleep(3)  # warm-up
        start = await server.request("cpu")
        drops_start = udp_receive_buffer_drops()
        client_start = time.process_time()
        before = {p.pid: dict(p.frames) for p in participants.values()}
        await asyncio.sleep(seconds)
        end = await server.request("cpu")
        drops = udp_receive_buffer_drops() - drops_start
        client_cpu = time.process_time() - client_start
        wall = end["wall"] - start["wall"]
        video_fps = []
        audio_pps = []
        for p in participants.values():
            for other in participants:
                if other != p.pid:
                    video_fps.append(
                        (p.frames[(other, "video")] - before[p.pid].get((other, "video"), 0)) / wall
                    )
                    audio_pps.append(
                        (p.frames[(other, "audio")] - before[p.pid].get((other, "audio"), 0)) / wall
                    )
        return {
            "udp_drops": drops,
            "server_cores": (end["cpu"] - start["cpu"]) / wall,
            "client_cores": client_cpu / wall,
            "video_fps_mean": sum(video_fps) / len(video_fps),
            "video_fps_min": min(video_fps),
            "audio_pps_mean": sum(audio_pps) / len(audio_pps),
            "server_rss_mb": end["rss_mb"],
        }
    finally:
        try:
            await server.request("close")
        except Exception:
            pass
        if process.returncode is None:
            process.kill()
        await process.wait()
        for task in tasks:
            task.cancel()
        for p in participants.values():
            await p.publish.close()
            await p.subscribe.close()


async def compare(variants: list[str], count: int, seconds: float) -> None:
    started = time.monotonic()
    clip = make_clip(4.0)
    kbps = sum(map(len, clip.video)) * 8 / (len(clip.video) / FPS) / 1000
    print(
        f"clip: {len(clip.video)} frames 640x480@{FPS} VP8 ≈ {kbps:.0f} kbps, "
        f"{len(clip.audio)} Opus packets; encoded in {time.monotonic() - started:.1f} s",
        flush=True,
    )
    results = {}
    for variant in variants:
        results[variant] = await run_variant(variant, clip, count, seconds)
        print(f"{variant}: done", flush=True)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"\n{count} participants, {seconds:.0f} s measured per variant, server in its own process; "
        f"{os.cpu_count()} cores, load average now {load}\n"
    )
    print(
        f"{'variant':<20}{'server cores':>13}{'client cores':>13}{'video fps':>11}{'min fps':>9}"
        f"{'audio pps':>11}{'server RSS MB':>15}{'UDP drops':>11}"
    )
    for variant, r in results.items():
        print(
            f"{variant:<20}{r['server_cores']:>13.2f}{r['client_cores']:>13.2f}{r['video_fps_mean']:>11.1f}"
            f"{r['video_fps_min']:>9.1f}{r['audio_pps_mean']:>11.1f}{r['server_rss_mb']:>15.0f}{r['udp_drops']:>11}"
        )
    print(
        "\nvideo fps / audio pps: frames each participant received per publisher (30 / 50 sent);"
        "\nUDP drops: datagrams lost to full socket buffers (a starved process);"
        " they stall aiortc's jitter buffer"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--participants", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--variants", default="forwarding,forwarding-uvloop,relay")
    args = parser.parse_args()
    if args.serve == "forwarding-uvloop":
        import uvloop

        uvloop.run(serve(args.serve))
    elif args.serve:
        asyncio.run(serve(args.serve))
    else:
        asyncio.run(compare(args.variants.split(","), args.participants, args.seconds))


if __name__ == "__main__":
    main()
