"""The cluster's nodes (admins only): state, address, load and hosted hearings."""

from __future__ import annotations

from hearing_server.api.call import Call
from hearing_server.api.registry import endpoint
from hearing_server.api.schemas import NodeList, NodeOut
from hearing_server.auth.access import ADMINS
from hearing_server.cluster.node import CLUSTER_NODE


@endpoint(
    "GET",
    "/api/v1/cluster/nodes",
    access=ADMINS,
    tag="cluster",
    response=NodeList,
    summary="Nodes of the cluster with their state, address, load and live hearings.",
)
async def list_nodes(call: Call) -> NodeList:
    node = call.request.app.get(CLUSTER_NODE)
    if node is None:
        return NodeList(clustered=False, node_id="", items=[])
    nodes = await node.table.nodes()
    return NodeList(
        clustered=True,
        node_id=node.node_id,
        items=[NodeOut.model_validate(n, from_attributes=True) for n in nodes],
    )


ENDPOINTS = [list_nodes]
