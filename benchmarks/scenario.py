"""One benchmark scenario: a server process, its hearings, the party processes, one measured window."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import shutil
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks.janus_server import start_janus
from benchmarks.operator import Operator
from benchmarks.participant import worker_main
from benchmarks.profile import PROFILE_NATIVE, profile_window
from benchmarks.server import (
    OPERATOR_PASSWORD,
    OPERATOR_USER,
    ServerProcess,
    Usage,
    drops_between,
    start_hearing_server,
    start_relay_server,
    udp_drops_by_socket,
    udp_receive_buffer_drops,
)

MIN_FPS = 29.0
MAX_LOSS_PCT = 1.0


@dataclass(frozen=True)
class Scenario:
    """What to run: which server, how many hearings of how many publishing participants."""

    server: str  # "forwarding" (ours), "janus" or "relay" (aiortc MediaRelay)
    hearings: int
    participants: int
    recording: bool
    uvloop: bool = True
    seconds: float = 10.0
    warmup_s: float = 2.0
    per_process: int = 4
    media_workers: int = 0  # worker processes of our server (0: media in the server process)
    profile: bool = False  # py-spy the server during the window (our server only)

    @property
    def name(self) -> str:
        loop = "" if self.uvloop or self.server != "forwarding" else " asyncio"
        recording = " rec" if self.recording else ""
        workers = f" {self.media_workers}w" if self.media_workers else ""
        return f"{self.server}{loop} {self.hearings}x{self.participants}{recording}{workers}"


@dataclass(frozen=True)
class Pinning:
    """CPUs of the server under test and of the load generator (``taskset`` / sched_setaffinity)."""

    server: list[int]
    generator: list[int]

    @property
    def server_command(self) -> list[str]:
        """The prefix that pins a server command."""
        return ["taskset", "-c", ",".join(map(str, self.server))] if self.server else []


class Worker:
    """A party process and its pipe."""

    def __init__(self, spec: dict[str, Any]) -> None:
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process = context.Process(target=worker_main, args=(child, spec), daemon=True)
        self.process.start()
        child.close()
        self.parties = spec["parties"]

    def send(self, order: dict[str, Any]) -> None:
        self.conn.send(order)

    async def receive(self, op: str, timeout_s: float) -> dict[str, Any]:
        def read() -> dict[str, Any]:
            deadline = time.monotonic() + timeout_s
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self.conn.poll(remaining):
                    raise TimeoutError(f"worker {self.process.pid}: no {op!r} within {timeout_s:.0f} s")
                message: dict[str, Any] = self.conn.recv()
                if message.get("op") == op:
                    return message

        return await asyncio.to_thread(read)

    async def ask(self, order: dict[str, Any], reply: str, timeout_s: float) -> dict[str, Any]:
        self.send(order)
        return await self.receive(reply, timeout_s)

    def stop(self) -> None:
        with contextlib.suppress(OSError, BrokenPipeError):
            self.conn.send({"op": "stop"})
        self.process.join(8)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(3)
        self.conn.close()


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


async def _all_workers(
    workers: list[Worker], order: dict[str, Any], reply: str, timeout_s: float
) -> list[dict[str, Any]]:
    for worker in workers:
        worker.send(order)
    return list(await asyncio.gather(*(w.receive(reply, timeout_s) for w in workers)))


async def _wait_flowing(workers: list[Worker], expected: dict[str, int], timeout_s: float) -> bool:
    """Until every party in ``expected`` publishes and receives video from that many others."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        statuses: dict[str, dict[str, Any]] = {}
        for reply in await _all_workers(workers, {"op": "status"}, "status", 10):
            statuses.update(reply["parties"])
        if all(
            statuses[label]["state"] == "in_hearing"
            and statuses[label]["publishing"]
            and len(statuses[label]["video_from"]) >= count
            for label, count in expected.items()
        ):
            return True
        await asyncio.sleep(0.5)
    return False


async def _sample(server: ServerProcess, start: float, end: float) -> tuple[Usage, Usage, list[float]]:
    """The server's usage at the window's start and end (wall clock), and its RSS each second."""
    await asyncio.sleep(max(0.0, start - time.time()))
    first = server.usage()
    rss = [first.rss_mb]
    while time.time() < end - 1.0:
        await asyncio.sleep(1.0)
        rss.append(server.usage().rss_mb)
    await asyncio.sleep(max(0.0, end - time.time()))
    last = server.usage()
    rss.append(last.rss_mb)
    return first, last, rss


TRANSIT_METRIC = "hearing_media_transit_seconds"
RECORDING_SUFFIXES = {".webm", ".mkv", ".mka", ".mjr"}


def recorded_mb(folder: Path) -> float:
    """Megabytes of recordings (Matroska/WebM of ours, .mjr of Janus) under ``folder``."""
    total = 0
    for path in folder.rglob("*"):
        if path.suffix in RECORDING_SUFFIXES:
            with contextlib.suppress(OSError):
                total += path.stat().st_size
    return total / 1e6


def parse_histogram(text: str, name: str) -> dict[float, float]:
    """Cumulative bucket counts (upper bound → count) of a Prometheus histogram, summed over labels."""
    buckets: dict[float, float] = {}
    prefix = name + "_bucket"
    for line in text.splitlines():
        if not line.startswith(prefix):
            continue
        labels, _, value = line[len(prefix) :].rpartition(" ")
        for label in labels.strip("{}").split(","):
            key, _, raw = label.partition("=")
            if key.strip() == "le":
                bound = float(raw.strip().strip('"').replace("+Inf", "inf"))
                buckets[bound] = buckets.get(bound, 0.0) + float(value)
    return buckets


def histogram_quantile(buckets: dict[float, float], q: float) -> float | None:
    """The upper bound of the bucket holding quantile ``q`` (None when empty)."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return None
    target = q * buckets[bounds[-1]]
    for bound in bounds:
        if buckets[bound] >= target:
            return bound
    return bounds[-1]


class TransitScraper:
    """The server's datagram-in → datagram-out histogram (``/metrics``) over the window, if it has one."""

    def __init__(self, base_url: str) -> None:
        self.url = base_url + "/metrics"
        self._start: dict[float, float] | None = None

    async def _read(self) -> dict[float, float] | None:
        try:
            async with aiohttp.ClientSession() as http, http.get(self.url) as response:
                text = await response.text()
        except (aiohttp.ClientError, OSError):
            return None
        return parse_histogram(text, TRANSIT_METRIC) or None

    async def start(self) -> None:
        """Read the histogram at the window's start."""
        self._start = await self._read()

    async def finish(self) -> dict[str, float | None]:
        """p50/p99 in ms and the count of the window (empty when the server has no such histogram)."""
        end = await self._read()
        if end is None:
            return {}
        start = self._start or {}
        delta = {bound: count - start.get(bound, 0.0) for bound, count in end.items()}
        p50, p99 = histogram_quantile(delta, 0.5), histogram_quantile(delta, 0.99)
        return {
            "p50": None if p50 is None else 1000 * p50,
            "p99": None if p99 is None else 1000 * p99,
            "count": max(delta.values(), default=0.0),
        }


def _metrics(
    scenario: Scenario, parties: list[dict[str, Any]], hearing_of: dict[str, int], window_s: float
) -> dict[str, Any]:
    """Subscriber-side figures: frame rate, loss, delay, join time, keyframe wait."""
    members: dict[int, list[str]] = {}
    for party in parties:
        members.setdefault(hearing_of[party["label"]], []).append(party["participant_id"])
    sent_by = {party["participant_id"]: party["sent"] for party in parties}
    fps: list[float] = []
    loss_by_subscriber: list[float] = []
    expected_total = received_total = retransmitted_total = 0
    delays: list[float] = []
    joins_all: list[float] = []
    joins_late: list[float] = []
    keyframe_waits: list[float] = []
    first_keyframes: list[bool] = []
    for party in parties:
        others = [pid for pid in members[hearing_of[party["label"]]] if pid != party["participant_id"]]
        for publisher in others:
            remote = party["remote"].get(f"{publisher}/video")
            fps.append(remote["frames"] / window_s if remote else 0.0)
        expected = received = 0
        for key, end in party["rtp_end"].items():
            start = party["rtp_start"].get(key, (0, 0, 0))
            expected += end[0] - start[0]
            received += end[1] - start[1]
            retransmitted_total += end[2] - start[2]
        expected_total += expected
        received_total += received
        loss_by_subscriber.append(100.0 * max(0, expected - received) / expected if expected else 100.0)
        for publisher, position, received_at in party["receipts"]:
            times = sent_by.get(publisher, {}).get(position) if position >= 0 else None
            if times:
                candidates = [t for t in times if t <= received_at + 0.002]
                if candidates:
                    delays.append(received_at - max(candidates))
        firsts = [
            remote["first_at"]
            for key, remote in party["remote"].items()
            if key.endswith("/video") and remote["first_at"] is not None
        ]
        if firsts and party["join_sent"] is not None:
            joins_all.append(min(firsts) - party["join_sent"])
            if party["late"]:
                joins_late.append(min(firsts) - party["join_sent"])
        if party["late"] and party["subscribe_connected_at"] is not None:
            for key, remote in party["remote"].items():
                if key.endswith("/video") and remote["first_at"] is not None:
                    keyframe_waits.append(remote["first_at"] - party["subscribe_connected_at"])
                    first_keyframes.append(bool(remote["first_keyframe"]))
    loss_pct = 100.0 * max(0, expected_total - received_total) / expected_total if expected_total else None
    result = {
        "subscriber_tracks": len(fps),
        "fps_min": min(fps) if fps else None,
        "fps_median": _median(fps),
        "loss_pct": loss_pct,
        "loss_pct_max": max(loss_by_subscriber) if loss_by_subscriber else None,
        "packets_forwarded": expected_total + retransmitted_total,
        "packets_retransmitted": retransmitted_total,
        "delay_ms_p50": None if not delays else 1000 * _percentile(delays, 0.5),  # type: ignore[operator]
        "delay_ms_p99": None if not delays else 1000 * _percentile(delays, 0.99),  # type: ignore[operator]
        "delay_samples": len(delays),
        "join_s_median": _median(joins_late or joins_all),
        "join_s_max": max(joins_late or joins_all) if (joins_late or joins_all) else None,
        "join_measured_on": "late joiners" if joins_late else "all parties",
        "keyframe_wait_ms_median": None if not keyframe_waits else 1000 * _median(keyframe_waits),  # type: ignore[operator]
        "keyframe_wait_ms_max": None if not keyframe_waits else 1000 * max(keyframe_waits),
        "late_joiner_first_frame_keyframe": all(first_keyframes) if first_keyframes else None,
    }
    result["passed"] = bool(
        fps and min(fps) >= MIN_FPS and loss_by_subscriber and max(loss_by_subscriber) < MAX_LOSS_PCT
    )
    return result


async def run_scenario(scenario: Scenario, log_dir: Path, pinning: Pinning | None = None) -> dict[str, Any]:
    """Run one scenario from server start to teardown; every process it started is gone on return."""
    started = time.monotonic()
    load_start = os.getloadavg()
    data_dir = Path(tempfile.mkdtemp(prefix="hearing-bench-"))
    log = log_dir / f"{scenario.name.replace(' ', '-')}.log"
    pin = pinning.server_command if pinning else []
    server: ServerProcess | None = None
    operator: Operator | None = None
    workers: list[Worker] = []
    notes: list[str] = []
    try:
        rooms: list[int | None] = [None] * scenario.hearings
        if scenario.server == "relay":
            server = await asyncio.to_thread(start_relay_server, scenario.participants, log, pin)
            tokens = [[f"relay-party-{i + 1:02d}" for i in range(scenario.participants)]]
        elif scenario.server == "janus":
            server = await asyncio.to_thread(start_janus, scenario.hearings, log, pin)
            tokens = [[""] * scenario.participants for _ in range(scenario.hearings)]
            rooms = list(range(1, scenario.hearings + 1))
        else:
            server = await asyncio.to_thread(
                start_hearing_server,
                data_dir,
                recording=scenario.recording,
                uvloop=scenario.uvloop,
                log=log,
                # Two workers need both cores: unpinned, sharing them with the load generator.
                pin=pin if scenario.media_workers < 2 else [],
                media_workers=scenario.media_workers,
            )
            operator = Operator(server.base_url)
            await operator.login(OPERATOR_USER, OPERATOR_PASSWORD)
            tokens = []
            for number in range(1, scenario.hearings + 1):
                hearing = await operator.schedule(number, scenario.participants)
                await operator.take_seat(hearing)
                tokens.append(hearing.tokens)
        late_joiner = scenario.server != "relay" and scenario.participants >= 2
        specs: list[dict[str, Any]] = []
        hearing_of: dict[str, int] = {}
        for h, hearing_tokens in enumerate(tokens):
            for i, token in enumerate(hearing_tokens):
                label = f"h{h + 1}p{i + 1}"
                hearing_of[label] = h
                specs.append(
                    {
                        "label": label,
                        "token": token,
                        "room": rooms[h],
                        "late": late_joiner and i == len(hearing_tokens) - 1,
                    }
                )
        chunks = [specs[i : i + scenario.per_process] for i in range(0, len(specs), scenario.per_process)]
        sfu = "janus" if scenario.server == "janus" else "hearing"
        cpus = pinning.generator if pinning else None
        workers = [
            Worker({"base_url": server.base_url, "sfu": sfu, "cpus": cpus, "parties": chunk})
            for chunk in chunks
        ]
        await asyncio.gather(*(w.receive("ready", 60) for w in workers))

        per_hearing = scenario.participants
        early = {s["label"]: per_hearing - (2 if late_joiner else 1) for s in specs if not s["late"]}
        flow_timeout = 20 + 2 * len(specs)
        await _all_workers(workers, {"op": "join", "late": False}, "joined", 30)
        if late_joiner:
            if not await _wait_flowing(workers, early, flow_timeout):
                notes.append("not every early party received every other's video before the late join")
            await _all_workers(workers, {"op": "join", "late": True}, "joined", 30)
        everyone = {s["label"]: per_hearing - 1 for s in specs}
        flowing = await _wait_flowing(workers, everyone, flow_timeout)
        if not flowing:
            notes.append("not every party received every other's video before the window")
        await asyncio.sleep(scenario.warmup_s)

        window_start = time.time() + 0.5
        window_end = window_start + scenario.seconds
        for worker in workers:
            worker.send({"op": "measure", "start": window_start, "end": window_end})
        main_cpu = time.process_time()
        drops_before = udp_receive_buffer_drops()
        pids = [server.pid, *(w.process.pid for w in workers if w.process.pid is not None)]
        sockets_before = udp_drops_by_socket(pids)
        transit = TransitScraper(server.base_url) if scenario.server == "forwarding" else None
        sampling = asyncio.ensure_future(_sample(server, window_start, window_end))
        profiling = (
            asyncio.ensure_future(
                profile_window(
                    server.pid, window_start, scenario.seconds, log_dir, scenario.name, native=PROFILE_NATIVE
                )
            )
            if scenario.profile and scenario.server == "forwarding"
            else None
        )
        if transit is not None:
            await asyncio.sleep(max(0.0, window_start - time.time()))
            await transit.start()
        first, last, rss = await sampling
        profile = await profiling if profiling is not None else None
        recordings = getattr(server, "folder", data_dir)
        recorded = recorded_mb(recordings)
        transit_figures = await transit.finish() if transit is not None else {}
        udp_drops = udp_receive_buffer_drops() - drops_before
        sockets_after = udp_drops_by_socket(pids)
        drops = {pid: drops_between(sockets_before[pid], sockets_after[pid]) for pid in pids}
        main_cpu = time.process_time() - main_cpu
        replies = await asyncio.gather(*(w.receive("measured", scenario.seconds + 30) for w in workers))
        parties = [party for reply in replies for party in reply["parties"]]
        window = last.at - first.at
        cpu = last.cpu_s - first.cpu_s
        figures = _metrics(scenario, parties, hearing_of, scenario.seconds)
        generator_cpu = sum(reply["cpu_s"] for reply in replies) + main_cpu
        errors = sorted({f"{p['label']}: {e}" for p in parties for e in p["errors"]})
        generator_cores = generator_cpu / window
        server_wait = max(0.0, last.wait_s - first.wait_s) / window
        if not figures["passed"] and server_wait > 0.5:
            notes.append(
                f"the server's threads waited {server_wait:.1f} thread-seconds per second for a CPU "
                f"(other work on its CPU), {drops[server.pid]} datagrams dropped at the server"
            )
        if not figures["passed"] and (generator_cores > 0.85 or sum(drops.values()) - drops[server.pid] > 0):
            notes.append(
                f"the load generator may have been the limit ({generator_cores:.2f} cores, "
                f"{sum(drops.values()) - drops[server.pid]} datagrams dropped at the parties)"
            )
        if operator is not None:
            errors += [f"operator: {e}" for h in operator.hearings for e in h.errors]
        return {
            "name": scenario.name,
            "scenario": asdict(scenario),
            "ok": True,
            "flowing": flowing,
            "server_pid_cores": cpu / window,
            "server_rss_mb": max(rss),
            "server_wait_cores": server_wait,
            "packets_forwarded_per_s": figures["packets_forwarded"] / scenario.seconds,
            "server_cpu_us_per_packet": (1e6 * cpu / figures["packets_forwarded"])
            if figures["packets_forwarded"]
            else None,
            "pinned": None if pinning is None else {"server": pinning.server, "generator": pinning.generator},
            "recorded_mb": recorded,
            "transit_ms_p50": transit_figures.get("p50"),
            "transit_ms_p99": transit_figures.get("p99"),
            "transit_samples": transit_figures.get("count"),
            "srtp_errors_at_parties": sum(p.get("srtp_errors", 0) for p in parties),
            "retransmitted_by_publishers": sum(p.get("retransmitted_by_publisher", 0) for p in parties),
            "generator_cores": generator_cpu / window,
            "generator_processes": len(workers),
            "generator_system_share": sum(reply.get("system_s", 0.0) for reply in replies)
            / max(1e-9, sum(reply["cpu_s"] for reply in replies)),
            "generator_packets_sent": sum(reply.get("packets_sent", 0) for reply in replies),
            "generator_us_per_packet": 1e6
            * generator_cpu
            / max(1, figures["packets_forwarded"] + sum(reply.get("packets_sent", 0) for reply in replies)),
            "udp_rcvbuf_drops": udp_drops,
            "udp_drops_at_server": drops[server.pid],
            "udp_drops_at_parties": sum(drops.values()) - drops[server.pid],
            **figures,
            "errors": errors[:20],
            "notes": notes,
            "profile": profile,
            "load_start": list(load_start),
            "load_end": list(os.getloadavg()),
            "elapsed_s": time.monotonic() - started,
        }
    except Exception as exc:  # noqa: BLE001 - one failed scenario is reported, the run goes on
        return {
            "name": scenario.name,
            "scenario": asdict(scenario),
            "ok": False,
            "passed": False,
            "error": f"{type(exc).__name__}: {exc}",
            "notes": notes,
            "load_start": list(load_start),
            "load_end": list(os.getloadavg()),
            "elapsed_s": time.monotonic() - started,
        }
    finally:
        await asyncio.gather(*(asyncio.to_thread(w.stop) for w in workers), return_exceptions=True)
        if operator is not None:
            with contextlib.suppress(Exception):
                await operator.close()
        if server is not None:
            await asyncio.to_thread(server.stop)
        shutil.rmtree(data_dir, ignore_errors=True)
