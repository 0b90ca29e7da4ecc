"""Wiring of cluster mode into the application: the node's lifecycle, its placement and leases."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web

from hearing_server.api.metrics import METRICS
from hearing_server.cluster.bridge_auth import OpeningVerifier
from hearing_server.cluster.leases import NodeTable
from hearing_server.cluster.node import CLUSTER_NODE, ClusterNode
from hearing_server.config import CONFIG
from hearing_server.record.context import LEFT_TO_OTHER_NODES, SEALER
from hearing_server.store.db import SESSIONS

log = logging.getLogger(__name__)

BRIDGE_VERIFIER = web.AppKey("bridge_verifier", OpeningVerifier)


async def _cluster(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    table = NodeTable(app[SESSIONS], config.node_id, config.cluster_lease_s)
    metrics = app[METRICS]

    async def interrupt(hearing_id: str, reason: str) -> bool:
        done = await app[SEALER].interrupt(hearing_id, reason)
        if done:
            metrics.cluster_reaped.inc()
        return done

    node = ClusterNode(
        table,
        heartbeat_s=config.cluster_heartbeat_s,
        interrupt=interrupt,
        on_refused=metrics.cluster_refusals.inc,
    )
    previous = await node.start(
        config.effective_public_url,
        config.effective_internal_url,
        list(config.ice_host_addresses),
        config.node_capacity,
    )
    if previous:
        log.warning(
            "node %s restarted while hosting %d hearing(s); they are interrupted", node.node_id, len(previous)
        )
    # The start-up recovery (after this) leaves alone what other nodes host; this node's own are interrupted.
    app[LEFT_TO_OTHER_NODES] = frozenset(await table.hosted_elsewhere())
    app[CLUSTER_NODE] = node
    app[BRIDGE_VERIFIER] = OpeningVerifier(config.cluster_secret, config.node_id)
    log.info("node %s joined the cluster (capacity %d)", node.node_id, config.node_capacity)
    yield
    await node.stop()


def setup(app: web.Application) -> None:
    """Run this server as a cluster node when ``node_id`` is configured (call before the records context)."""
    if app[CONFIG].clustered:
        app.cleanup_ctx.append(_cluster)
