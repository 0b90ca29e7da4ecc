"""Two nodes as real server processes on one PostgreSQL and one recordings folder.

Parties reach the hearing through the node that does not host it (their sockets are bridged); the hosting
node is killed with SIGKILL mid-hearing; the other node interrupts the hearing, hosts it when the operator
resumes, and it is sealed with segments from both nodes."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cluster_harness import CLUSTER_SECRET, NodeNet, NodeProcess
from integration_harness import Browser, Clip, ServerApi, free_port, sealed_record, stop_renders, until
from signaling_harness import WsPeer
from sqlalchemy import text

from hearing_server.bootstrap import FIRST_ADMIN
from hearing_server.cluster.bridge_auth import sign_opening
from hearing_server.store.db import create_engine
from recording.confirmation_log import LOG_FILE_NAME
from recording.seal import MANIFEST_NAME

pytestmark = [pytest.mark.media, pytest.mark.slow, pytest.mark.postgres]

INTERRUPTED_WITHIN_S = 10.0


async def connected(pages: list[Browser], within: float = 20) -> None:
    """Every page's media connection is up, as the courtroom (first page) sees it."""

    def all_connected() -> bool:
        state = pages[0].state()
        return state is not None and sum(
            p["connection"] == "connected" for p in state["participants"]
        ) == len(pages)

    await until(all_connected, within, f"{len(pages)} media connections")


async def lease_holder(url: str, hearing_id: str) -> str | None:
    """The node holding the hearing's lease, read from the database."""
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            row = await conn.execute(
                text("SELECT node_id FROM hearing_leases WHERE hearing_id = :h"), {"h": hearing_id}
            )
            return row.scalar_one_or_none()
    finally:
        await engine.dispose()


async def rejoin(api: ServerApi, token: str, user_agent: str) -> WsPeer:
    """A party's page reconnecting after the interruption: straight back into the hearing."""
    peer = await api.socket(user_agent, staff=False)
    await peer.send("join", token=token)
    hello = await peer.expect("hearing")
    assert hello["notice"] is None and hello["you"]["state"] == "in_hearing", hello["you"]
    return peer


async def refuses_bad_openings(node: NodeProcess, hearing_id: str) -> None:
    """Forged, misdirected, stale and replayed bridge openings get 403 from the node's internal endpoint."""
    url = node.base.replace("http://", "ws://") + "/internal/bridge"

    def opening(**changes: Any) -> dict[str, str]:
        fields: dict[str, Any] = {
            "from_node": "node-b",
            "to_node": node.node_id,
            "hearing_id": hearing_id,
            "client_ip": "198.18.0.9",
            "client_agent": "Forger/1.0",
        }
        secret = changes.pop("secret", CLUSTER_SECRET)
        return sign_opening(secret, **(fields | changes))

    replayed = opening()
    cases = {
        "unsigned": {},
        "forged": opening(secret="not the cluster secret at all"),
        "misdirected": opening(to_node="node-c"),
        "stale": opening(now=time.time() - 120),
        "replayed": replayed,
    }
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(url, headers=replayed) as first:
            assert not first.closed  # a good opening is accepted once
        for name, headers in cases.items():
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await http.ws_connect(url, headers=headers)
            assert refused.value.status == 403, name


async def test_a_killed_nodes_hearing_is_interrupted_resumed_on_the_other_node_and_sealed(
    tmp_path: Path, clips: list[Clip], cluster_net: NodeNet, cluster_url: str
) -> None:
    shared = tmp_path / "shared"  # one data folder (recordings, court key) mounted on both nodes
    options: dict[str, Any] = {"readmit_after_interruption": "automatic"}
    a = NodeProcess(shared, free_port(), "node-a", cluster_url, cluster_net.nodes[0], **options)
    b = NodeProcess(shared, free_port(), "node-b", cluster_url, cluster_net.nodes[1], **options)
    apis: list[ServerApi] = []
    pages: list[Browser] = []
    print(f"nodes at {a.base} and {b.base}, participants at {cluster_net.client}")
    try:
        password = await a.start()
        assert password is not None
        assert await b.start() is None  # the same database: the admin exists already
        api_a, api_b = ServerApi(a.base), ServerApi(b.base)
        apis += [api_a, api_b]
        await api_a.login(FIRST_ADMIN, password)
        await api_a.staff_operator()
        await api_b.login("clerk", "a long enough password for tests")
        hearing_id = (await api_a.schedule())["id"]
        parties = [await api_a.invite(hearing_id, name) for name in ("Aliya Witness", "Bolat Expert")]
        court = await api_a.courtroom(hearing_id)
        await court.send("open_waiting_room")
        await court.expect("state", lambda m: m["hearing"]["status"] == "open")
        assert await lease_holder(cluster_url, hearing_id) == "node-a"
        # The parties' links lead to node B: their sockets are bridged to node A, which hosts the hearing.
        peers = []
        for number, (party_id, token) in enumerate(parties):
            peer = await api_b.waiting_party(token, f"PartyPhone/1.0 ({number})")
            await court.send("admit", party_id=party_id)
            await peer.expect_state("in_hearing")
            peers.append(peer)
        assert await lease_holder(cluster_url, hearing_id) == "node-a"
        waited = [e for e in await api_a.events(hearing_id) if e["event"] == "party_waiting"]
        assert [e["details"]["user_agent"] for e in waited] == ["PartyPhone/1.0 (0)", "PartyPhone/1.0 (1)"]
        assert {e["details"]["ip"] for e in waited} == {cluster_net.client}  # the party's, not node B's
        assert {e["details"].get("via_node") for e in waited} == {"node-b"}  # the node their links reached
        direct = [  # the courtroom's own entries: its socket reached node A itself
            e
            for e in await api_a.events(hearing_id)
            if "ip" in (e.get("details") or {}) and not e["details"]["user_agent"].startswith("PartyPhone")
        ]
        assert direct and not [e for e in direct if "via_node" in e["details"]], direct
        await refuses_bad_openings(a, hearing_id)

        pages = [Browser(peer, clip) for peer, clip in zip([court, *peers], clips, strict=True)]
        for page in pages:
            await page.publish()
        await connected(pages)
        await asyncio.sleep(1.0)
        await pages[0].send("start")
        await pages[0].wait_for("state", lambda m: m["hearing"]["recording"] == "recording")
        await asyncio.sleep(3.0)
        killed_at = time.monotonic()
        await a.kill()
        for page in pages:
            await page.close()
        pages = []

        # Node B's reaper: interrupted within the lease, logged with the dead node.
        while (await api_b.ok("GET", f"/hearings/{hearing_id}"))["status"] != "interrupted":
            assert time.monotonic() - killed_at < INTERRUPTED_WITHIN_S + 5, "never interrupted"
            await asyncio.sleep(0.1)
        detected_s = time.monotonic() - killed_at
        print(f"hearing interrupted {detected_s:.2f} s after SIGKILL of its node")
        assert detected_s < INTERRUPTED_WITHIN_S
        interrupted = (await api_b.events(hearing_id))[-1]
        assert interrupted["event"] == "hearing_interrupted"
        assert interrupted["details"] == {"reason": "node_failed:node-a", "previous_status": "in_session"}
        assert await lease_holder(cluster_url, hearing_id) is None

        # The operator resumes through node B; the parties' pages come back without re-admission.
        resumed_at = time.monotonic()
        court = await api_b.courtroom(hearing_id)
        assert await lease_holder(cluster_url, hearing_id) == "node-b"
        back = [await rejoin(api_b, token, f"PartyPhone/1.0 ({n})") for n, (_, token) in enumerate(parties)]
        pages = [Browser(peer, clip) for peer, clip in zip([court, *back], clips, strict=True)]
        for page in pages:
            await page.publish()
        await connected(pages)
        print(f"resumed on node B with media in {time.monotonic() - resumed_at:.2f} s")
        await asyncio.sleep(1.0)
        await pages[0].send("start")
        await pages[0].wait_for("state", lambda m: m["hearing"]["recording"] == "recording")
        await asyncio.sleep(2.0)
        await pages[0].send("end")
        await pages[0].wait_for("hearing_ended")
        record = await sealed_record(api_b, hearing_id)
        assert record["status"] == "sealed" and record["seal"]["valid"] is True, record["seal"]
        assert await lease_holder(cluster_url, hearing_id) is None
    finally:
        for page in pages:
            await page.close()
        for api in apis:
            await api.close()
        await a.stop()
        await b.stop()
        stop_renders(shared)

    folder = next(p.parent for p in (shared / "recordings").rglob(LOG_FILE_NAME))
    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    tracks = sorted(f["path"] for f in manifest["files"] if f["path"].startswith("tracks/"))
    assert any(t.endswith("-001.webm") for t in tracks) and any(t.endswith("-002.webm") for t in tracks), (
        tracks
    )
    entries = [json.loads(line) for line in (folder / LOG_FILE_NAME).read_text().splitlines()]
    events = [e["event"] for e in entries]
    assert events.count("recording_started") == 2 and "hearing_interrupted" in events
    assert events[-3:] == ["hearing_ended", "recording_stopped", "hearing_sealed"]
    assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1))  # one chain, written by two nodes
    script = Path(sys.executable).with_name("hearing-server")
    done = await asyncio.to_thread(
        subprocess.run, [str(script), "archive", "verify", str(folder)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for node in (a, b):
        assert not any("Traceback" in line for line in node.output), "".join(node.output)[-4000:]
