"""What each participant sees: the ``hearing`` welcome message and the ``state`` snapshots."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from hearing_server.domain.hearing import HearingStatus
from signaling import protocol as p
from signaling.notice import Notice
from signaling.room.participant import Participant, iso_z
from signaling.room.store import HearingInfo, RoomSettings


def participant_view(part: Participant) -> dict[str, Any]:
    """One participant as the others see them."""
    return {
        "id": part.party_id,
        "name": part.name,
        "role": part.role.value,
        "state": part.state.value,
        "muted": sorted(part.muted),
        "muted_by_court": sorted(part.muted_by_court),
        "audio_only": part.audio_only,
        "connection": part.media_state,
    }


def snapshot(
    viewer: Participant,
    status: HearingStatus,
    recording: str,
    participants: Iterable[Participant],
    node: str = "",
    media_host: str | None = None,
) -> dict[str, Any]:
    """The ``state`` message as ``viewer`` may see it: the room only once admitted, the waiting room
    only for the operator, the media worker hosting the hearing only for staff."""
    everyone = list(participants)
    sees_room = viewer.in_room or viewer.staff
    hearing: dict[str, Any] = {"status": status.value, "recording": recording}
    if node and viewer.staff:
        hearing["node"] = node  # a cluster: the node hosting the hearing, shown in the console
    message: dict[str, Any] = {
        "type": "state",
        "hearing": hearing,
        "you": {
            "participant_id": viewer.party_id,
            "state": viewer.state.value,
            "muted": sorted(viewer.muted),
            "muted_by_court": sorted(viewer.muted_by_court),
            "audio_only": viewer.audio_only,
            "returning": viewer.returning,
        },
        "participants": [participant_view(q) for q in everyone if q.in_room] if sees_room else [],
    }
    if viewer.staff and media_host is not None:
        message["hearing"]["media_host"] = media_host
    if viewer.operator:
        message["waiting"] = [
            {
                "id": q.party_id,
                "name": q.name,
                "role": q.role.value,
                "state": q.state.value,
                "returning": q.returning,
            }
            for q in everyone
            if q.in_waiting_room
        ]
    return message


def hearing_message(
    hearing: HearingInfo,
    status: HearingStatus,
    part: Participant,
    notice: Notice | None,
    settings: RoomSettings,
) -> dict[str, Any]:
    """The ``hearing`` message a participant gets on joining: the hearing, their seat, the notice to
    confirm (if any), the media settings and the connection's limits."""
    try:
        zone = ZoneInfo(settings.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    return p.simple(
        "hearing",
        hearing={
            "id": hearing.id,
            "case_number": hearing.case_number,
            "title": hearing.title,
            "court": hearing.court,
            "courtroom": hearing.courtroom,
            "scheduled_start": iso_z(hearing.scheduled_start),
            "scheduled_start_local": hearing.scheduled_start.astimezone(zone).isoformat(),
            "timezone": settings.timezone,
            "duration_minutes": hearing.duration_minutes,
            "presiding_judge": hearing.presiding_judge,
            "status": status.value,
            "invited_by": {"court": hearing.court, "secretary": hearing.secretary_name or None},
        },
        you={
            "participant_id": part.party_id,
            "role": part.role.value,
            "name": part.name,
            "state": part.state.value,
            "operator": part.operator,
        },
        notice=None
        if notice is None
        else {
            "language": notice.language,
            "text": notice.text,
            "sha256": notice.sha256,
            "languages": list(p.NOTICE_LANGUAGES),
        },
        media={
            "video_codec": settings.video_codec,
            "ice_servers": settings.ice_servers_for(part.party_id)
            if settings.ice_servers_for
            else [{"urls": url} for url in settings.ice_servers],
        },
        limits={
            "max_message_bytes": settings.ws_max_message_bytes,
            "messages_per_s": settings.ws_messages_per_s,
        },
    )
