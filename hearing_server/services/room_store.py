"""The live room's storage: hearings and parties in the database, events in the confirmation log."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hearing_server.domain.errors import StoreUnavailable
from hearing_server.domain.events import EventType, LoggedEvent
from hearing_server.domain.hearing import HearingInfo, HearingStatus
from hearing_server.domain.party import PartyState
from hearing_server.record.event_log import EventRecorder
from hearing_server.store.models import Hearing, Invitation, Party, User


def hearing_info(hearing: Hearing, secretary: User | None = None) -> HearingInfo:
    """What the live room needs of a hearing row (and of its secretary's account)."""
    return HearingInfo(
        id=hearing.id,
        case_number=hearing.case_number,
        title=hearing.title,
        court=hearing.court,
        courtroom=hearing.courtroom,
        scheduled_start=hearing.scheduled_start,
        duration_minutes=hearing.duration_minutes,
        presiding_judge=hearing.presiding_judge,
        notice_language=hearing.notice_language,
        status=HearingStatus(hearing.status),
        started_at=hearing.started_at,
        ended_at=hearing.ended_at,
        secretary_name=(secretary.display_name or secretary.username) if secretary is not None else "",
    )


class SqlRoomStore:
    """Implements :class:`signaling.room.store.RoomStore` on SQLAlchemy and the :class:`EventRecorder`."""

    def __init__(self, db: async_sessionmaker[AsyncSession], events: EventRecorder) -> None:
        self._db = db
        self._events = events

    async def load_hearing(self, hearing_id: str) -> HearingInfo | None:
        """The hearing, or None if there is no such hearing."""
        async with self._db() as session:
            hearing = await session.get(Hearing, hearing_id)
            if hearing is None:
                return None
            secretary = await session.get(User, hearing.secretary_id) if hearing.secretary_id else None
        return hearing_info(hearing, secretary)

    async def save_hearing_status(
        self,
        hearing_id: str,
        status: HearingStatus,
        *,
        started_at: datetime | None = None,
        ended_at: datetime | None = None,
    ) -> None:
        """Store the hearing's new status (and the time it started or ended)."""
        values: dict[str, Any] = {"status": status.value, "updated_at": datetime.now(UTC)}
        if started_at is not None:
            values["started_at"] = started_at
        if ended_at is not None:
            values["ended_at"] = ended_at
        async with self._db() as session:
            await session.execute(update(Hearing).where(Hearing.id == hearing_id).values(**values))
            await session.commit()

    async def save_party_state(self, party_id: str, state: PartyState) -> None:
        """Store a party's live state; raises :class:`StoreUnavailable` when the database is down."""
        try:
            async with self._db() as session:
                await session.execute(update(Party).where(Party.id == party_id).values(state=state.value))
                await session.commit()
        except (SQLAlchemyError, OSError) as exc:
            raise StoreUnavailable(str(exc)) from exc

    async def revoke_invitations(self, party_id: str) -> int:
        """Withdraw every usable invitation of a party; return how many."""
        async with self._db() as session:
            result = await session.execute(
                update(Invitation)
                .where(Invitation.party_id == party_id, Invitation.revoked_at.is_(None))
                .values(revoked_at=datetime.now(UTC))
            )
            await session.commit()
            return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def record_event(
        self,
        hearing_id: str,
        event: EventType,
        *,
        actor: str,
        party_id: str | None,
        details: dict[str, Any],
    ) -> None:
        """Append an entry to the hearing's confirmation log (durable before it returns)."""
        await self._events.record(hearing_id, event, actor=actor, party_id=party_id, details=details)

    async def history(self, hearing_id: str) -> list[LoggedEvent]:
        """The hearing's log entries so far, oldest first (from the mirror, brought up to date first)."""
        try:
            await self._events.flush_mirror()
            rows = await self._events.entries(hearing_id)
        except (SQLAlchemyError, OSError) as exc:
            raise StoreUnavailable(str(exc)) from exc
        return [LoggedEvent(r.seq, r.event, r.actor, r.party_id, dict(r.details or {})) for r in rows]
