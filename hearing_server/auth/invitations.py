"""Invitation links: a party's token resolved to its invitation, party and hearing.

A link is ``PUBLIC_URL/join/TOKEN``; the token has 256 random bits and only its SHA-256 is stored.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hearing_server.auth.tokens import hash_token, new_token, plausible_token
from hearing_server.domain.errors import InvitationUnusable
from hearing_server.domain.hearing import HearingStatus
from hearing_server.store.models import Hearing, Invitation, Party

__all__ = ["InvitationStatus", "hash_token", "invitation_status", "new_token", "resolve_invitation"]

_OVER = frozenset({HearingStatus.ENDED, HearingStatus.SEALED})


class InvitationStatus(StrEnum):
    """Whether an invitation link still opens the hearing."""

    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"


def invitation_status(invitation: Invitation, now: datetime) -> InvitationStatus:
    """The status of ``invitation`` at ``now``."""
    if invitation.revoked_at is not None:
        return InvitationStatus.REVOKED
    if invitation.expires_at <= now:
        return InvitationStatus.EXPIRED
    return InvitationStatus.ACTIVE


async def resolve_invitation(
    session: AsyncSession, token: str, now: datetime
) -> tuple[Invitation, Party, Hearing]:
    """The invitation, party and hearing of a link token.

    Raises :class:`InvitationUnusable` with code ``invitation_invalid`` (unknown or malformed token),
    ``invitation_revoked`` (revoked, or the hearing was cancelled) or ``invitation_expired`` (past its
    expiry, or the hearing has ended).
    """
    if not plausible_token(token):
        raise InvitationUnusable("this link is not valid", code="invitation_invalid")
    row = (
        await session.execute(
            select(Invitation, Party, Hearing)
            .join(Party, Invitation.party_id == Party.id)
            .join(Hearing, Invitation.hearing_id == Hearing.id)
            .where(Invitation.token_hash == hash_token(token))
        )
    ).one_or_none()
    if row is None:
        raise InvitationUnusable("this link is not valid", code="invitation_invalid")
    invitation, party, hearing = row
    if invitation.revoked_at is not None or hearing.status == HearingStatus.CANCELLED:
        raise InvitationUnusable("this link has been withdrawn", code="invitation_revoked")
    if invitation.expires_at <= now or hearing.status in _OVER:
        raise InvitationUnusable("this link has expired", code="invitation_expired")
    return invitation, party, hearing


async def resolve_for_acts(
    session: AsyncSession, token: str, now: datetime, keep_days: float
) -> tuple[Invitation, Party, Hearing]:
    """The invitation, party and hearing of a link used to fetch the hearing's court acts: unlike joining,
    this keeps working after the hearing, until ``keep_days`` after the link's own expiry.

    Raises :class:`InvitationUnusable` as :func:`resolve_invitation` does.
    """
    if not plausible_token(token):
        raise InvitationUnusable("this link is not valid", code="invitation_invalid")
    row = (
        await session.execute(
            select(Invitation, Party, Hearing)
            .join(Party, Invitation.party_id == Party.id)
            .join(Hearing, Invitation.hearing_id == Hearing.id)
            .where(Invitation.token_hash == hash_token(token))
        )
    ).one_or_none()
    if row is None:
        raise InvitationUnusable("this link is not valid", code="invitation_invalid")
    invitation, party, hearing = row
    if invitation.revoked_at is not None or hearing.status == HearingStatus.CANCELLED:
        raise InvitationUnusable("this link has been withdrawn", code="invitation_revoked")
    if invitation.expires_at + timedelta(days=keep_days) <= now:
        raise InvitationUnusable("this link has expired", code="invitation_expired")
    return invitation, party, hearing
