"""Stored objects turned into response bodies."""

from __future__ import annotations

from datetime import datetime

from hearing_server.api.schemas import (
    DeliveryOut,
    HearingDetailOut,
    HearingOut,
    InvitationOut,
    PartyOut,
    UserOut,
)
from hearing_server.auth.invitations import invitation_status
from hearing_server.domain.staff import HearingStaff
from hearing_server.services.hearings import scheduled_end
from hearing_server.services.invitations import latest_invitation
from hearing_server.store.models import Hearing, Invitation, Notification, Party, User


def user_out(user: User) -> UserOut:
    """A staff account as the API shows it."""
    return UserOut.model_validate(user)


def invitation_out(invitation: Invitation, now: datetime) -> InvitationOut:
    """An invitation's status, without its token."""
    return InvitationOut(
        id=invitation.id,
        status=invitation_status(invitation, now),
        created_at=invitation.created_at,
        expires_at=invitation.expires_at,
        revoked_at=invitation.revoked_at,
    )


def party_out(
    party: Party, now: datetime, *, with_invitation: bool = True, delivery: Notification | None = None
) -> PartyOut:
    """A party with the status of its latest link (its invitations must be loaded) and of its messages."""
    latest = latest_invitation(party) if with_invitation else None
    return PartyOut(
        id=party.id,
        hearing_id=party.hearing_id,
        role=party.role,  # type: ignore[arg-type]
        display_name=party.display_name,
        language=party.language,  # type: ignore[arg-type]
        contact=party.contact,
        state=party.state,  # type: ignore[arg-type]
        created_at=party.created_at,
        invitation=invitation_out(latest, now) if latest is not None else None,
        delivery=DeliveryOut.model_validate(delivery) if delivery is not None else None,
    )


def _hearing_fields(hearing: Hearing) -> dict[str, object]:
    return {
        "id": hearing.id,
        "case_number": hearing.case_number,
        "title": hearing.title,
        "court": hearing.court,
        "courtroom": hearing.courtroom,
        "scheduled_start": hearing.scheduled_start,
        "scheduled_end": scheduled_end(hearing),
        "duration_minutes": hearing.duration_minutes,
        "presiding_judge": hearing.presiding_judge,
        "presiding_judge_id": hearing.presiding_judge_id,
        "secretary_id": hearing.secretary_id,
        "notice_language": hearing.notice_language,
        "status": hearing.status,
        "created_at": hearing.created_at,
        "updated_at": hearing.updated_at,
    }


def hearing_out(hearing: Hearing) -> HearingOut:
    """A hearing as listed."""
    return HearingOut.model_validate(_hearing_fields(hearing))


def hearing_detail_out(
    hearing: Hearing,
    parties: list[Party],
    now: datetime,
    deliveries: dict[str, Notification] | None = None,
    viewer: User | None = None,
) -> HearingDetailOut:
    """A hearing with its parties (and where each party's latest message stands) as ``viewer`` sees it."""
    deliveries = deliveries or {}
    staff = HearingStaff(hearing.presiding_judge_id, hearing.secretary_id)
    return HearingDetailOut.model_validate(
        {
            **_hearing_fields(hearing),
            "parties": [party_out(p, now, delivery=deliveries.get(p.id)) for p in parties],
            "may_operate": viewer is not None and staff.may_operate(viewer.id, viewer.role),
            "may_sign_acts": viewer is not None and staff.may_sign(viewer.id, viewer.role),
        }
    )
