"""Nodes, heartbeats, leases and placement on a real PostgreSQL (several NodeTables stand for nodes)."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cluster_harness import DatabaseLink, add_hearings
from integration_harness import until
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hearing_server.cluster.leases import ClusterFull, LeaseHeld, NodeState, NodeTable
from hearing_server.cluster.node import ClusterNode, Refused
from hearing_server.store.db import create_engine, sessionmaker

Sessions = async_sessionmaker[AsyncSession]


async def _node(sessions: Sessions, node_id: str, capacity: int, lease_s: float = 10.0) -> NodeTable:
    table = NodeTable(sessions, node_id, lease_s)
    await table.register(f"https://{node_id}.test", f"https://{node_id}.internal", ["198.18.0.1"], capacity)
    return table


async def test_first_live_hearing_goes_to_the_least_loaded_node_and_full_cluster_refuses(
    sessions: Sessions,
) -> None:
    a = await _node(sessions, "a", capacity=2)
    b = await _node(sessions, "b", capacity=2)
    h = await add_hearings(sessions, 5)
    assert (await a.place(h[0])).node_id == "a"  # a tie: the node asked keeps it (no bridge needed)
    assert (await a.place(h[1])).node_id == "b"  # a holds 1/2, b 0/2
    assert (await b.place(h[2])).node_id == "b"  # a tie again (1/2 each): b asked, b keeps it
    assert (await b.place(h[3])).node_id == "a"
    with pytest.raises(ClusterFull):
        await a.place(h[4])
    nodes = {n.id: n for n in await a.nodes()}
    assert sorted(nodes["a"].hearings) == sorted([h[0], h[3]])
    assert sorted(nodes["b"].hearings) == sorted([h[1], h[2]])
    assert all(n.alive and n.state == "active" for n in nodes.values())
    await a.release(h[0])
    assert (await b.place(h[4])).node_id == "a"


async def test_concurrent_placements_never_overfill_a_node(sessions: Sessions) -> None:
    tables = [await _node(sessions, f"n{i}", capacity=3) for i in range(3)]
    hearings = await add_hearings(sessions, 15)

    async def place(i: int) -> str:
        try:
            return (await tables[i % 3].place(hearings[i])).node_id
        except ClusterFull:
            return "refused"

    placed = await asyncio.gather(*(place(i) for i in range(15)))
    assert sorted(placed.count(n) for n in ("n0", "n1", "n2")) == [3, 3, 3]
    assert placed.count("refused") == 6


async def test_a_node_cannot_claim_a_hearing_whose_lease_another_holds(sessions: Sessions) -> None:
    a = await _node(sessions, "a", capacity=4)
    b = await _node(sessions, "b", capacity=4)
    [hearing] = await add_hearings(sessions, 1)
    assert (await a.place(hearing)).node_id == "a"
    with pytest.raises(LeaseHeld) as held:
        await b.place(hearing)
    assert held.value.host.node_id == "a" and not held.value.stale
    # b's heartbeat naming the hearing renews nothing and reports it lost to b
    assert await b.heartbeat(0.0, [hearing]) == [hearing]
    assert await a.heartbeat(0.0, [hearing]) == []
    assert (await a.place(hearing)).node_id == "a"  # the holder may ask again


async def test_draining_and_silent_nodes_take_no_new_hearings(sessions: Sessions) -> None:
    a = await _node(sessions, "a", capacity=4, lease_s=1.0)
    b = await _node(sessions, "b", capacity=4, lease_s=1.0)
    h = await add_hearings(sessions, 3)
    await b.set_state(NodeState.DRAINING)
    assert (await b.place(h[0])).node_id == "a"
    assert (await b.place(h[1])).node_id == "a"
    await b.set_state(NodeState.ACTIVE)
    await asyncio.sleep(1.3)  # neither heartbeats: both are silent for a lease's length
    await a.heartbeat(0.0, [h[0], h[1]])
    assert (await b.place(h[2])).node_id == "a"


async def test_the_reaper_interrupts_a_dead_nodes_hearings_once(sessions: Sessions) -> None:
    lease_s = 1.0
    a = await _node(sessions, "a", capacity=4, lease_s=lease_s)
    h = await add_hearings(sessions, 2, status="in_session")
    assert (await a.place(h[0])).node_id == "a"
    assert (await a.place(h[1])).node_id == "a"
    b_table = await _node(sessions, "b", capacity=4, lease_s=lease_s)
    interrupted: list[tuple[str, str]] = []

    async def interrupt(hearing_id: str, reason: str) -> bool:
        interrupted.append((hearing_id, reason))
        async with sessions.begin() as session:
            await session.execute(
                text("UPDATE hearings SET status = 'interrupted' WHERE id = :h"), {"h": hearing_id}
            )
        return True

    b = ClusterNode(b_table, heartbeat_s=0.25, interrupt=interrupt)
    b.attach(list)
    await b.beat()
    assert interrupted == []  # a's leases are still valid
    with pytest.raises(LeaseHeld):
        await b_table.place(h[0])
    started = time.monotonic()
    while not interrupted and time.monotonic() - started < 5:
        await asyncio.sleep(0.25)
        await b.beat()  # a is killed: it never heartbeats again
    found_after = time.monotonic() - started
    assert sorted(interrupted) == sorted((x, "node_failed:a") for x in h)
    assert found_after < lease_s + 1.0
    nodes = {n.id: n for n in await b_table.nodes()}
    assert nodes["a"].state == "dead" and nodes["a"].hearings == []
    await b.beat()
    assert len(interrupted) == 2  # reaped once
    assert (await b_table.place(h[0])).node_id == "b"  # resumed: placed on the living node
    # Node a was only cut off, not dead: when it is back, its heartbeat says both leases are gone, and it
    # lets go of those hearings (it rejoins as active, with nothing of its old hearings).
    assert sorted(await a.heartbeat(0.0, h)) == sorted(h)
    assert {n.id: (n.state, n.hearings) for n in await a.nodes()}["a"] == ("active", [])


async def test_a_node_refused_claim_is_a_protocol_error_with_the_code(sessions: Sessions) -> None:
    a_table = await _node(sessions, "a", capacity=1)
    b_table = await _node(sessions, "b", capacity=1)
    h = await add_hearings(sessions, 3)
    refusals: list[int] = []

    async def never(hearing_id: str, reason: str) -> bool:
        raise AssertionError("nothing to reap")

    a = ClusterNode(a_table, heartbeat_s=1, interrupt=never, on_refused=lambda: refusals.append(1))
    await a.claim(h[0])
    await b_table.place(h[1])
    with pytest.raises(Refused) as full:
        await a.claim(h[2])
    assert full.value.code == "cluster_full" and refusals == [1]
    with pytest.raises(Refused) as elsewhere:
        await a.claim(h[1])
    assert elsewhere.value.code == "hosted_elsewhere" and elsewhere.value.host_url == "https://b.test"


async def test_node_drain_command_marks_a_node_draining(sessions: Sessions, cluster_url: str) -> None:
    b = await _node(sessions, "b", capacity=4)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEARING_")} | {
        "HEARING_DATABASE_URL": cluster_url,
        "HEARING_NODE_ID": "ops-shell",
        "HEARING_CLUSTER_SECRET": "the cluster secret of the tests",
    }
    script = str(Path(sys.executable).with_name("hearing-server"))

    def drain(node_id: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [script, "node", "drain", "--node-id", node_id], capture_output=True, text=True, env=env
        )

    done = await asyncio.to_thread(drain, "b")
    assert done.returncode == 0 and "node b is draining" in done.stdout, done.stdout + done.stderr
    assert {n.id: n.state for n in await b.nodes()} == {"b": "draining"}
    await b.heartbeat(0.0, [])
    assert b.state is NodeState.DRAINING  # what the running node learns from its next heartbeat
    unknown = await asyncio.to_thread(drain, "nobody")
    assert unknown.returncode == 1 and "no node 'nobody'" in unknown.stdout


async def test_a_lost_database_is_reported_whichever_half_of_the_pass_finds_out(
    tmp_path: Path, cluster_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The heartbeat pass is a heartbeat, then half a period later a reaper pass: the outage is reported
    once whether it starts before the heartbeat or between heartbeat and reaper (the flaky outage test)."""
    link = DatabaseLink(tmp_path / "pg")
    await link.start()
    engine = create_engine(link.url(cluster_url))
    table = NodeTable(sessionmaker(engine), "a", lease_s=10)
    node = ClusterNode(table, heartbeat_s=0.4, interrupt=never_live)
    caplog.set_level(logging.INFO, logger="hearing_server.cluster.node")
    await node.start("https://a.test", "https://a.internal", ["198.18.0.1"], 2)
    try:
        for offset in (0.0, 0.1, 0.2, 0.3):  # across the whole 0.4 s pass
            caplog.clear()
            await asyncio.sleep(offset)
            await link.cut()
            await asyncio.sleep(1.0)
            assert not node.database_ok
            warned = [r for r in caplog.records if "cluster heartbeat failed" in r.getMessage()]
            assert len(warned) == 1, (offset, [r.getMessage() for r in caplog.records])
            await link.start()
            await until(lambda: node.database_ok, 5, "the database back")
            assert any("reachable again" in r.getMessage() for r in caplog.records)
    finally:
        await node.stop()
        await link.cut()
        await engine.dispose()


async def never_live(hearing_id: str, reason: str) -> bool:
    return False
