"""A party's invitation link: issue (with its QR code), read its status, withdraw.

The token is stored only as a hash, so the link and its QR code (SVG and PNG data URIs) are returned
once, in the answer to issuing; a lost link is replaced by issuing a new one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import segno

from hearing_server.api.call import Call
from hearing_server.api.present import invitation_out
from hearing_server.api.registry import endpoint
from hearing_server.api.schemas import InvitationOut, IssuedInvitationOut, QrCodes
from hearing_server.auth.access import HEARING_MANAGERS, HEARING_READERS
from hearing_server.domain.errors import NotFound
from hearing_server.domain.events import EventType
from hearing_server.services import hearings, invitations, parties

TAG = "invitations"
PATH = "/api/v1/hearings/{hearing_id}/parties/{party_id}/invitation"


def join_url(public_url: str, token: str) -> str:
    """The link a party opens."""
    return f"{public_url}/join/{token}"


def qr_codes(url: str) -> QrCodes:
    """The link as QR code images (error correction M: survives a smudged printout or a phone screen)."""
    code = segno.make(url, error="m", micro=False)
    return QrCodes(svg=code.svg_data_uri(scale=4, border=4), png=code.png_data_uri(scale=8, border=4))


@endpoint(
    "POST",
    PATH,
    access=HEARING_MANAGERS,
    tag=TAG,
    response=IssuedInvitationOut,
    status=201,
    no_store=True,
    summary="Issue a new link for the party (the previous one stops working); the link is shown only now.",
)
async def issue_invitation(call: Call) -> IssuedInvitationOut:
    config = call.config
    now = datetime.now(UTC)
    async with call.transaction() as db:
        hearing = await hearings.get_visible(db, call.path_id("hearing_id"), config.court_name)
        party = await parties.get_party(db, hearing, call.path_id("party_id"))
        token, invitation = await invitations.issue(
            db,
            hearing,
            party,
            zone=ZoneInfo(config.timezone),
            grace_hours=config.invitation_grace_hours,
            now=now,
        )
        call.record(
            hearing.id,
            EventType.PARTY_INVITED,
            party_id=party.id,
            invitation_id=invitation.id,
            expires_at=invitation.expires_at.isoformat(),
        )
    url = join_url(config.effective_public_url, token)
    return IssuedInvitationOut(
        id=invitation.id,
        hearing_id=hearing.id,
        party_id=party.id,
        url=url,
        expires_at=invitation.expires_at,
        qr=qr_codes(url),
    )


@endpoint(
    "GET",
    PATH,
    access=HEARING_READERS,
    tag=TAG,
    response=InvitationOut,
    summary="The status of the party's latest link (never the link itself).",
)
async def get_invitation(call: Call) -> InvitationOut:
    async with call.reading() as db:
        hearing = await hearings.get_visible(db, call.path_id("hearing_id"), call.config.court_name)
        party = await parties.get_party(db, hearing, call.path_id("party_id"))
    latest = invitations.latest_invitation(party)
    if latest is None:
        raise NotFound("no link was issued for this party", code="invitation_not_found")
    return invitation_out(latest, datetime.now(UTC))


@endpoint(
    "DELETE",
    PATH,
    access=HEARING_MANAGERS,
    tag=TAG,
    status=204,
    summary="Withdraw the party's link.",
)
async def revoke_invitation(call: Call) -> None:
    async with call.transaction() as db:
        hearing = await hearings.get_visible(db, call.path_id("hearing_id"), call.config.court_name)
        party = await parties.get_party(db, hearing, call.path_id("party_id"))
        await invitations.revoke(db, party, datetime.now(UTC))
        call.record(hearing.id, EventType.INVITATION_REVOKED, party_id=party.id)


ENDPOINTS = (issue_invitation, get_invitation, revoke_invitation)
