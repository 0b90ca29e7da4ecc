"""Two nodes as real server processes (signaling only): the cluster's node list, a full cluster's refusal
with its metric, and a drained node that takes no new hearing and exits once its hearing has ended."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cluster_harness import NodeProcess
from integration_harness import ADMIN_PASSWORD, ServerApi, free_port
from signaling_harness import WsPeer

from hearing_server.bootstrap import FIRST_ADMIN

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


async def metric(node: NodeProcess, name: str) -> float:
    """One unlabelled metric of a node's /metrics."""
    async with aiohttp.ClientSession() as http, http.get(f"{node.base}/metrics") as response:
        for line in (await response.text()).splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    raise AssertionError(f"no metric {name}")


async def open_room(api: ServerApi, hearing_id: str, host: str) -> WsPeer:
    """The courtroom joins through ``api``'s node and opens the waiting room; the console is told which
    node hosts the hearing."""
    court = await api.courtroom(hearing_id)
    await court.send("open_waiting_room")
    state = await court.expect("state", lambda m: m["hearing"]["status"] == "open")
    assert state["hearing"]["node"] == host
    return court


async def refused(api: ServerApi, hearing_id: str) -> dict[str, Any]:
    """A courtroom join that is refused: the error, then the close."""
    peer = await api.socket("CourtroomPC/1.0", staff=True)
    await peer.send("join", hearing_id=hearing_id, **{"as": "courtroom"})
    error = await peer.expect("error")
    assert await peer.expect_closed() == 4004
    return error


async def test_full_cluster_refuses_and_a_drained_node_exits_after_its_hearing(
    tmp_path: Path, cluster_url: str
) -> None:
    shared = tmp_path / "shared"
    options = {"node_capacity": "1", "cluster_heartbeat_s": "1"}
    a = NodeProcess(shared, free_port(), "node-a", cluster_url, **options)
    b = NodeProcess(shared, free_port(), "node-b", cluster_url, **options)
    apis: list[ServerApi] = []
    try:
        password = await a.start()
        assert password is not None
        await b.start()
        admin, clerk_a, clerk_b = ServerApi(a.base), ServerApi(a.base), ServerApi(b.base)
        apis += [admin, clerk_a, clerk_b]
        await admin.login(FIRST_ADMIN, password)
        await clerk_a.login(FIRST_ADMIN, ADMIN_PASSWORD)  # admin changed the one-time password
        await clerk_a.staff_operator()
        await clerk_b.login("clerk", "a long enough password for tests")
        h1, h2, h3 = [(await clerk_a.schedule(5 + i))["id"] for i in range(3)]  # distinct case numbers
        court1 = await open_room(clerk_a, h1, "node-a")
        court2 = await open_room(clerk_b, h2, "node-b")
        nodes = await admin.ok("GET", "/cluster/nodes")
        assert nodes["clustered"] and nodes["node_id"] == "node-a"
        by_id = {n["id"]: n for n in nodes["items"]}
        assert by_id["node-a"]["hearings"] == [h1] and by_id["node-b"]["hearings"] == [h2]
        assert all(n["state"] == "active" and n["alive"] and n["capacity"] == 1 for n in by_id.values())
        assert by_id["node-b"]["public_url"] == b.base or by_id["node-b"]["public_url"].startswith("http")

        # Both nodes host their capacity: a third hearing is refused, clearly, and counted.
        error = await refused(clerk_a, h3)
        assert error["code"] == "cluster_full" and "full" in error["message"]
        assert await metric(a, "hearing_cluster_refusals_total") == 1.0

        # SIGTERM drains node A: it stays up while its hearing runs and takes no new one.
        assert a.process is not None
        a.process.terminate()
        deadline = time.monotonic() + 10
        while (await admin.ok("GET", "/cluster/nodes"))["items"][0]["state"] != "draining":
            assert time.monotonic() < deadline, "node A never drained"
            await asyncio.sleep(0.2)
        await court2.send("end")
        await court2.expect("hearing_ended")
        await asyncio.sleep(0.5)
        court3 = await open_room(clerk_a, h3, "node-b")  # reached through A, hosted by B (bridged)
        nodes = {n["id"]: n for n in (await admin.ok("GET", "/cluster/nodes"))["items"]}
        assert nodes["node-b"]["hearings"] == [h3] and nodes["node-a"]["hearings"] == [h1]
        await asyncio.sleep(2.0)
        assert a.process.returncode is None  # still serving hearing 1
        await court1.send("end")
        await court1.expect("hearing_ended")
        ended = time.monotonic()
        try:
            async with asyncio.timeout(40):
                await a.process.wait()
        except TimeoutError:
            raise AssertionError("node A did not exit:\n" + "".join(a.output)[-3000:]) from None
        print(f"node A exited {time.monotonic() - ended:.2f} s after its last hearing ended")
        assert await court3.expect_closed() == 1001  # its bridge went with node A: the page reconnects
        court3 = await clerk_b.courtroom(h3)
        await court3.send("end")
        await court3.expect("hearing_ended")
        sealed = {h["id"] for h in (await clerk_b.ok("GET", "/hearings", status="sealed"))["items"]}
        assert {h1, h2} <= sealed  # A sealed its hearing before leaving
    finally:
        for api in apis:
            await api.close()
        await a.stop()
        await b.stop()
    assert not any("Traceback" in line for line in a.output + b.output), "".join(a.output + b.output)[-4000:]
