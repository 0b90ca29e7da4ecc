"""The registry of live hearings: one :class:`LiveHearing` per hearing, created when someone joins."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hearing_server.auth.ratelimit import LoginLimiter, LoginThrottled
from hearing_server.config import Config
from hearing_server.domain.errors import InvitationUnusable
from hearing_server.domain.events import EventType
from hearing_server.domain.hearing import HearingStatus
from hearing_server.domain.ids import is_valid_id
from hearing_server.domain.party import PartyRole, PartyState, StaffRole
from hearing_server.record.event_log import EventRecorder
from hearing_server.store.models import Hearing, Party, User
from media.contract import MediaEvents, MediaRouter, MediaSettings, PacketSink
from media.stats import MediaStats
from signaling.protocol import ErrorCode, ProtocolError
from signaling.room import (
    Connection,
    Entrant,
    LiveHearing,
    MediaFactory,
    Participant,
    RecordingFactory,
    RoomClosed,
)

log = logging.getLogger(__name__)

STAFF_SEAT_ROLES = frozenset({StaffRole.OPERATOR, StaffRole.ADMIN, StaffRole.JUDGE})
# Unusable invitation tokens an address may present per window before its joins are refused (link guessing).
TOKEN_FAILURES_PER_ADDRESS = 20
TOKEN_FAILURE_WINDOW_S = 60.0


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


class LiveHearings:
    """Holds the live hearings of this process and seats people in them."""

    def __init__(
        self,
        config: Config,
        db: async_sessionmaker[AsyncSession],
        events: EventRecorder,
        *,
        media_factory: MediaFactory | None = None,
        recording_factory: RecordingFactory | None = None,
        on_ended: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        self._config = config
        self._db = db
        self._events = events
        self._media_factory = media_factory or default_media_factory
        self._recording_factory = recording_factory
        self._on_ended = on_ended
        self._rooms: dict[str, LiveHearing] = {}
        self._lock = asyncio.Lock()
        self._closing = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._token_failures = LoginLimiter(
            TOKEN_FAILURES_PER_ADDRESS, TOKEN_FAILURE_WINDOW_S, per_address_factor=1
        )

    def track(self, task: asyncio.Task[None]) -> asyncio.Task[None]:
        """Keep ``task`` referenced until it finishes (connections' workers outlive their handlers)."""
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def get(self, hearing_id: str) -> LiveHearing | None:
        """The live hearing of ``hearing_id``, if anyone is in it."""
        return self._rooms.get(hearing_id)

    async def room(self, hearing_id: str) -> LiveHearing:
        """The live hearing of ``hearing_id``, loaded from the database when nobody is in it yet."""
        async with self._lock:
            if self._closing:
                raise ProtocolError(ErrorCode.HEARING_CLOSED, "the server is shutting down")
            room = self._rooms.get(hearing_id)
            if room is not None and not room.closed:
                return room
            async with self._db() as session:
                hearing = await session.get(Hearing, hearing_id)
            if hearing is None:
                raise ProtocolError(ErrorCode.NOT_FOUND, "no such hearing")
            room = LiveHearing(
                hearing,
                config=self._config,
                db=self._db,
                events=self._events,
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
        if room.status is HearingStatus.ENDED and self._on_ended is not None:
            self.track(asyncio.ensure_future(self._after_end(room.id)))

    async def _after_end(self, hearing_id: str) -> None:
        assert self._on_ended is not None
        try:
            await self._on_ended(hearing_id)
        except Exception:
            log.exception("finishing ended hearing %s failed", hearing_id)

    async def close(self) -> None:
        """Interrupt every live hearing (server shutdown)."""
        self._closing = True
        for room in list(self._rooms.values()):
            try:
                await room.interrupt()
            except Exception:
                log.exception("interrupting hearing %s failed", room.id)
        self._rooms.clear()

    # --- who is joining -----------------------------------------------------------------------

    async def party_entrant(self, token: str, language: str | None, address: str = "") -> tuple[str, Entrant]:
        """The hearing and party an invitation token admits to (raises the invitation's error code).

        An address that keeps presenting unusable tokens is refused for a while (``rate_limited``).
        """
        from hearing_server.auth.invitations import resolve_invitation

        try:
            self._token_failures.check("", address)
        except LoginThrottled as exc:
            raise ProtocolError(
                ErrorCode.RATE_LIMITED,
                "too many unusable links from this address; try again later",
                retry_after=exc.retry_after,
            ) from exc
        async with self._db() as session:
            try:
                _invitation, party, hearing = await resolve_invitation(session, token, datetime.now(UTC))
            except InvitationUnusable as exc:
                self._token_failures.failed("", address)
                code = exc.code if exc.code in {c.value for c in ErrorCode} else ErrorCode.INVITATION_INVALID
                raise ProtocolError(ErrorCode(code), exc.message) from exc
        entrant = Entrant(
            party_id=party.id,
            role=PartyRole(party.role),
            name=party.display_name,
            actor=f"party:{party.id}",
            language=language or party.language,
        )
        return hearing.id, entrant

    async def staff_entrant(self, user: User, hearing_id: str, seat: str, language: str | None) -> Entrant:
        """A staff member's seat: the courtroom endpoint (operator controls) or a silent observer."""
        if user.disabled or user.role not in STAFF_SEAT_ROLES:
            raise ProtocolError(ErrorCode.FORBIDDEN, "this account may not join hearings")
        if not is_valid_id(hearing_id):
            raise ProtocolError(ErrorCode.NOT_FOUND, "no such hearing", field="hearing_id")
        courtroom = seat == "courtroom"
        role = PartyRole.COURTROOM if courtroom else PartyRole.OBSERVER
        async with self._db() as session:
            hearing = await session.get(Hearing, hearing_id)
            if hearing is None:
                raise ProtocolError(ErrorCode.NOT_FOUND, "no such hearing", field="hearing_id")
            query = select(Party).where(Party.hearing_id == hearing_id, Party.role == role.value)
            if not courtroom:
                query = query.where(Party.contact == f"staff:{user.id}")
            party = (await session.execute(query.order_by(Party.created_at).limit(1))).scalar_one_or_none()
            created = party is None
            if party is None:
                name = hearing.courtroom if courtroom else (user.display_name or user.username)
                party = Party(
                    hearing_id=hearing_id,
                    role=role.value,
                    display_name=name or "Courtroom",
                    contact="" if courtroom else f"staff:{user.id}",
                    state=PartyState.INVITED.value,
                    created_at=datetime.now(UTC),
                )
                session.add(party)
                await session.commit()
        actor = f"user:{user.id}"
        if created:
            await self._events.record(
                hearing_id,
                EventType.PARTY_ADDED,
                actor=actor,
                party_id=party.id,
                details={"role": role.value, "name": party.display_name, "reason": f"staff joined as {seat}"},
            )
        return Entrant(
            party_id=party.id,
            role=role,
            name=party.display_name,
            actor=actor,
            staff=True,
            operator=courtroom,
            silent=not courtroom,
            language=language,
        )
