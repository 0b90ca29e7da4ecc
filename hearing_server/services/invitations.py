"""Issuing and withdrawing a party's invitation link; it expires after the hearing's day (court time)."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from hearing_server.auth.invitations import hash_token, new_token
from hearing_server.domain.errors import NotFound
from hearing_server.services.hearings import scheduled_end
from hearing_server.services.parties import check_open_for_parties
from hearing_server.store.models import Hearing, Invitation, Party

# A link issued late (a hearing running past midnight) still lasts this long.
MIN_VALIDITY = timedelta(hours=1)


def invitation_expiry(hearing: Hearing, zone: ZoneInfo, grace_hours: float, now: datetime) -> datetime:
    """Midnight after the day (court time) on which the hearing is planned to end, plus the grace period."""
    last_day = scheduled_end(hearing).astimezone(zone).date()
    midnight = datetime.combine(last_day + timedelta(days=1), time(0), tzinfo=zone)
    return max(midnight + timedelta(hours=grace_hours), now + MIN_VALIDITY)


def active_invitation(party: Party, now: datetime) -> Invitation | None:
    """The party's newest usable invitation (invitations must be loaded)."""
    for invitation in reversed(party.invitations):
        if invitation.revoked_at is None and invitation.expires_at > now:
            return invitation
    return None


def latest_invitation(party: Party) -> Invitation | None:
    """The party's most recently issued invitation, whatever its status (invitations must be loaded)."""
    return party.invitations[-1] if party.invitations else None


async def _revoke_active(db: AsyncSession, party: Party, now: datetime) -> int:
    result = await db.execute(
        update(Invitation)
        .where(Invitation.party_id == party.id, Invitation.revoked_at.is_(None))
        .values(revoked_at=now, link_sealed=None)
        .execution_options(synchronize_session="fetch")
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def issue(
    db: AsyncSession, hearing: Hearing, party: Party, *, zone: ZoneInfo, grace_hours: float, now: datetime
) -> tuple[str, Invitation]:
    """A new link for ``party`` (any earlier link stops working); the token is returned only here."""
    check_open_for_parties(hearing)
    await _revoke_active(db, party, now)
    token = new_token()
    invitation = Invitation(
        party_id=party.id,
        hearing_id=hearing.id,
        token_hash=hash_token(token),
        created_at=now,
        expires_at=invitation_expiry(hearing, zone, grace_hours, now),
        revoked_at=None,
    )
    db.add(invitation)
    await db.flush()
    return token, invitation


async def revoke(db: AsyncSession, party: Party, now: datetime) -> None:
    """Withdraw the party's link; :class:`NotFound` when it has none that is not already withdrawn."""
    if not await _revoke_active(db, party, now):
        raise NotFound("the party has no link to withdraw", code="invitation_not_found")
    await db.flush()


async def follow_schedule(
    db: AsyncSession, hearing: Hearing, *, zone: ZoneInfo, grace_hours: float, now: datetime
) -> None:
    """Move the expiry of the hearing's unrevoked links after its date or duration changed."""
    rows = await db.execute(
        select(Invitation).where(Invitation.hearing_id == hearing.id, Invitation.revoked_at.is_(None))
    )
    expiry = invitation_expiry(hearing, zone, grace_hours, now)
    for invitation in rows.scalars():
        invitation.expires_at = expiry
    await db.flush()
