"""This process as one node of the cluster: heartbeats, lease renewal, placement, the reaper, drain."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError

from hearing_server.cluster.leases import ClusterFull, LeaseHeld, NodeState, NodeTable
from hearing_server.domain.errors import HearingError

log = logging.getLogger(__name__)

Interrupt = Callable[[str, str], Awaitable[bool]]
"""Marks a hearing interrupted with a reason (the sealer's restart path); False when it was not live."""


class Refused(HearingError):
    """The hearing cannot go live on this node; ``code`` is the protocol error code to answer with."""

    def __init__(self, code: str, message: str, host_url: str = "") -> None:
        super().__init__(message, code=code)
        self.host_url = host_url


class ProcessLoad:
    """The node's load between 0 and 1: this process's share of one core, smoothed over about
    ``window_s`` so that bursts (a login's password hash, a start-up) do not move hearings around.

    The media workers' packet rates replace or join it through ``ClusterNode(load=...)``.
    """

    def __init__(self, window_s: float = 30.0) -> None:
        self._window_s = window_s
        self._last = (time.monotonic(), sum(os.times()[:2]))
        self._smoothed = 0.0

    def __call__(self) -> float:
        now, cpu = time.monotonic(), sum(os.times()[:2])
        wall = now - self._last[0]
        if wall <= 0:
            return self._smoothed
        used = max(0.0, min((cpu - self._last[1]) / wall, 1.0))
        self._last = (now, cpu)
        weight = min(1.0, wall / self._window_s)
        self._smoothed += weight * (used - self._smoothed)
        return self._smoothed


class ClusterNode:
    """Keeps this node's row and leases alive, interrupts dead nodes' hearings and places new ones."""

    def __init__(
        self,
        table: NodeTable,
        *,
        heartbeat_s: float,
        interrupt: Interrupt,
        load: Callable[[], float] | None = None,
        on_refused: Callable[[], None] | None = None,
    ) -> None:
        self.table = table
        self.node_id = table.node_id
        self._heartbeat_s = heartbeat_s
        self._interrupt = interrupt
        self._load = load or ProcessLoad()
        self._on_refused = on_refused
        self._hosted: Callable[[], list[str]] = list
        self._on_lost: Callable[[str], Awaitable[None]] | None = None
        self._on_drain: Callable[[], None] | None = None
        self.draining = False
        self._task: asyncio.Task[None] | None = None
        self.refusals = 0
        self.reaped = 0
        self.database_ok = True

    def attach(
        self,
        hosted: Callable[[], list[str]],
        on_lost: Callable[[str], Awaitable[None]] | None = None,
        on_drain: Callable[[], None] | None = None,
    ) -> None:
        """Tell the node which hearings it hosts, what to do with one whose lease another took, and what
        to do when it is told to drain (``hearing-server node drain`` from another shell)."""
        self._hosted = hosted
        self._on_lost = on_lost
        self._on_drain = on_drain

    async def start(self, public_url: str, internal_url: str, ice: list[str], capacity: int) -> list[str]:
        """Register and start heartbeating; return the hearings a previous run of this node held."""
        previous = await self.table.register(public_url, internal_url, ice, capacity)
        self._task = asyncio.create_task(self._run(), name=f"cluster-node-{self.node_id}")
        return previous

    async def claim(self, hearing_id: str) -> None:
        """Take the lease of ``hearing_id`` here, or raise :class:`Refused`."""
        try:
            host = await self.table.place(hearing_id)
        except ClusterFull as exc:
            self.refusals += 1
            if self._on_refused is not None:
                self._on_refused()
            log.warning("hearing %s refused: %s", hearing_id, exc)
            raise Refused(
                "cluster_full", "every node of the court's cluster is full; try again later"
            ) from exc
        except LeaseHeld as exc:
            raise Refused("hosted_elsewhere", str(exc), exc.host.public_url) from exc
        except (SQLAlchemyError, OSError) as exc:
            raise Refused("internal_error", "the cluster database cannot be reached; try again") from exc
        if host.node_id != self.node_id:
            raise Refused("hosted_elsewhere", f"hearing placed on node {host.node_id}", host.public_url)

    async def release(self, hearing_id: str) -> None:
        """Give the lease back (the hearing left this node)."""
        await self.table.release(hearing_id)

    async def drain(self) -> None:
        """Take no new hearings (placement skips draining nodes)."""
        self.draining = True
        await self.table.set_state(NodeState.DRAINING)

    async def beat(self) -> None:
        """One heartbeat and one reaper pass (the loop runs this every ``heartbeat_s``)."""
        try:
            lost = await self.table.heartbeat(self._load(), self._hosted())
            if not self.database_ok:
                log.info("cluster database reachable again")
            self.database_ok = True
        except (SQLAlchemyError, OSError) as exc:
            self._database_lost(exc)
            return
        if self.table.state is NodeState.DRAINING and not self.draining:
            self.draining = True
            log.warning("node %s told to drain", self.node_id)
            if self._on_drain is not None:
                self._on_drain()
        for hearing_id in lost:
            log.error("lease of hearing %s was taken by another node; leaving it", hearing_id)
            if self._on_lost is not None:
                await self._on_lost(hearing_id)
        await self.reap()

    def _database_lost(self, exc: BaseException) -> None:
        """Note the database gone; say so once, whichever half of the pass (heartbeat, reaper) found out."""
        if self.database_ok:
            log.warning("cluster heartbeat failed (live hearings carry on): %s", type(exc).__name__)
        self.database_ok = False

    async def reap(self) -> int:
        """Interrupt the hearings of dead nodes (expired leases); return how many."""
        count = 0
        for orphan in await self.table.orphans():
            try:
                if await self._interrupt(orphan.hearing_id, f"node_failed:{orphan.node_id}"):
                    count += 1
                    log.warning("hearing %s of dead node %s interrupted", orphan.hearing_id, orphan.node_id)
                await self.table.forget(orphan)
            except Exception:
                log.exception("interrupting hearing %s of node %s failed", orphan.hearing_id, orphan.node_id)
        self.reaped += count
        return count

    async def _run(self) -> None:
        # The reaper also runs half-way between heartbeats: a dead node's hearings are interrupted at most
        # a lease plus half a heartbeat after its last one (8 + 1 s by default), within the 10 s promised.
        half = self._heartbeat_s / 2
        while True:
            started = time.monotonic()
            try:
                await self.beat()
                await asyncio.sleep(max(0.05, half - (time.monotonic() - started)))
                if self.database_ok:
                    await self.reap()
            except (SQLAlchemyError, OSError) as exc:
                self._database_lost(exc)  # the reaper's half of the pass noticed first
            except Exception:
                log.exception("cluster heartbeat pass failed")
            await asyncio.sleep(max(0.05, self._heartbeat_s - (time.monotonic() - started)))

    async def stop(self) -> None:
        """Stop heartbeating and leave the cluster (leases of hearings still here lapse to the reaper)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(SQLAlchemyError, OSError):
            await self.table.set_state(NodeState.DEAD)


CLUSTER_NODE = web.AppKey("cluster_node", ClusterNode)
