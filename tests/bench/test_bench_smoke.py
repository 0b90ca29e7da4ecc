"""The benchmark still runs end to end: one short hearing against a real server process.

Checks that ``python -m benchmarks.run`` completes and writes its results with every expected
field, not what the numbers are.  Run inside a loopback-only namespace:

    unshare -n sh -c 'ip link set lo up && .venv/bin/pytest tests/bench'
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from benchmarks.run import parser
from hearing_server.store.db import create_engine

ROOT = Path(__file__).resolve().parents[2]

RUN_KEYS = {
    "started_at", "command", "machine", "clip", "criteria", "results", "skipped",
    "relay_ratios", "janus_ratios", "capacity", "load_start", "load_end", "elapsed_s",
}  # fmt: skip
RESULT_KEYS = {
    "name", "scenario", "ok", "passed", "server_pid_cores", "server_rss_mb", "packets_forwarded_per_s",
    "server_cpu_us_per_packet", "generator_cores", "fps_min", "fps_median", "loss_pct", "loss_pct_max",
    "delay_ms_p50", "delay_ms_p99", "join_s_median", "keyframe_wait_ms_median", "load_start", "load_end",
    "transit_ms_p50", "transit_ms_p99", "recorded_mb", "pinned", "server_wait_cores",
}  # fmt: skip


@pytest.mark.slow
@pytest.mark.media
def test_benchmark_runs_one_short_hearing_and_writes_its_results(tmp_path: Path) -> None:
    command = [
        sys.executable, "-m", "benchmarks.run", "--participants", "2", "--recording", "on", "--seconds", "3",
        "--warmup", "0.5", "--no-relay", "--no-capacity", "--no-loop-compare", "--no-janus",
        "--out", str(tmp_path),
    ]  # fmt: skip
    finished = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=90)
    assert finished.returncode == 0, finished.stdout + finished.stderr

    run = json.loads((tmp_path / "latest.json").read_text())
    assert RUN_KEYS <= run.keys()
    assert run["capacity"] is None and run["relay_ratios"] == [] and run["skipped"] == []
    [result] = run["results"]
    assert result["ok"], result
    assert RESULT_KEYS <= result.keys()
    assert result["scenario"]["participants"] == 2 and result["scenario"]["recording"] is True
    assert result["subscriber_tracks"] == 2  # each party measured the other's video
    assert result["join_measured_on"] == "late joiners"
    assert "forwarding 1x2 rec" in finished.stdout  # the table was printed
    markdown = (tmp_path / "latest.md").read_text()
    assert "| scenario |" in markdown and "forwarding 1x2 rec" in markdown


JANUS = shutil.which("janus") is not None and shutil.which("cc") is not None


@pytest.mark.slow
@pytest.mark.media
@pytest.mark.skipif(
    not JANUS, reason="needs Debian's janus and a C compiler (the benchmark's set-up installs janus)"
)
def test_benchmark_runs_janus_side_by_side(tmp_path: Path) -> None:
    """The same two-party hearing on our server and in a Janus VideoRoom room, with the ratio printed."""
    command = [
        sys.executable, "-m", "benchmarks.run", "--participants", "2", "--seconds", "3", "--warmup", "0.5",
        "--no-capacity", "--janus", "--out", str(tmp_path),
    ]  # fmt: skip
    finished = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert finished.returncode == 0, finished.stdout + finished.stderr

    run = json.loads((tmp_path / "latest.json").read_text())
    ours, janus = run["results"]
    assert janus["name"] == "janus 1x2 rec" and janus["ok"] and janus["passed"], janus
    assert RESULT_KEYS <= janus.keys()
    assert janus["subscriber_tracks"] == 2 and janus["recorded_mb"] > 0  # Janus recorded the room
    [ratio] = run["janus_ratios"]
    assert ratio["us_per_packet_ratio"] is not None
    assert "Ours vs Janus, 1x2 recorded" in finished.stdout


@pytest.mark.slow
@pytest.mark.media
def test_the_capacity_search_runs_on_media_workers_and_reports_the_load_generator(tmp_path: Path) -> None:
    """One capacity step of a 2-worker server: the step, its CPU figures and the capacity table."""
    command = [
        sys.executable, "-m", "benchmarks.run", "--participants", "2", "--seconds", "3", "--warmup", "0.5",
        "--no-relay", "--no-loop-compare", "--no-janus", "--capacity", "--capacity-workers", "2",
        "--capacity-participants", "2", "--max-hearings", "1", "--out", str(tmp_path),
    ]  # fmt: skip
    finished = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=150)
    assert finished.returncode == 0, finished.stdout + finished.stderr

    run = json.loads((tmp_path / "latest.json").read_text())
    capacity = run["capacity"]
    assert capacity["media_workers"] == 2 and capacity["by_workers"] == []
    [step] = capacity["steps"]
    assert step["name"] == "forwarding 1x2 rec 2w", step
    assert step["server_cores"] > 0 and step["generator_cores"] > 0, step
    assert [r["name"] for r in run["results"]] == ["forwarding 1x2 rec", "forwarding 1x2 rec 2w"]
    assert "capacity search" in finished.stdout and "ours, 2 media workers, 2-party rec" in finished.stdout
    assert "Capacity (ours, 2 media workers):" in finished.stdout
    assert "| ours, 2 media workers, 2-party rec |" in (tmp_path / "latest.md").read_text()


def _postgres_reachable(url: str) -> bool:
    async def probe() -> None:
        engine = create_engine(url)
        try:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        finally:
            await engine.dispose()

    try:
        asyncio.run(asyncio.wait_for(probe(), 10))
    except (OSError, SQLAlchemyError, TimeoutError):
        return False
    return True


@pytest.mark.slow
@pytest.mark.media
def test_the_cluster_search_runs_one_hearing_on_each_of_two_nodes(tmp_path: Path) -> None:
    """``--cluster`` with one recorded 4-party hearing per node: each node hosts one and both carry media."""
    database = parser().parse_args(["--cluster"]).cluster_database
    if not _postgres_reachable(database):
        pytest.skip(f"PostgreSQL not reachable at {database}: the cluster bench needs it")
    command = [
        sys.executable, "-m", "benchmarks.run", "--cluster", "--max-hearings", "1", "--seconds", "2",
        "--warmup", "0.5", "--out", str(tmp_path),
    ]  # fmt: skip
    finished = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=150)
    assert finished.returncode == 0, finished.stdout + finished.stderr

    run = json.loads((tmp_path / "cluster.json").read_text())
    assert run["per_node"] == 1 and run["total"] == 2, run
    [step] = run["steps"]
    assert step["ok"] and step["passed"] and step["hosted"] == [1, 1], step
    assert all(cores > 0 for cores in step["node_cores"]) and step["generator_cores"] > 0, step
    assert "| 1 | 2 | 1 / 1 | yes |" in finished.stdout
    assert "cluster capacity: 1 recorded 4-party hearings per node, 2 in the cluster" in finished.stdout
