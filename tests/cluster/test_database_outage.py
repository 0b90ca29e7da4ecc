"""PostgreSQL unreachable for 5 s under a cluster node (a relay in front of its socket is cut): the live
hearing carries on, new hearings are refused clearly meanwhile, the lease survives, nothing logged is lost."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
from cluster_harness import DatabaseLink, NodeProcess
from integration_harness import ServerApi, free_port

from hearing_server.bootstrap import FIRST_ADMIN
from recording.confirmation_log import LOG_FILE_NAME

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

OUTAGE_S = 5.0


async def test_a_five_second_database_outage_loses_nothing(tmp_path: Path, cluster_url: str) -> None:
    link = DatabaseLink(tmp_path / "pg")
    await link.start()
    shared = tmp_path / "shared"
    node = NodeProcess(shared, free_port(), "node-a", link.url(cluster_url), cluster_heartbeat_s="1")
    api = ServerApi(node.base)
    try:
        password = await node.start()
        assert password is not None
        await api.login(FIRST_ADMIN, password)
        await api.staff_operator()
        h1, h2 = [(await api.schedule(5 + i))["id"] for i in range(2)]
        party_id, token = await api.invite(h1, "Aliya Witness")
        court = await api.courtroom(h1)
        await court.send("open_waiting_room")
        await court.expect("state", lambda m: m["hearing"]["status"] == "open")
        party = await api.waiting_party(token, "PartyPhone/1.0 (outage)")

        await link.cut()
        cut_at = time.monotonic()
        # The live hearing carries on: the operator admits the waiting party, both see it at once.
        await court.send("admit", party_id=party_id)
        await party.expect_state("in_hearing")
        # A hearing that is not live yet cannot be placed now: a clear error, the socket stays usable.
        other = await api.socket("CourtroomPC/1.0", staff=True)
        await other.send("join", hearing_id=h2, **{"as": "courtroom"})
        refused = await other.expect("error")
        assert refused["code"] == "internal_error" and "database" in refused["message"]
        await court.send("ping")
        await court.expect("pong")
        await asyncio.sleep(max(0.0, OUTAGE_S - (time.monotonic() - cut_at)))
        await link.start()

        # Back: the lease was never lost (the hearing is still hosted here) and placement works again.
        await party.send("leave")
        await court.expect("state", lambda m: not any(p["id"] == party_id for p in m["participants"]))
        court2 = await api.courtroom(h2)
        await court2.send("open_waiting_room")
        await court2.expect("state", lambda m: m["hearing"]["status"] == "open")
        nodes = await api.call("GET", "/cluster/nodes")
        assert nodes[0] == 403  # operators may not list nodes; the admin can (other tests)
        events = await api.events(h1)
        mirrored = [(e["seq"], e["event"]) for e in events]
        folder = next(p.parent for p in (shared / "recordings").rglob(LOG_FILE_NAME) if h1 in str(p))
        logged = [
            (e["seq"], e["event"]) for e in map(json.loads, (folder / LOG_FILE_NAME).read_text().splitlines())
        ]
        assert mirrored == logged  # the entry written while the database was away reached it afterwards
        assert ("party_admitted" in [e for _, e in logged]) and logged[-1][1] == "party_left"
        assert "hearing_interrupted" not in [e for _, e in logged]
        assert any("cluster heartbeat failed" in line for line in node.output), "".join(node.output)[-6000:]
    finally:
        await api.close()
        await node.stop()
        await link.cut()
    assert not any("Traceback" in line for line in node.output), "".join(node.output)[-4000:]
