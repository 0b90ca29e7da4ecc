"""The cluster's tables in SQL: node heartbeats and hearing leases, timed by the database clock only.

Every time comparison uses PostgreSQL's ``now()``, so nodes' own clocks may be off by seconds. Placement
decisions are serialised by one transaction-scoped advisory lock; leases are rows locked while changed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

# Loads in the same band count as equal, and then the node the participant reached keeps the hearing (no
# bridge): a node's few percent of CPU noise must not send a hearing away from an idle node.
LOAD_BAND = 0.25
# pg_advisory_xact_lock key of placement decisions ("hs-place" as an integer).
PLACEMENT_LOCK = 0x68732D706C616365


class NodeState(StrEnum):
    """A node's life: takes hearings, finishes its hearings before leaving, or is gone."""

    ACTIVE = "active"
    DRAINING = "draining"
    DEAD = "dead"


@dataclass(frozen=True)
class NodeInfo:
    """One node as the cluster sees it."""

    id: str
    public_url: str
    internal_url: str
    ice_addresses: list[str]
    state: str
    alive: bool
    heartbeat_at: datetime
    load: float
    capacity: int
    hearings: list[str]


@dataclass(frozen=True)
class Host:
    """The node that hosts (or is to host) a hearing."""

    node_id: str
    internal_url: str
    public_url: str


@dataclass(frozen=True)
class Orphan:
    """A lease of a dead node: its hearing must be interrupted."""

    hearing_id: str
    node_id: str


class ClusterFull(Exception):
    """No active node has room for another live hearing."""


class LeaseHeld(Exception):
    """Another node holds, or may still hold, the hearing's lease."""

    def __init__(self, host: Host, stale: bool) -> None:
        super().__init__(f"hearing hosted by node {host.node_id}" + (" (being recovered)" if stale else ""))
        self.host = host
        self.stale = stale


class NodeTable:
    """This node's view of and changes to the cluster tables."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], node_id: str, lease_s: float) -> None:
        self._sessions = sessions
        self.node_id = node_id
        self.lease_s = lease_s
        self.state = NodeState.ACTIVE  # as of the last heartbeat (``hearing-server node drain`` changes it)

    async def register(
        self, public_url: str, internal_url: str, ice_addresses: list[str], capacity: int
    ) -> list[str]:
        """Join the cluster as an active node; return the hearings a previous run of this node held."""
        async with self._sessions.begin() as session:
            await session.execute(
                text(
                    "INSERT INTO cluster_nodes (id, public_url, internal_url, ice_addresses, state,"
                    " started_at, heartbeat_at, load, capacity)"
                    " VALUES (:id, :pub, :int, CAST(:ice AS JSON), 'active', now(), now(), 0, :cap)"
                    " ON CONFLICT (id) DO UPDATE SET public_url = EXCLUDED.public_url,"
                    " internal_url = EXCLUDED.internal_url, ice_addresses = EXCLUDED.ice_addresses,"
                    " state = 'active', started_at = now(), heartbeat_at = now(), load = 0,"
                    " capacity = EXCLUDED.capacity"
                ),
                {
                    "id": self.node_id,
                    "pub": public_url,
                    "int": internal_url,
                    "ice": json.dumps(ice_addresses),
                    "cap": capacity,
                },
            )
            # A new process hosts nothing yet: its previous run's leases are given up (and interrupted).
            rows = await session.execute(
                text("DELETE FROM hearing_leases WHERE node_id = :id RETURNING hearing_id"),
                {"id": self.node_id},
            )
            return [row[0] for row in rows]

    async def heartbeat(self, load: float, hosted: list[str]) -> list[str]:
        """Say this node lives, renew the leases of ``hosted``; return those whose lease is lost."""
        async with self._sessions.begin() as session:
            state = await session.execute(
                text(
                    "UPDATE cluster_nodes SET heartbeat_at = now(), load = :load,"
                    " state = CASE WHEN state = 'dead' THEN 'active' ELSE state END WHERE id = :id"
                    " RETURNING state"
                ),
                {"id": self.node_id, "load": load},
            )
            self.state = NodeState(state.scalar_one())
            renewed = await session.execute(
                text(
                    "UPDATE hearing_leases SET expires_at = now() + make_interval(secs => :ttl)"
                    " WHERE node_id = :id AND hearing_id = ANY(:hosted) RETURNING hearing_id"
                ),
                {"id": self.node_id, "ttl": self.lease_s, "hosted": hosted},
            )
            kept = {row[0] for row in renewed}
            # Leases placed here for a join that never arrived lapse quietly.
            await session.execute(
                text(
                    "DELETE FROM hearing_leases WHERE node_id = :id AND expires_at < now()"
                    " AND NOT hearing_id = ANY(:hosted)"
                ),
                {"id": self.node_id, "hosted": hosted},
            )
        return [hearing_id for hearing_id in hosted if hearing_id not in kept]

    async def set_state(self, state: NodeState, node_id: str | None = None) -> bool:
        """Mark this node (or ``node_id``) active, draining or dead (dead: it has left); False if unknown."""
        async with self._sessions.begin() as session:
            changed = await session.execute(
                text("UPDATE cluster_nodes SET state = :state WHERE id = :id RETURNING id"),
                {"id": node_id or self.node_id, "state": state.value},
            )
            found = changed.first() is not None
        if node_id in (None, self.node_id):
            self.state = state
        return found

    async def place(self, hearing_id: str) -> Host:
        """Choose the node to host ``hearing_id`` and give it the lease (:class:`ClusterFull`,
        :class:`LeaseHeld` when another node has it)."""
        async with self._sessions.begin() as session:
            await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PLACEMENT_LOCK})
            current = (
                await session.execute(
                    text(
                        "SELECT l.node_id, n.internal_url, n.public_url, l.expires_at > now() AS valid"
                        " FROM hearing_leases l JOIN cluster_nodes n ON n.id = l.node_id"
                        " WHERE l.hearing_id = :h FOR UPDATE OF l"
                    ),
                    {"h": hearing_id},
                )
            ).first()
            if current is not None:
                host = Host(current[0], current[1], current[2])
                if host.node_id == self.node_id:
                    await self._renew(session, hearing_id)
                    return host
                raise LeaseHeld(host, stale=not current[3])
            chosen = (
                await session.execute(
                    text(
                        "SELECT n.id, n.internal_url, n.public_url FROM cluster_nodes n"
                        " LEFT JOIN hearing_leases l ON l.node_id = n.id"
                        " WHERE n.state = 'active' AND n.heartbeat_at > now() - make_interval(secs => :ttl)"
                        " GROUP BY n.id HAVING count(l.hearing_id) < n.capacity"
                        " ORDER BY floor(greatest(count(l.hearing_id)::float / n.capacity, n.load) / :band),"
                        " (n.id = :me) DESC, greatest(count(l.hearing_id)::float / n.capacity, n.load), n.id"
                        " LIMIT 1"
                    ),
                    {"ttl": self.lease_s, "me": self.node_id, "band": LOAD_BAND},
                )
            ).first()
            if chosen is None:
                raise ClusterFull("every active node hosts its capacity of live hearings")
            await session.execute(
                text(
                    "INSERT INTO hearing_leases (hearing_id, node_id, acquired_at, expires_at)"
                    " VALUES (:h, :n, now(), now() + make_interval(secs => :ttl))"
                ),
                {"h": hearing_id, "n": chosen[0], "ttl": self.lease_s},
            )
            return Host(chosen[0], chosen[1], chosen[2])

    async def _renew(self, session: AsyncSession, hearing_id: str) -> None:
        await session.execute(
            text(
                "UPDATE hearing_leases SET expires_at = now() + make_interval(secs => :ttl)"
                " WHERE hearing_id = :h AND node_id = :id"
            ),
            {"h": hearing_id, "id": self.node_id, "ttl": self.lease_s},
        )

    async def release(self, hearing_id: str) -> None:
        """Give up this node's lease of ``hearing_id`` (the hearing left this node)."""
        async with self._sessions.begin() as session:
            await session.execute(
                text("DELETE FROM hearing_leases WHERE hearing_id = :h AND node_id = :id"),
                {"h": hearing_id, "id": self.node_id},
            )

    async def orphans(self) -> list[Orphan]:
        """Expired leases of nodes silent for a lease's length (locked: one reaper takes each)."""
        async with self._sessions.begin() as session:
            rows = await session.execute(
                text(
                    "SELECT l.hearing_id, l.node_id FROM hearing_leases l JOIN cluster_nodes n"
                    " ON n.id = l.node_id WHERE l.expires_at < now()"
                    " AND (n.state = 'dead' OR n.heartbeat_at < now() - make_interval(secs => :ttl))"
                    " AND n.id <> :me FOR UPDATE OF l SKIP LOCKED"
                ),
                {"ttl": self.lease_s, "me": self.node_id},
            )
            found = [Orphan(row[0], row[1]) for row in rows]
            if found:
                await session.execute(
                    text(
                        "UPDATE cluster_nodes SET state = 'dead' WHERE id = ANY(:ids)"
                        " AND heartbeat_at < now() - make_interval(secs => :ttl)"
                    ),
                    {"ids": sorted({o.node_id for o in found}), "ttl": self.lease_s},
                )
        return found

    async def forget(self, orphan: Orphan) -> None:
        """Drop a dead node's lease once its hearing is interrupted."""
        async with self._sessions.begin() as session:
            await session.execute(
                text("DELETE FROM hearing_leases WHERE hearing_id = :h AND node_id = :n"),
                {"h": orphan.hearing_id, "n": orphan.node_id},
            )

    async def hosted_elsewhere(self) -> set[str]:
        """Hearings whose lease another node holds (they are live there, or being recovered)."""
        async with self._sessions() as session:
            rows = await session.execute(
                text("SELECT hearing_id FROM hearing_leases WHERE node_id <> :id"), {"id": self.node_id}
            )
            return {row[0] for row in rows}

    async def nodes(self) -> list[NodeInfo]:
        """Every node known to the cluster with its hearings."""
        async with self._sessions() as session:
            rows = await session.execute(
                text(
                    "SELECT n.id, n.public_url, n.internal_url, n.ice_addresses, n.state,"
                    " n.heartbeat_at > now() - make_interval(secs => :ttl), n.heartbeat_at, n.load,"
                    " n.capacity, coalesce(array_agg(l.hearing_id ORDER BY l.hearing_id)"
                    " FILTER (WHERE l.hearing_id IS NOT NULL), '{}')"
                    " FROM cluster_nodes n LEFT JOIN hearing_leases l ON l.node_id = n.id"
                    " GROUP BY n.id ORDER BY n.id"
                ),
                {"ttl": self.lease_s},
            )
            return [
                NodeInfo(
                    id=r[0],
                    public_url=r[1],
                    internal_url=r[2],
                    ice_addresses=list(r[3] or []),
                    state=r[4],
                    alive=bool(r[5]),
                    heartbeat_at=r[6],
                    load=float(r[7]),
                    capacity=int(r[8]),
                    hearings=list(r[9]),
                )
                for r in rows
            ]
