"""Hearings on media workers of a real server process, driven by aiortc pages (shared by the worker tests)."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from integration_harness import Browser, Clip, ServerApi, WsPeer, until


class TimedPage(Browser):
    """A participant's page that keeps the arrival time of every frame it receives, by kind."""

    def __init__(self, peer: WsPeer, clip: Clip) -> None:
        super().__init__(peer, clip)
        self.arrivals: dict[str, list[float]] = defaultdict(list)

    async def _read(self, track: MediaStreamTrack, transceiver: Any) -> None:
        with contextlib.suppress(MediaStreamError, asyncio.CancelledError):
            while True:
                await track.recv()
                self.arrivals[track.kind].append(time.monotonic())

    def largest_gap(self, start: float, end: float) -> dict[str, float]:
        """Per kind, the longest time without a frame between ``start`` and ``end`` (monotonic)."""
        gaps = {}
        for kind, times in self.arrivals.items():
            inside = [start] + [t for t in times if start < t < end] + [end]
            gaps[kind] = max(b - a for a, b in zip(inside, inside[1:], strict=False))
        return gaps


def free_port_block(size: int) -> int:
    """The first of ``size`` consecutive UDP ports free on loopback now."""
    for base in range(43000, 60000, size):
        with contextlib.ExitStack() as stack:
            try:
                for port in range(base, base + size):
                    sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
                    sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return base
    raise AssertionError("no free block of UDP ports")


def candidate_ports(sdp: str) -> set[int]:
    return {int(line.split()[5]) for line in sdp.splitlines() if line.startswith("a=candidate:")}


async def worker_pids(api: ServerApi) -> dict[str, int]:
    """Worker name → pid, from ``/metrics``."""
    async with api.http.get(f"{api.base}/metrics") as response:
        text = await response.text()
    return {
        name: int(pid)
        for pid, name in re.findall(r'hearing_worker_info\{pid="(\d+)",worker="([^"]+)"\} 1', text)
    }


async def open_hearing(api: ServerApi, clips: list[Clip], starts_in: int) -> tuple[str, list[TimedPage]]:
    """A hearing with the courtroom and one party admitted, both publishing and connected."""
    hearing_id = (await api.schedule(starts_in))["id"]
    party_id, token = await api.invite(hearing_id, "Aliya Witness")
    court = await api.courtroom(hearing_id)
    await court.send("open_waiting_room")
    await court.expect("state", lambda m: m["hearing"]["status"] == "open")
    party = await api.waiting_party(token, "PartyPhone/1.0")
    await court.send("admit", party_id=party_id)
    await party.expect_state("in_hearing")
    pages = [TimedPage(court, clips[0]), TimedPage(party, clips[1])]
    for page in pages:
        await page.publish()
    await connected(pages)
    return hearing_id, pages


async def connected(pages: list[TimedPage], within: float = 30) -> None:
    def all_connected() -> bool:
        state = pages[0].state()
        return state is not None and sum(
            p["connection"] == "connected" for p in state["participants"]
        ) == len(pages)

    await until(all_connected, within, f"{len(pages)} media connections")


async def start_recording(pages: list[TimedPage]) -> str:
    """``start`` (media flows from now on); returns the media worker the console shows for the hearing."""
    await asyncio.sleep(1.0)  # past the keyframe rate limit of the new subscriptions
    await pages[0].send("start")
    state = await pages[0].wait_for("state", lambda m: m["hearing"]["recording"] == "recording", within=10)
    host = state["hearing"]["media_host"]
    assert isinstance(host, str) and host.startswith("worker-"), state["hearing"]
    if len(pages) > 1:
        await until(lambda: all(len(p.arrivals["video"]) > 10 for p in pages), 20, "media both ways")
    return host


async def verify_folder(data_dir: Path, hearing_id: str) -> Path:
    [folder] = [p for p in (data_dir / "recordings").rglob(hearing_id) if p.is_dir()]
    script = Path(sys.executable).with_name("hearing-server")
    done = await asyncio.to_thread(
        subprocess.run, [str(script), "archive", "verify", str(folder)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return folder
