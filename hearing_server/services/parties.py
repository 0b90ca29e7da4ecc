"""Adding, changing and removing the parties of a hearing."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from hearing_server.domain.errors import Conflict, NotFound
from hearing_server.domain.hearing import HearingStatus
from hearing_server.domain.ids import is_valid_id
from hearing_server.domain.party import PartyRole, PartyState
from hearing_server.store.models import Hearing, Party

CLOSED = frozenset({HearingStatus.ENDED, HearingStatus.SEALED, HearingStatus.CANCELLED})


def check_open_for_parties(hearing: Hearing) -> None:
    """Raise :class:`Conflict` once a hearing is over or cancelled: its parties are final."""
    if HearingStatus(hearing.status) in CLOSED:
        raise Conflict(
            f"the hearing is {hearing.status}; its parties can no longer change", code="hearing_closed"
        )


async def _check_one_courtroom(db: AsyncSession, hearing: Hearing, exclude_id: str | None = None) -> None:
    rows = await db.execute(
        select(Party.id).where(Party.hearing_id == hearing.id, Party.role == PartyRole.COURTROOM.value)
    )
    if any(party_id != exclude_id for party_id in rows.scalars()):
        raise Conflict("the hearing already has a courtroom endpoint", code="courtroom_exists")


async def add_party(
    db: AsyncSession,
    hearing: Hearing,
    *,
    role: PartyRole,
    display_name: str,
    language: str | None,
    contact: str,
    now: datetime,
) -> Party:
    """Add a party to a hearing that is not over; a hearing has at most one courtroom endpoint."""
    check_open_for_parties(hearing)
    if role == PartyRole.COURTROOM:
        await _check_one_courtroom(db, hearing)
    party = Party(
        hearing_id=hearing.id,
        role=role.value,
        display_name=display_name,
        language=language,
        contact=contact,
        state=PartyState.INVITED.value,
        created_at=now,
    )
    db.add(party)
    await db.flush()
    return party


async def get_party(db: AsyncSession, hearing: Hearing, party_id: str) -> Party:
    """The party ``party_id`` of ``hearing`` (with its invitations), or :class:`NotFound`."""
    if not is_valid_id(party_id):
        raise NotFound("no such party", code="party_not_found")
    party = (
        await db.execute(
            select(Party)
            .where(Party.id == party_id, Party.hearing_id == hearing.id)
            .options(selectinload(Party.invitations))
        )
    ).scalar_one_or_none()
    if party is None:
        raise NotFound("no such party", code="party_not_found")
    return party


async def list_parties(db: AsyncSession, hearing: Hearing) -> list[Party]:
    """The hearing's parties in the order they were added."""
    rows = await db.execute(
        select(Party)
        .where(Party.hearing_id == hearing.id)
        .options(selectinload(Party.invitations))
        .order_by(Party.created_at, Party.id)
    )
    return list(rows.scalars())


async def update_party(
    db: AsyncSession, hearing: Hearing, party: Party, changes: dict[str, Any]
) -> list[str]:
    """Apply ``changes`` to a party of a hearing that is not over; returns the fields that changed."""
    check_open_for_parties(hearing)
    changes = {
        name: (value.value if isinstance(value, PartyRole) else value) for name, value in changes.items()
    }
    changed = [name for name, value in changes.items() if getattr(party, name) != value]
    if "role" in changed and changes["role"] == PartyRole.COURTROOM.value:
        await _check_one_courtroom(db, hearing, exclude_id=party.id)
    for name in changed:
        setattr(party, name, changes[name])
    await db.flush()
    return changed


async def delete_party(db: AsyncSession, hearing: Hearing, party: Party) -> None:
    """Delete a party (and its links) while the hearing is only scheduled."""
    if HearingStatus(hearing.status) != HearingStatus.SCHEDULED:
        raise Conflict(
            f"parties can be deleted only before the hearing opens (it is {hearing.status})",
            code="not_deletable",
        )
    await db.delete(party)
    await db.flush()
