"""The whole path of a hearing through the API: schedule, parties, links, resolve, revoke, expire, cancel."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from api_harness import Api, future_start

from hearing_server.api.invitations import qr_codes
from hearing_server.auth.invitations import hash_token, resolve_invitation
from hearing_server.auth.tokens import new_token
from hearing_server.config import CONFIG
from hearing_server.domain.errors import InvitationUnusable
from hearing_server.domain.party import StaffRole
from hearing_server.record.event_log import EVENTS
from hearing_server.store.models import Invitation


def token_of(url: str) -> str:
    return url.rsplit("/join/", 1)[1]


async def test_schedule_invite_resolve_revoke(api: Api) -> None:
    operator = await api.who(StaffRole.OPERATOR)
    hearing = await api.schedule(operator, case_number="2-777/2026", notice_language="kk")
    assert hearing["status"] == "scheduled"
    assert hearing["court"] == "Development Court"
    lawyer = await api.add_party(
        operator, hearing["id"], role="lawyer", display_name="Aigerim Lawyer", language="ru"
    )
    courtroom = await api.add_party(operator, hearing["id"], role="courtroom", display_name="Room 4")

    issued = await api.issue(operator, hearing["id"], lawyer["id"])
    assert issued["url"].startswith("https://localhost:8443/join/")
    token = token_of(issued["url"])
    assert len(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))) >= 16  # at least 128 random bits
    # The QR codes carry exactly this link.
    assert issued["qr"] == qr_codes(issued["url"]).model_dump()
    assert issued["qr"]["png"].startswith("data:image/png;base64,")
    assert base64.b64decode(issued["qr"]["png"].split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert issued["qr"]["svg"].startswith("data:image/svg+xml")

    # Only the hash is stored.
    async with api.db() as db:
        stored = await db.get(Invitation, issued["id"])
        assert stored is not None and stored.token_hash == hash_token(token)
        invitation, party, found = await resolve_invitation(db, token, datetime.now(UTC))
    assert (invitation.id, party.id, found.id) == (issued["id"], lawyer["id"], hearing["id"])
    assert party.role == "lawyer" and found.case_number == "2-777/2026"

    # The party list shows the link's status, never the link.
    listed = await api.call("GET", f"/api/v1/hearings/{hearing['id']}/parties", operator)
    by_id = {p["id"]: p for p in listed.json["items"]}
    assert by_id[lawyer["id"]]["invitation"]["status"] == "active"
    assert by_id[courtroom["id"]]["invitation"] is None
    assert token not in listed.body.decode()

    # Re-issuing withdraws the previous link.
    reissued = await api.issue(operator, hearing["id"], lawyer["id"])
    async with api.db() as db:
        with pytest.raises(InvitationUnusable) as old:
            await resolve_invitation(db, token, datetime.now(UTC))
        assert old.value.code == "invitation_revoked"
        await resolve_invitation(db, token_of(reissued["url"]), datetime.now(UTC))

    revoked = await api.call(
        "DELETE", f"/api/v1/hearings/{hearing['id']}/parties/{lawyer['id']}/invitation", operator
    )
    assert revoked.status == 204
    async with api.db() as db:
        with pytest.raises(InvitationUnusable) as after:
            await resolve_invitation(db, token_of(reissued["url"]), datetime.now(UTC))
    assert after.value.code == "invitation_revoked"
    again = await api.call(
        "DELETE", f"/api/v1/hearings/{hearing['id']}/parties/{lawyer['id']}/invitation", operator
    )
    assert (again.status, again.code) == (404, "invitation_not_found")
    status = await api.call(
        "GET", f"/api/v1/hearings/{hearing['id']}/parties/{lawyer['id']}/invitation", operator
    )
    assert status.json["status"] == "revoked"

    # Every change is a hearing event with the operator as actor, address and user agent, and no token.
    entries = await api.app[EVENTS].entries(hearing["id"])
    assert [e.event for e in entries] == [
        "hearing_scheduled",
        "party_added",
        "party_added",
        "party_invited",
        "party_invited",
        "invitation_revoked",
    ]
    assert {e.actor for e in entries} == {operator.username}
    assert all(e.details["ip"] == "127.0.0.1" and "user_agent" in e.details for e in entries)
    logged = json.dumps([e.details for e in entries])
    assert token not in logged and token_of(reissued["url"]) not in logged


async def test_link_expires_after_the_hearing_day_plus_grace(api: Api) -> None:
    operator = await api.who(StaffRole.OPERATOR)
    zone = ZoneInfo(api.app[CONFIG].timezone)
    start = future_start(days=3, hour=5)  # 10:00 or 11:00 in Almaty
    hearing = await api.schedule(operator, scheduled_start=start.isoformat(), duration_minutes=90)
    party = await api.add_party(operator, hearing["id"])
    issued = await api.issue(operator, hearing["id"], party["id"])
    expires = datetime.fromisoformat(issued["expires_at"])
    local_day = start.astimezone(zone).date()
    assert expires.astimezone(zone).date() == local_day + timedelta(days=1)
    assert expires.astimezone(zone).time().isoformat() == "06:00:00"  # midnight + 6 h grace (the default)

    token = token_of(issued["url"])
    async with api.db() as db:
        await resolve_invitation(db, token, expires - timedelta(seconds=1))
        with pytest.raises(InvitationUnusable) as expired:
            await resolve_invitation(db, token, expires)
    assert expired.value.code == "invitation_expired"

    # Moving the hearing a day later moves the link's expiry with it.
    moved = await api.call(
        "PATCH",
        f"/api/v1/hearings/{hearing['id']}",
        operator,
        json={"scheduled_start": (start + timedelta(days=1)).isoformat()},
    )
    assert moved.status == 200, moved.json
    async with api.db() as db:
        await resolve_invitation(db, token, expires + timedelta(hours=1))
        stored = await db.get(Invitation, issued["id"])
    assert stored is not None and stored.expires_at == expires + timedelta(days=1)


async def test_forged_and_malformed_tokens_are_invalid(api: Api) -> None:
    async with api.db() as db:
        for token in (new_token(), "short", "../../etc/passwd", "x" * 500, ""):
            with pytest.raises(InvitationUnusable) as forged:
                await resolve_invitation(db, token, datetime.now(UTC))
            assert forged.value.code == "invitation_invalid"


async def test_cancelling_withdraws_every_link(api: Api) -> None:
    operator = await api.who(StaffRole.OPERATOR)
    hearing = await api.schedule(operator)
    links = []
    for name in ("A", "B"):
        party = await api.add_party(operator, hearing["id"], display_name=name)
        links.append(token_of((await api.issue(operator, hearing["id"], party["id"]))["url"]))
    cancelled = await api.call(
        "POST", f"/api/v1/hearings/{hearing['id']}/cancel", operator, json={"reason": "ill"}
    )
    assert (cancelled.status, cancelled.json["status"]) == (200, "cancelled")
    async with api.db() as db:
        for token in links:
            with pytest.raises(InvitationUnusable) as withdrawn:
                await resolve_invitation(db, token, datetime.now(UTC))
            assert withdrawn.value.code == "invitation_revoked"
    entries = await api.app[EVENTS].entries(hearing["id"])
    assert entries[-1].event == "hearing_cancelled"
    assert entries[-1].details["reason"] == "ill" and entries[-1].details["links_withdrawn"] == 2
    # A cancelled hearing takes no more changes.
    late = await api.call(
        "POST",
        f"/api/v1/hearings/{hearing['id']}/parties",
        operator,
        json={"role": "witness", "display_name": "Late"},
    )
    assert (late.status, late.code) == (409, "hearing_closed")
    twice = await api.call("POST", f"/api/v1/hearings/{hearing['id']}/cancel", operator)
    assert (twice.status, twice.code) == (409, "invalid_transition")
