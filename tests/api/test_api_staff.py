"""Per-hearing staff: assigning the presiding judge and secretary, the staff list, the log entry, and
what the other staff may do with the hearing."""

from __future__ import annotations

from api_harness import Api, Who
from sqlalchemy import update

from hearing_server.domain.party import StaffRole
from hearing_server.record.event_log import EVENTS
from hearing_server.store.models import User


async def named(api: Api, role: StaffRole, name: str) -> Who:
    """A logged-in account of ``role`` with the display name ``name``."""
    who = await api.who(role)
    async with api.db() as db, db.begin():
        await db.execute(update(User).where(User.id == who.user_id).values(display_name=name))
    return who


async def test_scheduling_assigns_the_judge_and_secretary_and_logs_it(api: Api) -> None:
    admin = await api.who(StaffRole.ADMIN)
    secretary = await named(api, StaffRole.OPERATOR, "Айгүл Серікова")
    judge = await named(api, StaffRole.JUDGE, "Судья Ахметова")
    other_operator = await api.who(StaffRole.OPERATOR)
    other_judge = await api.who(StaffRole.JUDGE)

    listed = await api.call("GET", "/api/v1/staff", secretary)
    assert listed.status == 200, listed.json
    by_id = {m["id"]: m for m in listed.json["items"]}
    assert by_id[judge.user_id] == {
        "id": judge.user_id,
        "username": judge.username,
        "display_name": "Судья Ахметова",
        "role": "judge",
    }
    assert admin.user_id not in by_id and {secretary.user_id, other_operator.user_id} <= set(by_id)

    body = api.hearing_body(presiding_judge_id=judge.user_id, secretary_id=secretary.user_id)
    del body["presiding_judge"]
    made = await api.call("POST", "/api/v1/hearings", secretary, json=body)
    assert made.status == 201, made.json
    hearing = made.json
    # The name shown is the judge account's display name.
    assert (hearing["presiding_judge"], hearing["presiding_judge_id"], hearing["secretary_id"]) == (
        "Судья Ахметова",
        judge.user_id,
        secretary.user_id,
    )
    entries = await api.app[EVENTS].entries(hearing["id"])
    assert [e.event for e in entries] == ["hearing_scheduled", "staff_assigned"]
    assert entries[1].details["presiding_judge_id"] == judge.user_id
    assert entries[1].details["presiding_judge"] == "Судья Ахметова"
    assert entries[1].details["secretary"] == "Айгүл Серікова"
    assert entries[1].actor == secretary.username

    path = f"/api/v1/hearings/{hearing['id']}"
    flags = {}
    for who in (secretary, judge, admin, other_operator, other_judge):
        detail = await api.call("GET", path, who)
        assert detail.status == 200, detail.json
        flags[who.user_id] = (detail.json["may_operate"], detail.json["may_sign_acts"])
    assert flags == {
        secretary.user_id: (True, False),
        judge.user_id: (True, True),
        admin.user_id: (True, True),
        other_operator.user_id: (False, False),
        other_judge.user_id: (False, False),
    }


async def test_changing_the_staff_is_logged_and_unassigning_restores_the_role_rules(api: Api) -> None:
    operator = await api.who(StaffRole.OPERATOR)
    judge = await named(api, StaffRole.JUDGE, "Judge One")
    second = await named(api, StaffRole.JUDGE, "Judge Two")
    admin = await api.who(StaffRole.ADMIN)
    hearing = await api.schedule(operator, presiding_judge_id=judge.user_id)
    path = f"/api/v1/hearings/{hearing['id']}"
    # The operator is not its staff (tests/api/test_api_hearing_staff_edits.py): an admin changes it.
    changed = await api.call("PATCH", path, admin, json={"presiding_judge_id": second.user_id})
    assert changed.status == 200, changed.json
    assert (changed.json["presiding_judge"], changed.json["presiding_judge_id"]) == (
        "Judge Two",
        second.user_id,
    )
    entries = await api.app[EVENTS].entries(hearing["id"])
    assert [e.event for e in entries] == [
        "hearing_scheduled",
        "staff_assigned",
        "hearing_updated",
        "staff_assigned",
    ]
    assert (
        entries[-1].details["presiding_judge"] == "Judge Two" and entries[-1].details["secretary_id"] is None
    )

    cleared = await api.call("PATCH", path, admin, json={"presiding_judge_id": None})
    assert cleared.status == 200 and cleared.json["presiding_judge_id"] is None
    assert cleared.json["presiding_judge"] == "Judge Two"  # the name stays for display
    detail = await api.call("GET", path, judge)
    assert (detail.json["may_operate"], detail.json["may_sign_acts"]) == (True, True)


async def test_a_hearing_without_assigned_staff_keeps_the_role_rules(api: Api) -> None:
    operator = await api.who(StaffRole.OPERATOR)
    other = await api.who(StaffRole.OPERATOR)
    judge = await api.who(StaffRole.JUDGE)
    hearing = await api.schedule(operator)  # the judge's name only, as before
    assert hearing["presiding_judge_id"] is None and hearing["secretary_id"] is None
    entries = await api.app[EVENTS].entries(hearing["id"])
    assert [e.event for e in entries] == ["hearing_scheduled"]
    for who, expected in ((other, (True, False)), (judge, (True, True))):
        detail = await api.call("GET", f"/api/v1/hearings/{hearing['id']}", who)
        assert (detail.json["may_operate"], detail.json["may_sign_acts"]) == expected


async def test_wrong_roles_and_unknown_accounts_are_refused_and_nothing_is_written(api: Api) -> None:
    operator = await api.who(StaffRole.OPERATOR)
    judge = await api.who(StaffRole.JUDGE)
    archivist = await api.who(StaffRole.ARCHIVIST)
    disabled = await api.who(StaffRole.JUDGE)
    async with api.db() as db, db.begin():
        await db.execute(update(User).where(User.id == disabled.user_id).values(disabled=True))
    before = await api.counts()
    for fields in (
        {"presiding_judge_id": operator.user_id},  # an operator cannot preside
        {"secretary_id": judge.user_id},  # a judge is not a secretary here
        {"secretary_id": archivist.user_id},
        {"presiding_judge_id": disabled.user_id},
        {"presiding_judge_id": "00000000-0000-4000-8000-000000000000"},
        {"presiding_judge_id": "not-an-id"},
    ):
        refused = await api.call("POST", "/api/v1/hearings", operator, json=api.hearing_body(**fields))
        assert (refused.status, refused.code) == (400, "invalid_staff"), (fields, refused.json)
        assert refused.json["error"]["message"]
    no_judge = api.hearing_body()
    del no_judge["presiding_judge"]
    refused = await api.call("POST", "/api/v1/hearings", operator, json=no_judge)
    assert (refused.status, refused.code) == (400, "invalid_input")
    assert await api.counts() == before

    hearing = await api.schedule(operator)
    entries_before = len(await api.app[EVENTS].entries(hearing["id"]))
    wrong = await api.call(
        "PATCH", f"/api/v1/hearings/{hearing['id']}", operator, json={"secretary_id": judge.user_id}
    )
    assert (wrong.status, wrong.code) == (400, "invalid_staff")
    assert len(await api.app[EVENTS].entries(hearing["id"])) == entries_before
    stored = await api.call("GET", f"/api/v1/hearings/{hearing['id']}", operator)
    assert stored.json["secretary_id"] is None


async def test_only_staff_read_the_staff_list(api: Api) -> None:
    archivist = await api.who(StaffRole.ARCHIVIST)
    assert (await api.call("GET", "/api/v1/staff", archivist)).status == 403
    assert (await api.call("GET", "/api/v1/staff")).status == 401
