"""``make bench ARGS=--cluster``: hearings per node and the cluster's total, two nodes on this machine.

Two ``hearing-server serve`` processes share a throwaway PostgreSQL database (created on the unix socket,
migrated, dropped at the end) and one data folder; each node has its own loopback address (127.0.0.2,
127.0.0.3: signaling, the internal bridge and its ICE host address) and is pinned to a core of its own with
``taskset``. The synthetic parties (:mod:`benchmarks.participant`) share the two cores with the nodes: on a
two-core machine there is no third. The search runs k recorded hearings of 4 parties on each node (2k in
all), the courtroom of each seated through the node it alternates to, and stops at the first k that fails.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url

from benchmarks.operator import Operator
from benchmarks.scenario import (
    MAX_LOSS_PCT,
    MIN_FPS,
    Scenario,
    Worker,
    _all_workers,
    _metrics,
    _sample,
    _wait_flowing,
)
from benchmarks.server import (
    OPERATOR_PASSWORD,
    OPERATOR_USER,
    ServerProcess,
    add_operator,
    free_port,
    hearing_server_env,
)
from hearing_server.store.db import create_engine, upgrade_sync

NODES = ("127.0.0.2", "127.0.0.3")
SECRET = "the benchmark cluster's secret"


async def _admin(base_url: str, statement: str) -> None:
    engine = create_engine(base_url).execution_options(isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.execute(text(statement))
    await engine.dispose()


async def hosted_per_node(url: str, node_ids: list[str]) -> list[int]:
    """How many live hearings each node holds the lease of (placement's own record), in ``node_ids`` order."""
    engine = create_engine(url)
    async with engine.connect() as conn:
        rows = await conn.execute(text("SELECT node_id, count(*) FROM hearing_leases GROUP BY node_id"))
        counts = {row[0]: int(row[1]) for row in rows}
    await engine.dispose()
    return [counts.get(node_id, 0) for node_id in node_ids]


class Cluster:
    """Two pinned nodes on a database of their own; :meth:`stop` ends them and drops the database."""

    def __init__(self, base_url: str, log_dir: Path) -> None:
        self.name = f"hearing_bench_{os.getpid()}"
        self.base_url = base_url
        self.url = make_url(base_url).set(database=self.name).render_as_string(hide_password=False)
        self.data_dir = Path(tempfile.mkdtemp(prefix="hearing-bench-cluster-"))
        self.log_dir = log_dir
        self.nodes: list[ServerProcess] = []

    async def start(self, capacity: int) -> None:
        await _admin(self.base_url, f'DROP DATABASE IF EXISTS "{self.name}"')
        await _admin(self.base_url, f'CREATE DATABASE "{self.name}"')
        await asyncio.to_thread(upgrade_sync, self.url)
        cpus = sorted(os.sched_getaffinity(0))
        for number, address in enumerate(NODES):
            port = free_port()
            env = hearing_server_env(self.data_dir, port, uvloop=True) | {
                "HEARING_DATABASE_URL": self.url,
                "HEARING_NODE_ID": f"node-{number + 1}",
                "HEARING_CLUSTER_SECRET": SECRET,
                "HEARING_ICE_HOST_ADDRESSES": address,
                "HEARING_PUBLIC_URL": f"http://{address}:{port}",
                "HEARING_CLUSTER_INTERNAL_URL": f"http://{address}:{port}",
                "HEARING_NODE_CAPACITY": str(capacity),
            }
            if number == 0:
                await asyncio.to_thread(add_operator, env)
            pin = ["taskset", "-c", str(cpus[number % len(cpus)])] if shutil.which("taskset") else []
            serve = ["serve", "--plain-http", "--host", address, "--port", str(port)]
            command = [*pin, sys.executable, "-m", "hearing_server", *serve]
            node = ServerProcess(command, env, port, self.log_dir / f"cluster-node-{number + 1}.log")
            node.base_url = f"http://{address}:{port}"
            self.nodes.append(node)
            await asyncio.to_thread(node.wait_ready, "/healthz")

    async def stop(self) -> None:
        for node in self.nodes:
            await asyncio.to_thread(node.stop)
        await _admin(self.base_url, f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        shutil.rmtree(self.data_dir, ignore_errors=True)


async def run_step(args: argparse.Namespace, per_node: int, log_dir: Path) -> dict[str, Any]:
    """``per_node`` recorded hearings of ``--capacity-participants`` on each of the two nodes."""
    n = args.capacity_participants
    scenario = Scenario("cluster", 2 * per_node, n, True, seconds=args.seconds, warmup_s=args.warmup)
    cluster = Cluster(args.cluster_database, log_dir)
    operators: list[Operator] = []
    workers: list[Worker] = []
    started = time.monotonic()
    try:
        await cluster.start(capacity=max(per_node, 1))
        operators = [Operator(node.base_url) for node in cluster.nodes]
        for operator in operators:
            await operator.login(OPERATOR_USER, OPERATOR_PASSWORD)
        specs: list[dict[str, Any]] = []
        hearing_of: dict[str, int] = {}
        for h in range(2 * per_node):
            operator = operators[h % 2]  # alternate: placement takes the least-loaded node with room
            hearing = await operator.schedule(h + 1, n)
            await operator.take_seat(hearing)
            for i, token in enumerate(hearing.tokens):
                label = f"h{h + 1}p{i + 1}"
                hearing_of[label] = h
                specs.append({"label": label, "token": token, "room": None, "late": False, "node": h % 2})
        for node in (0, 1):
            mine = [s for s in specs if s["node"] == node]
            for i in range(0, len(mine), args.per_process):
                spec = {"base_url": cluster.nodes[node].base_url, "sfu": "hearing", "cpus": None,
                        "parties": mine[i : i + args.per_process]}  # fmt: skip
                workers.append(Worker(spec))
        await asyncio.gather(*(w.receive("ready", 60) for w in workers))
        await _all_workers(workers, {"op": "join", "late": False}, "joined", 30)
        flowing = await _wait_flowing(workers, {s["label"]: n - 1 for s in specs}, 20 + 2 * len(specs))
        await asyncio.sleep(args.warmup)
        window_start = time.time() + 0.5
        window_end = window_start + args.seconds
        for worker in workers:
            worker.send({"op": "measure", "start": window_start, "end": window_end})
        samples = await asyncio.gather(*(_sample(node, window_start, window_end) for node in cluster.nodes))
        hosted = await hosted_per_node(cluster.url, [f"node-{k + 1}" for k in range(len(cluster.nodes))])
        replies = await asyncio.gather(*(w.receive("measured", args.seconds + 30) for w in workers))
        parties = [party for reply in replies for party in reply["parties"]]
        figures = _metrics(scenario, parties, hearing_of, args.seconds)
        cores = [(last.cpu_s - first.cpu_s) / (last.at - first.at) for first, last, _ in samples]
        return {
            "per_node": per_node,
            "total": 2 * per_node,
            "ok": True,
            "flowing": flowing,
            "hosted": hosted,
            "passed": figures["passed"] and hosted == [per_node, per_node],  # each node hosts its share
            "fps_min": figures["fps_min"],
            "loss_pct_max": figures["loss_pct_max"],
            "node_cores": cores,
            "node_rss_mb": [max(rss) for _, _, rss in samples],
            "generator_cores": sum(reply["cpu_s"] for reply in replies) / args.seconds,
            "elapsed_s": time.monotonic() - started,
        }
    except Exception as exc:  # noqa: BLE001 - a failed step ends the search, reported
        return {"per_node": per_node, "total": 2 * per_node, "ok": False, "passed": False,
                "error": f"{type(exc).__name__}: {exc}", "elapsed_s": time.monotonic() - started}  # fmt: skip
    finally:
        await asyncio.gather(*(asyncio.to_thread(w.stop) for w in workers), return_exceptions=True)
        for operator in operators:
            await operator.close()
        await cluster.stop()


def row(step: dict[str, Any]) -> str:
    """One table row of a search step."""
    if not step.get("ok"):
        return f"| {step['per_node']} | {step['total']} | | FAILED: {step.get('error')} | | | | |"
    cores = " / ".join(f"{c:.2f}" for c in step["node_cores"])
    hosted = " / ".join(str(h) for h in step["hosted"])
    return (
        f"| {step['per_node']} | {step['total']} | {hosted} | {'yes' if step['passed'] else 'no'} | "
        f"{step['fps_min']:.1f} | {step['loss_pct_max']:.2f} | {cores} | {step['generator_cores']:.2f} |"
    )


async def cluster_search(args: argparse.Namespace, log_dir: Path) -> dict[str, Any]:
    """The most recorded 4-party hearings per node (and in total) that all pass, k = 1, 2, … per node."""
    deadline = time.monotonic() + args.budget
    steps: list[dict[str, Any]] = []
    held = 0
    stopped = f"reached --max-hearings {args.max_hearings} per node"
    load_start = os.getloadavg()
    header = (
        "hearings per node | cluster total | hosted (A / B) | passed | min fps | worst loss % | node cores"
    )
    print(f"| {header} (A / B) | generator cores |\n" + "|---" * 8 + "|", flush=True)
    for per_node in range(args.capacity_from, args.max_hearings + 1, args.capacity_step):
        if time.monotonic() + args.seconds + args.warmup + 30 + 10 * per_node > deadline:
            stopped = "time budget used up"
            break
        step = await run_step(args, per_node, log_dir)
        steps.append(step)
        print(row(step), flush=True)
        if not step["passed"]:
            stopped = f"{per_node} per node failed"
            break
        held = per_node
    print(f"\ncluster capacity: {held} recorded {args.capacity_participants}-party hearings per node, "
          f"{2 * held} in the cluster of 2 nodes (each pinned to one core; passes: min fps ≥ {MIN_FPS}, "
          f"loss < {MAX_LOSS_PCT} %); stopped: {stopped}; load {os.getloadavg()}", flush=True)  # fmt: skip
    return {"per_node": held, "total": 2 * held, "stopped_because": stopped, "steps": steps,
            "load_start": list(load_start), "load_end": list(os.getloadavg())}  # fmt: skip
