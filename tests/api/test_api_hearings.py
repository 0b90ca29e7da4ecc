"""Hearings and parties through the API: listing with filters and paging, changing, deleting."""

from __future__ import annotations

from datetime import timedelta

from api_harness import Api, future_start

from hearing_server.domain.party import StaffRole
from hearing_server.record.event_log import EVENTS
from hearing_server.store.db import SESSIONS
from hearing_server.store.models import Hearing


async def test_list_filters_and_stable_paging(api: Api) -> None:
    operator = await api.who(StaffRole.OPERATOR)
    judge = await api.who(StaffRole.JUDGE)
    day1, day3 = future_start(days=1, hour=6), future_start(days=3, hour=6)  # 11:00 in Almaty
    a = await api.schedule(operator, case_number="2-10/2026", scheduled_start=day1.isoformat())
    b = await api.schedule(operator, case_number="2-11/2026", scheduled_start=day1.isoformat())
    c = await api.schedule(operator, case_number="3-10/2026", scheduled_start=day3.isoformat())
    await api.call("POST", f"/api/v1/hearings/{c['id']}/cancel", operator)

    async def ids(query: str) -> list[str]:
        result = await api.call("GET", "/api/v1/hearings" + query, judge)
        assert result.status == 200, result.json
        return [h["id"] for h in result.json["items"]]

    same_start = sorted([a["id"], b["id"]])  # equal start times are ordered by id
    assert await ids("") == [*same_start, c["id"]]
    assert await ids(f"?date_from={day3.date()}") == [c["id"]]
    assert await ids(f"?date_to={day1.date()}") == same_start
    assert await ids(f"?date_from={day1.date()}&date_to={day1.date()}") == same_start
    assert await ids("?status=cancelled") == [c["id"]]
    assert await ids("?status=scheduled") == same_start
    assert await ids("?case_number=2-1") == same_start
    assert await ids("?case_number=3-") == [c["id"]]
    assert await ids("?case_number=%25") == []  # no wildcard semantics
    assert await ids("?court=Development%20Court") == [*same_start, c["id"]]
    page = await api.call("GET", "/api/v1/hearings?limit=1&offset=1", judge)
    assert page.json["total"] == 3 and [h["id"] for h in page.json["items"]] == [same_start[1]]
    assert (page.json["limit"], page.json["offset"]) == (1, 1)


async def test_update_hearing_and_its_rules(api: Api) -> None:
    operator = await api.who(StaffRole.OPERATOR)
    start = future_start(days=2)
    hearing = await api.schedule(operator, scheduled_start=start.isoformat())
    path = f"/api/v1/hearings/{hearing['id']}"
    changed = await api.call(
        "PATCH",
        path,
        operator,
        json={"title": "  Renamed  ", "scheduled_end": (start + timedelta(minutes=45)).isoformat()},
    )
    assert changed.status == 200, changed.json
    assert changed.json["title"] == "Renamed" and changed.json["duration_minutes"] == 45
    # A start given with an offset is stored and returned in UTC.
    moved = await api.call("PATCH", path, operator, json={"scheduled_start": "2099-06-01T15:00:00+05:00"})
    assert moved.json["scheduled_start"] == "2099-06-01T10:00:00Z"
    detail = await api.call("GET", path, operator)
    assert detail.json["parties"] == [] and detail.json["scheduled_end"] == "2099-06-01T10:45:00Z"
    entries = await api.app[EVENTS].entries(hearing["id"])
    assert [e.event for e in entries] == ["hearing_scheduled", "hearing_updated", "hearing_updated"]
    assert entries[1].details["changes"] == {"title": "Renamed", "duration_minutes": 45}

    # Once the hearing has ended it cannot change any more.
    async with api.app[SESSIONS]() as db, db.begin():
        stored = await db.get(Hearing, hearing["id"])
        assert stored is not None
        stored.status = "ended"
    late = await api.call("PATCH", path, operator, json={"title": "Too late"})
    assert (late.status, late.code) == (409, "not_editable")


async def test_parties_change_and_delete_only_while_scheduled(api: Api) -> None:
    operator = await api.who(StaffRole.OPERATOR)
    hearing = await api.schedule(operator)
    party = await api.add_party(
        operator, hearing["id"], role="witness", display_name="W", contact="+7 700 000 00 00"
    )
    assert party["language"] is None and party["state"] == "invited"
    path = f"/api/v1/hearings/{hearing['id']}/parties/{party['id']}"
    changed = await api.call("PATCH", path, operator, json={"role": "expert", "language": "kk"})
    assert (changed.status, changed.json["role"], changed.json["language"]) == (200, "expert", "kk")
    reset = await api.call("PATCH", path, operator, json={"language": None})
    assert reset.json["language"] is None
    await api.issue(operator, hearing["id"], party["id"])

    async with api.app[SESSIONS]() as db, db.begin():
        stored = await db.get(Hearing, hearing["id"])
        assert stored is not None
        stored.status = "open"
    refused = await api.call("DELETE", path, operator)
    assert (refused.status, refused.code) == (409, "not_deletable")
    async with api.app[SESSIONS]() as db, db.begin():
        stored = await db.get(Hearing, hearing["id"])
        assert stored is not None
        stored.status = "scheduled"
    before = await api.counts()
    deleted = await api.call("DELETE", path, operator)
    assert deleted.status == 204
    after = await api.counts()
    assert (after["parties"], after["invitations"]) == (before["parties"] - 1, before["invitations"] - 1)
    assert (await api.call("GET", path, operator)).status == 404
    entries = await api.app[EVENTS].entries(hearing["id"])
    assert entries[-1].event == "party_removed" and entries[-1].details["before_hearing"] is True
