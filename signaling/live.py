"""The registry of live hearings: one :class:`LiveHearing` per hearing, created when someone joins."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from hearing_server.domain.hearing import HearingStatus
from media.contract import MediaEvents, MediaRouter, MediaSettings, PacketSink
from media.stats import MediaStats
from signaling.placement import Placement, SingleNode
from signaling.protocol import ErrorCode, ProtocolError
from signaling.room.hearing import LiveHearing
from signaling.room.media_session import MediaFactory, RecordingFactory
from signaling.room.participant import Connection, Entrant, Participant, RoomClosed
from signaling.room.store import RoomSettings, RoomStore

log = logging.getLogger(__name__)


def default_media_factory(
    settings: MediaSettings, events: MediaEvents, sink: PacketSink | None
) -> MediaRouter:
    """The production media plane (imported only when a hearing first needs media)."""
    from media.router import Router

    router: MediaRouter = Router(settings, events, sink)
    return router


def media_factory_counting_into(stats: MediaStats) -> MediaFactory:
    """The production media plane, every router counting into one ``stats`` (which /metrics reads)."""

    def factory(settings: MediaSettings, events: MediaEvents, sink: PacketSink | None) -> MediaRouter:
        from media.router import Router

        router: MediaRouter = Router(settings, events, sink, stats)
        return router

    return factory


class Gate(Protocol):
    """Who a joining connection is: answers with the hearing and the seat, or raises a ProtocolError.

    The control plane implements it per connection (it checks invitation tokens and staff sessions).
    """

    async def party_entrant(self, token: str, language: str | None) -> tuple[str, Entrant]:
        """The hearing and party an invitation token admits to."""

    async def staff_entrant(self, hearing_id: str, seat: str, language: str | None) -> Entrant:
        """A logged-in staff member's seat: the courtroom endpoint or a silent observer."""


class LiveHearings:
    """Holds the live hearings of this process and seats people in them."""

    def __init__(
        self,
        settings: RoomSettings,
        store: RoomStore,
        *,
        media_factory: MediaFactory | None = None,
        recording_factory: RecordingFactory | None = None,
        on_ended: Callable[[str], Awaitable[None]] | None = None,
        placement: Placement | None = None,
    ) -> None:
        self.settings = settings
        self.placement: Placement = placement or SingleNode()
        self._store = store
        self._media_factory = media_factory or default_media_factory
        self._recording_factory = recording_factory
        self._on_ended = on_ended
        self._rooms: dict[str, LiveHearing] = {}
        self._lock = asyncio.Lock()
        self._closing = False
        self._draining = False
        self._tasks: set[asyncio.Task[None]] = set()
        # A closed hearing's follow-up (its lease released, its record sealed): shutdown lets it finish.
        self._follow_ups: set[asyncio.Task[None]] = set()

    def track(self, task: asyncio.Task[None]) -> asyncio.Task[None]:
        """Keep ``task`` referenced until it finishes (connections' workers outlive their handlers)."""
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def get(self, hearing_id: str) -> LiveHearing | None:
        """The live hearing of ``hearing_id``, if anyone is in it."""
        return self._rooms.get(hearing_id)

    def hosted(self) -> list[str]:
        """The hearings live on this node."""
        return [hearing_id for hearing_id, room in self._rooms.items() if not room.closed]

    @property
    def idle(self) -> bool:
        """No live hearing here and no work left over from one (e.g. sealing after its end)."""
        return not self.hosted() and not self._tasks and not self._follow_ups

    @property
    def accepting(self) -> bool:
        """Whether new hearings may still go live here (not while draining or shutting down)."""
        return not self._closing and not self._draining

    def drain(self) -> None:
        """Take no new hearings; the live ones carry on."""
        self._draining = True

    async def leave(self, hearing_id: str) -> None:
        """Another node holds the hearing now: let go of it here without touching its record."""
        room = self._rooms.get(hearing_id)
        if room is not None:
            await room.abandon()

    async def room(self, hearing_id: str) -> LiveHearing:
        """The live hearing of ``hearing_id``, loaded from storage when nobody is in it yet."""
        async with self._lock:
            if self._closing:
                raise ProtocolError(ErrorCode.HEARING_CLOSED, "the server is shutting down")
            room = self._rooms.get(hearing_id)
            if room is not None and not room.closed:
                return room
            hearing = await self._store.load_hearing(hearing_id)
            if hearing is None:
                raise ProtocolError(ErrorCode.NOT_FOUND, "no such hearing")
            if self._draining:
                raise ProtocolError(ErrorCode.CLUSTER_FULL, "this node is draining and takes no new hearings")
            await self.placement.claim(hearing_id)
            room = LiveHearing(
                hearing,
                settings=self.settings,
                store=self._store,
                media_factory=self._media_factory,
                recording_factory=self._recording_factory,
                on_closed=self._forget,
            )
            self._rooms[hearing_id] = room
            return room

    async def enter(
        self, hearing_id: str, entrant: Entrant, conn: Connection
    ) -> tuple[LiveHearing, Participant]:
        """Seat ``entrant`` in the hearing on ``conn``."""
        for _ in range(3):
            room = await self.room(hearing_id)
            try:
                return room, await room.join(entrant, conn)
            except RoomClosed:
                continue  # it closed as we arrived; the next lookup builds a fresh one
            except Exception:
                await room.release_if_idle()  # e.g. too early: do not keep an empty room around
                raise
        raise ProtocolError(ErrorCode.HEARING_CLOSED, "the hearing is closing")

    def _forget(self, room: LiveHearing) -> None:
        if self._rooms.get(room.id) is room:
            del self._rooms[room.id]
            self._follow_up(self._release(room.id))
        if room.status is HearingStatus.ENDED and self._on_ended is not None:
            self._follow_up(self._after_end(room.id))

    def _follow_up(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._follow_ups.add(task)
        task.add_done_callback(self._follow_ups.discard)

    async def _release(self, hearing_id: str) -> None:
        try:
            await self.placement.release(hearing_id)
        except Exception:
            log.exception("releasing the lease of hearing %s failed", hearing_id)

    async def _after_end(self, hearing_id: str) -> None:
        assert self._on_ended is not None
        try:
            await self._on_ended(hearing_id)
        except Exception:
            log.exception("finishing ended hearing %s failed", hearing_id)

    async def close(self, grace_s: float = 20.0) -> None:
        """Interrupt every live hearing, then give closed hearings' follow-up ``grace_s`` (server shutdown).

        A seal still running after the grace is cancelled; the next start seals the hearing
        (``Sealer.recover``). Nothing is left half-done in the database either way.
        """
        self._closing = True
        rooms = list(self._rooms.values())
        # all at once: one hearing whose connections are slow to close holds back no other's recording
        results = await asyncio.gather(*(room.interrupt() for room in rooms), return_exceptions=True)
        for room, result in zip(rooms, results, strict=True):
            if isinstance(result, Exception):
                log.error("interrupting hearing %s failed", room.id, exc_info=result)
        self._rooms.clear()
        if not self._follow_ups:
            return
        _, unfinished = await asyncio.wait(set(self._follow_ups), timeout=grace_s)
        if unfinished:
            log.warning(
                "shutdown cancels %d closed hearing(s)' follow-up still running; the next start seals them",
                len(unfinished),
            )
            for task in unfinished:
                task.cancel()
            await asyncio.gather(*unfinished, return_exceptions=True)
