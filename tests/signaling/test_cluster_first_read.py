"""A cluster node reads a socket's first message before its session starts (to bridge a join for a hearing
hosted elsewhere): that read counts against the join deadline and the per-address socket caps too."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from signaling_harness import Bench

from hearing_server.cluster.leases import Host
from hearing_server.cluster.node import CLUSTER_NODE
from hearing_server.config import Config
from hearing_server.web import ws as signaling_ws
from hearing_server.web.app import create_app


class _Table:
    async def place(self, hearing_id: str) -> Host:
        return Host("node-a", "http://127.0.0.1:1", "http://127.0.0.1:1")  # always this node: no bridge


class _Node:
    """Just enough of a ClusterNode for /ws: every hearing is placed on this node."""

    node_id = "node-a"
    table = _Table()

    def attach(self, *args: Any) -> None:
        pass

    async def claim(self, hearing_id: str) -> None:
        pass

    async def release(self, hearing_id: str) -> None:
        pass


async def _cluster_bench(aiohttp_client: Any, config: Config, **overrides: Any) -> Bench:
    app = create_app(config.model_copy(update=overrides))
    app[CLUSTER_NODE] = _Node()  # type: ignore[assignment]
    app[signaling_ws.MEDIA_FACTORY] = lambda *args: pytest.fail("no media expected")
    return Bench(client=await aiohttp_client(app), app=app, routers=[])


async def test_a_silent_socket_is_closed_at_the_join_deadline_although_the_node_awaits_its_first_message(
    aiohttp_client: Any, config: Config
) -> None:
    bench = await _cluster_bench(aiohttp_client, config, ws_join_timeout_s=0.5)
    await bench.make_hearing()
    silent = await bench.connect()
    error = await silent.expect_error("join_timeout")
    assert "0.5 s" in error["message"]
    assert await silent.expect_closed() == 1008


async def test_sockets_awaiting_their_first_message_count_as_unjoined(
    aiohttp_client: Any, config: Config
) -> None:
    bench = await _cluster_bench(aiohttp_client, config, ws_unjoined_per_address=2, ws_per_address=3)
    await bench.make_hearing()
    first, _second = await bench.connect(), await bench.connect()
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await bench.connect()
    assert refused.value.status == 429
    await first.close()
    await asyncio.sleep(0.1)
    third = await bench.connect()  # a closed socket gives its place back
    await third.send("ping")  # the first message, read by the node, still reaches the session
    await third.expect("pong")
