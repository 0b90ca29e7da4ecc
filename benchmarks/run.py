"""``make bench``: the cost of live hearings on this machine, side by side with Janus 1.1.2.

Every scenario starts a real server process (``python -m hearing_server serve --plain-http``),
schedules hearings through the REST API, runs them from a scripted courtroom seat, and lets
synthetic parties join with their invitation links; the same parties then join rooms of a Janus
VideoRoom (recording on) started for the scenario.  The parties use aiortc only for ICE/DTLS
and send the pre-packetized clip (640x480 30 fps VP8 ~1 Mbps + Opus) and count what they
receive on raw sockets (SRTP with pylibsrtp).  The server runs pinned to CPU 0, the load
generator to CPU 1; the server's CPU and memory are read from /proc during a steady window.

Loopback only: as root the run moves itself into a new network namespace with only ``lo``
(``unshare -n``); otherwise ICE still offers 127.0.0.1 alone and no STUN/TURN server.
Janus is installed with apt-get when missing (before the namespace is entered).

    python -m benchmarks.run                        # the default set
    python -m benchmarks.run --participants 4 --no-capacity --seconds 5
    python -m benchmarks.run --participants 2 --recording off --no-janus --no-capacity
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shlex
import shutil
import socket
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import report
from benchmarks.media import CACHE_DIR, load_clip
from benchmarks.scenario import MAX_LOSS_PCT, MIN_FPS, Pinning, Scenario, run_scenario

NETNS_MARK = "HEARING_BENCH_NETNS"
DEFAULT_OUT = Path(__file__).resolve().parent / "results"


def _counts(text: str) -> list[int]:
    values = [int(part) for part in text.split(",") if part.strip()]
    if not values or any(value < 1 for value in values):
        raise argparse.ArgumentTypeError("a comma-separated list of positive numbers")
    return values


def _worker_counts(text: str) -> list[int]:
    values = [int(part) for part in text.split(",") if part.strip()]
    if not values or any(value < 0 for value in values):
        raise argparse.ArgumentTypeError("a comma-separated list of worker counts (0: media in the server)")
    return values


def parser() -> argparse.ArgumentParser:
    """The command-line options of the benchmark."""
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--participants",
        type=_counts,
        default=[2, 4, 6],
        help="publishing participants per hearing (default 2,4,6)",
    )
    p.add_argument(
        "--media-workers",
        type=_counts,
        default=[],
        help="also run each recorded forwarding size with these media worker counts, e.g. 1,2 (default none)",
    )
    p.add_argument("--hearings", type=int, default=1, help="concurrent hearings in each scenario (default 1)")
    p.add_argument("--seconds", type=float, default=10.0, help="measured window per scenario (default 10)")
    p.add_argument(
        "--warmup", type=float, default=2.0, help="seconds after everyone receives everyone (default 2)"
    )
    p.add_argument(
        "--recording",
        choices=["on", "off", "both"],
        default="on",
        help="our server's hearings recorded or not (default on; Janus always records)",
    )
    p.add_argument(
        "--janus",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run every hearing size and the capacity load on Janus too (default on)",
    )
    p.add_argument(
        "--pin",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="server on CPU 0 (taskset), load generator on CPU 1 (default on with ≥ 2 CPUs)",
    )
    p.add_argument(
        "--nice",
        type=int,
        default=0,
        help="niceness of the servers and the load generator (default 0; below 0 needs root and takes"
        " the CPU from the machine's other work — only on a machine of your own)",
    )
    p.add_argument(
        "--profile",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="py-spy our server during each window and print where its CPU goes (default off)",
    )
    p.add_argument(
        "--relay",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="also run aiortc's decode/re-encode MediaRelay (default off)",
    )
    p.add_argument("--relay-participants", type=_counts, default=[2, 4], help="relay scenarios (default 2,4)")
    p.add_argument(
        "--loop-compare",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="also run the capacity-sized recorded hearing on the plain asyncio loop (default off)",
    )
    p.add_argument(
        "--capacity",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="search the hearing capacity (default on)",
    )
    p.add_argument(
        "--capacity-participants", type=int, default=4, help="participants per hearing in the search (4)"
    )
    p.add_argument(
        "--max-hearings", type=int, default=8, help="upper bound of the capacity search (default 8)"
    )
    p.add_argument(
        "--capacity-from", type=int, default=1, help="first hearing count of the capacity search (default 1)"
    )
    p.add_argument("--capacity-step", type=int, default=1, help="step of the capacity search (default 1)")
    p.add_argument(
        "--capacity-workers",
        type=_worker_counts,
        default=[0],
        help="search the capacity of our server with each of these media worker counts, e.g. 0,2"
        " (default 0: media in the server process)",
    )
    p.add_argument(
        "--janus-capacity",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="also search Janus's own capacity (default off: Janus runs our capacity load only)",
    )
    p.add_argument(
        "--per-process", type=int, default=4, help="synthetic parties per load-generator process (default 4)"
    )
    p.add_argument(
        "--budget", type=float, default=900.0, help="skip what would start after this many seconds (900)"
    )
    p.add_argument(
        "--cluster",
        action="store_true",
        help="only the cluster search: two nodes (one core each) on a throwaway PostgreSQL database,"
        " recorded hearings per node and in total (benchmarks/cluster.py)",
    )
    p.add_argument(
        "--cluster-database",
        default=os.environ.get(
            "HEARING_TEST_DATABASE_URL", "postgresql+asyncpg:///postgres?host=/var/run/postgresql"
        ),
        help="PostgreSQL to create the cluster's throwaway database beside (default: the unix socket)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help="where latest.json and latest.md (--cluster: cluster.json) go",
    )
    p.add_argument(
        "--netns", choices=["auto", "off"], default="auto", help="auto: re-run inside `unshare -n` as root"
    )
    return p


def _only_loopback() -> bool:
    return {name for _, name in socket.if_nameindex()} <= {"lo"}


def _reexec_in_netns(argv: list[str]) -> int | None:
    """Run this command again in a loopback-only network namespace; None when not possible or needed."""
    if os.environ.get(NETNS_MARK) or _only_loopback() or os.geteuid() != 0:
        return None
    command = shlex.join([sys.executable, "-m", "benchmarks.run", *argv])
    env = dict(os.environ, **{NETNS_MARK: "1"})
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH", "")]))
    os.chdir(root)
    os.execvpe("unshare", ["unshare", "-n", "sh", "-c", f"ip link set lo up && exec {command}"], env)
    return 0  # not reached


def plan(args: argparse.Namespace) -> list[Scenario]:
    """The scenarios before the capacity search, in the order they run."""
    recordings = {"on": [True], "off": [False], "both": [True, False]}[args.recording]
    common = {
        "seconds": args.seconds,
        "warmup_s": args.warmup,
        "per_process": args.per_process,
        "profile": args.profile,
    }
    scenarios = []
    for n in args.participants:
        scenarios += [
            Scenario("forwarding", args.hearings, n, recording, **common) for recording in recordings
        ]
        scenarios += [
            Scenario("forwarding", args.hearings, n, True, media_workers=workers, **common)
            for workers in args.media_workers
        ]
        if args.janus:
            scenarios.append(Scenario("janus", args.hearings, n, True, **common))
    if args.loop_compare:
        scenarios.append(Scenario("forwarding", 1, args.capacity_participants, True, uvloop=False, **common))
    if args.relay:
        scenarios += [Scenario("relay", 1, n, False, **common) for n in args.relay_participants]
    return scenarios


def _find(results: list[dict[str, Any]], **match: Any) -> dict[str, Any] | None:
    for result in results:
        scenario = result["scenario"]
        if result.get("ok") and all(scenario.get(k) == v for k, v in match.items()):
            return result
    return None


def relay_ratios(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Relay against forwarding for the same hearing size (both unrecorded, one hearing)."""
    ratios = []
    for relay in results:
        scenario = relay["scenario"]
        if scenario["server"] != "relay" or not relay.get("ok"):
            continue
        forwarding = _find(
            results,
            server="forwarding",
            hearings=1,
            participants=scenario["participants"],
            recording=False,
            uvloop=True,
        )
        if forwarding is None:
            forwarding = _find(
                results, server="forwarding", hearings=1, participants=scenario["participants"], uvloop=True
            )
        if forwarding is None:
            continue

        def ratio(
            key: str, relay: dict[str, Any] = relay, forwarding: dict[str, Any] = forwarding
        ) -> float | None:
            a, b = relay.get(key), forwarding.get(key)
            return a / b if a and b else None

        ratios.append(
            {
                "participants": scenario["participants"],
                "forwarding": forwarding["name"],
                "cpu_ratio": ratio("server_pid_cores"),
                "us_per_packet_ratio": ratio("server_cpu_us_per_packet"),
                "rss_ratio": ratio("server_rss_mb"),
                "relay_fps_min": None if relay.get("fps_min") is None else round(relay["fps_min"], 1),
                "forwarding_fps_min": None
                if forwarding.get("fps_min") is None
                else round(forwarding["fps_min"], 1),
            }
        )
    return ratios


def janus_ratios(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Our server against Janus for the same load (both recorded): CPU per forwarded packet and more."""
    ratios = []
    for index, janus in enumerate(results):
        scenario = janus["scenario"]
        if scenario["server"] != "janus" or not janus.get("ok"):
            continue
        # with repeated sizes (--participants 4,6,4,6), each Janus row pairs with our row run just before it
        ours = _find(
            [*results[:index][::-1], *results[index:]],
            server="forwarding",
            hearings=scenario["hearings"],
            participants=scenario["participants"],
            recording=True,
            uvloop=True,
        )
        if ours is None:
            continue

        def ratio(key: str, ours: dict[str, Any] = ours, janus: dict[str, Any] = janus) -> float | None:
            a, b = ours.get(key), janus.get(key)
            return a / b if a and b else None

        ratios.append(
            {
                "hearings": scenario["hearings"],
                "participants": scenario["participants"],
                "ours": ours["name"],
                "janus": janus["name"],
                "ours_us_per_packet": ours.get("server_cpu_us_per_packet"),
                "janus_us_per_packet": janus.get("server_cpu_us_per_packet"),
                "us_per_packet_ratio": ratio("server_cpu_us_per_packet"),
                "cpu_ratio": ratio("server_pid_cores"),
                "rss_ratio": ratio("server_rss_mb"),
                "delay_p50_ms": [ours.get("delay_ms_p50"), janus.get("delay_ms_p50")],
                "fps_min": [ours.get("fps_min"), janus.get("fps_min")],
            }
        )
    return ratios


async def _search(
    server: str,
    args: argparse.Namespace,
    results: list[dict[str, Any]],
    log_dir: Path,
    deadline: float,
    pinning: Pinning | None,
    media_workers: int = 0,
) -> dict[str, Any]:
    """The most concurrent recorded hearings of ``--capacity-participants`` on ``server`` (ours with
    ``media_workers``) that all pass (``--capacity-from``, then up by ``--capacity-step`` to
    ``--max-hearings``, stopping at a failure)."""
    n = args.capacity_participants
    common = {"seconds": args.seconds, "warmup_s": args.warmup, "per_process": args.per_process}
    held = 0
    stopped = f"reached --max-hearings {args.max_hearings}"
    steps = []
    for hearings in range(args.capacity_from, args.max_hearings + 1, args.capacity_step):
        match = {"uvloop": True, "media_workers": media_workers} if server == "forwarding" else {}
        result = _find(results, server=server, hearings=hearings, participants=n, recording=True, **match)
        if result is None:
            # a step takes about as long as the window plus ~5 s of joining per hearing
            if time.monotonic() + args.seconds + args.warmup + 20 + 5 * hearings > deadline:
                stopped = "time budget used up"
                break
            scenario = Scenario(server, hearings, n, True, media_workers=media_workers, **common)
            print(f"[capacity] {scenario.name} …", flush=True)
            result = await run_scenario(scenario, log_dir, pinning)
            results.append(result)
            _print_one(result)
        steps.append(
            {
                "hearings": hearings,
                "name": result["name"],
                "passed": bool(result.get("passed")),
                "fps_min": result.get("fps_min"),
                "loss_pct_max": result.get("loss_pct_max"),
                "server_cpu_us_per_packet": result.get("server_cpu_us_per_packet"),
                "server_cores": result.get("server_pid_cores"),  # its media workers included
                "generator_cores": result.get("generator_cores"),  # the load generator, on the same machine
            }
        )
        if not result.get("passed"):
            stopped = (
                f"{hearings} hearing(s) failed: min fps {_fmt(result.get('fps_min'))}, "
                f"worst loss {_fmt(result.get('loss_pct_max'))} %"
            )
            break
        held = hearings
    return {
        "server": server,
        "media_workers": media_workers if server == "forwarding" else None,
        "hearings": held,
        "participants": n,
        "min_fps": MIN_FPS,
        "max_loss_pct": MAX_LOSS_PCT,
        "searched_up_to": args.max_hearings,
        "stopped_because": stopped,
        "steps": steps,
    }


async def capacity_search(
    args: argparse.Namespace,
    results: list[dict[str, Any]],
    log_dir: Path,
    deadline: float,
    pinning: Pinning | None,
) -> dict[str, Any]:
    """Our server's capacity with the first of ``--capacity-workers`` (the others' searches follow, in
    ``by_workers``); with ``--janus`` Janus then runs the same capacity load (the most hearings ours held,
    at least the first step), and with ``--janus-capacity`` searches its own capacity too."""
    first, *others = args.capacity_workers
    capacity = await _search("forwarding", args, results, log_dir, deadline, pinning, first)
    capacity["by_workers"] = [
        await _search("forwarding", args, results, log_dir, deadline, pinning, workers) for workers in others
    ]
    n = args.capacity_participants
    janus_step = None
    if args.janus:
        load = max(capacity["hearings"], args.capacity_from)
        result = _find(results, server="janus", hearings=load, participants=n)
        if result is None and time.monotonic() + args.seconds + args.warmup + 20 + 5 * load <= deadline:
            common = {"seconds": args.seconds, "warmup_s": args.warmup, "per_process": args.per_process}
            scenario = Scenario("janus", load, n, True, **common)
            print(f"[capacity] {scenario.name} …", flush=True)
            result = await run_scenario(scenario, log_dir, pinning)
            results.append(result)
            _print_one(result)
        if result is not None:
            janus_step = {"hearings": load, "passed": bool(result.get("passed"))}
    capacity["janus_at_capacity_load"] = janus_step
    capacity["janus"] = (
        await _search("janus", args, results, log_dir, deadline, pinning)
        if args.janus and args.janus_capacity
        else None
    )
    return capacity


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def _print_one(result: dict[str, Any]) -> None:
    if not result.get("ok"):
        print(f"  {result['name']}: FAILED {result.get('error')}", flush=True)
        return
    print(
        f"  {result['name']}: server {result['server_pid_cores']:.2f} cores, "
        f"{result['server_rss_mb']:.0f} MB, "
        f"min fps {_fmt(result.get('fps_min'))}, loss {_fmt(result.get('loss_pct_max'))} %, "
        f"generator {result['generator_cores']:.2f} cores ({result['elapsed_s']:.0f} s)",
        flush=True,
    )


def pinning_for(args: argparse.Namespace) -> Pinning | None:
    """Server on CPU 0, load generator on CPU 1 (and this process), when asked and possible."""
    cpus = sorted(os.sched_getaffinity(0))
    if not args.pin or len(cpus) < 2 or shutil.which("taskset") is None:
        return None
    pinning = Pinning(server=[cpus[0]], generator=cpus[1:2])
    os.sched_setaffinity(0, set(pinning.generator))
    return pinning


async def bench(args: argparse.Namespace, argv: list[str]) -> dict[str, Any]:
    """Run the planned scenarios and the capacity search within the time budget."""
    if args.nice:
        os.nice(args.nice)  # inherited by every server and party process
    pinning = pinning_for(args)
    started = time.monotonic()
    started_at = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    deadline = started + args.budget
    load_start = os.getloadavg()
    encode_started = time.monotonic()
    clip, encoded = load_clip()
    print(
        f"clip: 640x480 {len(clip.video)} frames ≈ {clip.video_kbps:.0f} kbps VP8 + Opus "
        f"({'encoded now' if encoded else 'cached'} in {time.monotonic() - encode_started:.1f} s); "
        f"loopback only: {_only_loopback()}",
        flush=True,
    )
    log_dir = CACHE_DIR / "logs"  # server logs, for when a scenario fails
    log_dir.mkdir(parents=True, exist_ok=True)
    for old in log_dir.glob("*.log"):
        old.unlink()
    results: list[dict[str, Any]] = []
    skipped: list[str] = []
    for scenario in plan(args):
        if time.monotonic() + scenario.seconds + scenario.warmup_s + 20 > deadline:
            skipped.append(scenario.name)
            continue
        print(f"{scenario.name} …", flush=True)
        result = await run_scenario(scenario, log_dir, pinning)
        results.append(result)
        _print_one(result)
    capacity = await capacity_search(args, results, log_dir, deadline, pinning) if args.capacity else None
    return {
        "started_at": started_at,
        "command": shlex.join(["python", "-m", "benchmarks.run", *argv]),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "loopback_only": _only_loopback(),
            "pinning": None
            if pinning is None
            else {"server": pinning.server, "generator": pinning.generator},
        },
        "clip": {
            "width": 640,
            "height": 480,
            "fps": 30,
            "video_kbps": round(clip.video_kbps),
            "audio": "Opus 32 kbps mono",
        },
        "criteria": {"min_fps": MIN_FPS, "max_loss_pct": MAX_LOSS_PCT},
        "results": results,
        "skipped": skipped,
        "relay_ratios": relay_ratios(results),
        "janus_ratios": janus_ratios(results),
        "capacity": capacity,
        "load_start": list(load_start),
        "load_end": list(os.getloadavg()),
        "elapsed_s": time.monotonic() - started,
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; prints the table and writes results/latest.json and latest.md."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(argv)
    if args.cluster:
        return _cluster(args, argv)
    if args.janus and not os.environ.get(NETNS_MARK):  # installing needs the network: before unshare
        from benchmarks.janus_server import build_shim, ensure_janus

        ensure_janus()
        build_shim()
    if args.netns == "auto":
        _reexec_in_netns(argv)
    if not _only_loopback():
        print("note: not in a loopback-only network namespace; ICE still offers 127.0.0.1 only", flush=True)
    run = asyncio.run(bench(args, argv))
    json_path, md_path = report.write(run, args.out)
    print()
    print(report.text_table(run["results"]))
    print()
    if run["capacity"] is not None:
        print(report.capacity_table(run))
        print()
    for line in report.summary_lines(run):
        print(line)
    for line in report.profile_lines(run["results"]):
        print(line)
    if run["skipped"]:
        print(f"Skipped for time: {', '.join(run['skipped'])}")
    print(f"\nwritten: {json_path}, {md_path}")
    return 0 if all(r.get("ok") for r in run["results"]) else 1


def _cluster(args: argparse.Namespace, argv: list[str]) -> int:
    from benchmarks.cluster import cluster_search

    if args.netns == "auto":
        _reexec_in_netns(argv)
    log_dir = CACHE_DIR / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    load_clip()  # encoded once, before the nodes start
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    capacity = asyncio.run(cluster_search(args, log_dir))
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "cluster.json"
    command = shlex.join(["python", "-m", "benchmarks.run", *argv])
    path.write_text(json.dumps({"started_at": started_at, "command": command, **capacity}, indent=1) + "\n")
    print(f"written: {path}", flush=True)
    return 0 if capacity["per_node"] > 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
