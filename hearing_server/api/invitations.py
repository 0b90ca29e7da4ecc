"""A party's invitation link: issue (with its QR code), read its status, withdraw.

The token is stored only as a hash, so the link and its QR code (SVG and PNG data URIs) are returned
once, in the answer to issuing; a lost link is replaced by issuing a new one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import segno

from hearing_server.api.call import Call
from hearing_server.api.hearing_guard import hearing_staff_only
from hearing_server.api.present import invitation_out
from hearing_server.api.registry import endpoint
from hearing_server.api.schemas import (
    DeliveryOut,
    InvitationIssueIn,
    InvitationOut,
    IssuedInvitationOut,
    QrCodes,
)
from hearing_server.auth.access import HEARING_MANAGERS, HEARING_READERS
from hearing_server.domain.errors import Conflict, InvalidInput, NotFound
from hearing_server.domain.events import EventType
from hearing_server.domain.notification import Channel, NotificationKind, normalize_recipient
from hearing_server.notify.worker import LINK_VAULT, NOTIFICATIONS
from hearing_server.services import hearings, invitations, notifications, parties
from hearing_server.store.models import Notification

TAG = "invitations"
PATH = "/api/v1/hearings/{hearing_id}/parties/{party_id}/invitation"


def join_url(public_url: str, token: str) -> str:
    """The link a party opens."""
    return f"{public_url}/join/{token}"


def qr_codes(url: str) -> QrCodes:
    """The link as QR code images (error correction M: survives a smudged printout or a phone screen)."""
    code = segno.make(url, error="m", micro=False)
    return QrCodes(svg=code.svg_data_uri(scale=4, border=4), png=code.png_data_uri(scale=8, border=4))


def _recipient(call: Call, body: InvitationIssueIn, contact: str) -> str:
    """The checked address for the chosen channel; :class:`InvalidInput` or :class:`Conflict` if unusable."""
    channel = body.channel
    if channel is Channel.HANDOVER:
        if body.to is not None:
            raise InvalidInput("a handed-over link has no recipient; leave 'to' out", code="invalid_input")
        return ""
    if channel not in call.request.app[NOTIFICATIONS].channels:
        raise Conflict(
            f"this server is not configured to send {channel.value}", code="channel_not_configured"
        )
    raw = body.to if body.to is not None else contact
    if not raw.strip():
        raise InvalidInput(
            f"give the party's {'e-mail address' if channel is Channel.EMAIL else 'phone number'}",
            code="recipient_missing",
        )
    return normalize_recipient(channel, raw)


@endpoint(
    "POST",
    PATH,
    access=HEARING_MANAGERS,
    guard=hearing_staff_only,
    tag=TAG,
    body=InvitationIssueIn,
    response=IssuedInvitationOut,
    status=201,
    no_store=True,
    summary="Issue a new link for the party (the previous one stops working) and send it by e-mail or SMS, "
    "or hand it over; the link is shown only now.",
)
async def issue_invitation(call: Call) -> IssuedInvitationOut:
    config = call.config
    body: InvitationIssueIn = call.body
    now = datetime.now(UTC)
    planned: list[Notification] = []
    async with call.transaction() as db:
        hearing = await hearings.get_visible(db, call.path_id("hearing_id"), config.court_name)
        party = await parties.get_party(db, hearing, call.path_id("party_id"))
        recipient = _recipient(call, body, party.contact)
        withdrawn = await notifications.cancel_pending(
            db, hearing_id=hearing.id, party_id=party.id, reason="a new link was issued", now=now
        )
        token, invitation = await invitations.issue(
            db,
            hearing,
            party,
            zone=ZoneInfo(config.timezone),
            grace_hours=config.invitation_grace_hours,
            now=now,
        )
        url = join_url(config.effective_public_url, token)
        invitation.channel = body.channel.value
        invitation.recipient = recipient
        if body.channel is not Channel.HANDOVER:
            invitation.link_sealed = call.request.app[LINK_VAULT].seal(url, invitation.id)
            planned = await notifications.plan_for_link(
                db,
                hearing,
                party,
                invitation,
                first=NotificationKind.INVITATION,
                reminder_hours=config.notify_reminder_hours,
                now=now,
            )
        await db.flush()
        call.record(
            hearing.id,
            EventType.PARTY_INVITED,
            party_id=party.id,
            invitation_id=invitation.id,
            expires_at=invitation.expires_at.isoformat(),
            channel=body.channel.value,
            recipient=recipient,
            messages_withdrawn=withdrawn,
        )
        record_queued(call, planned)
    if planned:
        call.request.app[NOTIFICATIONS].wake()
    return IssuedInvitationOut(
        id=invitation.id,
        hearing_id=hearing.id,
        party_id=party.id,
        url=url,
        expires_at=invitation.expires_at,
        qr=qr_codes(url),
        channel=body.channel,
        recipient=recipient,
        delivery=DeliveryOut.model_validate(planned[0]) if planned else None,
    )


def record_queued(call: Call, planned: list[Notification]) -> None:
    """Log each queued message (kind, channel, recipient, when due) with the call's other events."""
    for row in planned:
        call.record(
            row.hearing_id,
            EventType.NOTIFICATION_QUEUED,
            party_id=row.party_id,
            notification_id=row.id,
            kind=row.kind,
            channel=row.channel,
            recipient=row.recipient,
            language=row.language,
            due_at=row.next_attempt_at.isoformat(),
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
    guard=hearing_staff_only,
    tag=TAG,
    status=204,
    summary="Withdraw the party's link.",
)
async def revoke_invitation(call: Call) -> None:
    async with call.transaction() as db:
        hearing = await hearings.get_visible(db, call.path_id("hearing_id"), call.config.court_name)
        party = await parties.get_party(db, hearing, call.path_id("party_id"))
        now = datetime.now(UTC)
        await invitations.revoke(db, party, now)
        withdrawn = await notifications.cancel_pending(
            db, hearing_id=hearing.id, party_id=party.id, reason="the link was withdrawn", now=now
        )
        call.record(hearing.id, EventType.INVITATION_REVOKED, party_id=party.id, messages_withdrawn=withdrawn)


ENDPOINTS = (issue_invitation, get_invitation, revoke_invitation)
