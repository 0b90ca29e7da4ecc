"""Who may take a seat in a live hearing: invitation tokens for parties, login sessions for staff.

Implements the signaling :class:`signaling.live.Gate` for one WebSocket connection.
"""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hearing_server.auth.guessing import GuessGuard
from hearing_server.auth.invitations import resolve_invitation
from hearing_server.auth.staff import session_user
from hearing_server.domain.errors import InvitationUnusable
from hearing_server.domain.events import EventType
from hearing_server.domain.ids import is_valid_id
from hearing_server.domain.party import PartyRole, PartyState, StaffRole
from hearing_server.domain.staff import READ_ONLY_NOTE, HearingStaff
from hearing_server.record.event_log import EventRecorder
from hearing_server.store.models import Hearing, Party, User
from signaling.protocol import ErrorCode, ProtocolError
from signaling.room.participant import Entrant

STAFF_SEAT_ROLES = frozenset({StaffRole.OPERATOR, StaffRole.ADMIN, StaffRole.JUDGE})


class LiveEntry:
    """Resolves invitation tokens and staff accounts to seats; limits link guessing (never a valid link)."""

    def __init__(
        self, db: async_sessionmaker[AsyncSession], events: EventRecorder, guesses: GuessGuard
    ) -> None:
        self._db = db
        self._events = events
        self._guesses = guesses

    async def party_entrant(self, token: str, language: str | None, address: str) -> tuple[str, Entrant]:
        """The hearing and party an invitation token admits to (raises the invitation's error code).

        A valid token always gets in; unusable ones past the guessing limits (``GuessGuard``) are refused
        with ``rate_limited`` instead of their own code.
        """
        async with self._db() as session:
            try:
                _invitation, party, hearing = await resolve_invitation(session, token, datetime.now(UTC))
            except InvitationUnusable as exc:
                refused = self._guesses.unusable(address)
                if refused is not None:
                    raise ProtocolError(
                        ErrorCode.RATE_LIMITED,
                        "too many unusable links; try again later",
                        retry_after=refused.retry_after,
                    ) from exc
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
            staff = HearingStaff(hearing.presiding_judge_id, hearing.secretary_id)
            if courtroom and not staff.may_operate(user.id, user.role):
                raise ProtocolError(ErrorCode.FORBIDDEN, READ_ONLY_NOTE, field="seat")
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


class ConnectionGate:
    """The :class:`signaling.live.Gate` of one WebSocket: its address and its login cookie."""

    def __init__(self, entry: LiveEntry, request: web.Request, address: str) -> None:
        self._entry = entry
        self._request = request
        self._address = address

    async def party_entrant(self, token: str, language: str | None) -> tuple[str, Entrant]:
        """The hearing and party an invitation token admits to."""
        try:
            return await self._entry.party_entrant(token, language, self._address)
        except (SQLAlchemyError, OSError) as exc:
            raise _unreachable() from exc

    async def staff_entrant(self, hearing_id: str, seat: str, language: str | None) -> Entrant:
        """The seat of the staff member logged in on this connection."""
        try:
            user = await session_user(self._request)
            if user is None:
                raise ProtocolError(ErrorCode.NOT_AUTHENTICATED, "log in as court staff first")
            if user.must_change_password:  # as on the REST API: nothing else until the password is theirs
                raise ProtocolError(ErrorCode.FORBIDDEN, "change your password first")
            return await self._entry.staff_entrant(user, hearing_id, seat, language)
        except (SQLAlchemyError, OSError) as exc:
            raise _unreachable() from exc


def _unreachable() -> ProtocolError:
    # Joins need the database (links, logins, placement); hearings already live carry on without it.
    return ProtocolError(
        ErrorCode.INTERNAL_ERROR, "the court's database cannot be reached; try again shortly"
    )
