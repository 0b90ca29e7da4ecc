"""Only a hearing's own staff change it over REST: once a presiding judge or secretary is assigned, every
endpoint that changes the hearing (schedule, staff, cancel, parties, links, seal, acts) refuses other
operators and judges with 403 and a code, writes nothing, and stays open to the staff and admins; reads
stay open to every reader."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from api_harness import Api, Who
from sqlalchemy import update

from hearing_server.api.hearing_guard import GUARDS
from hearing_server.api.registry import ROUTES
from hearing_server.domain.party import StaffRole
from hearing_server.domain.staff import NOT_STAFF_NOTE
from hearing_server.record.event_log import EVENTS
from hearing_server.store.models import Hearing

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "acts"))
from pdfs import make_pdf  # noqa: E402

HEARING = "/api/v1/hearings/{hearing_id}"


@dataclass
class Bench:
    """A hearing with an assigned judge and secretary, one party with a link, and outsiders of each role."""

    api: Api
    hearing: dict[str, Any]
    party_id: str
    secretary: Who
    judge: Who
    admin: Who
    other_operator: Who
    other_judge: Who

    def path(self, template: str) -> str:
        return template.format(hearing_id=self.hearing["id"], party_id=self.party_id)


async def make_bench(api: Api) -> Bench:
    secretary = await api.who(StaffRole.OPERATOR)
    judge = await api.who(StaffRole.JUDGE)
    hearing = await api.schedule(secretary, presiding_judge_id=judge.user_id, secretary_id=secretary.user_id)
    party = await api.add_party(secretary, hearing["id"])
    await api.issue(secretary, hearing["id"], party["id"])
    return Bench(
        api,
        hearing,
        party["id"],
        secretary,
        judge,
        await api.who(StaffRole.ADMIN),
        await api.who(StaffRole.OPERATOR),
        await api.who(StaffRole.JUDGE),
    )


async def ended(bench: Bench) -> None:
    async with bench.api.db() as db, db.begin():
        await db.execute(update(Hearing).where(Hearing.id == bench.hearing["id"]).values(status="ended"))


async def nothing(bench: Bench) -> None:
    return None


@dataclass(frozen=True)
class Change:
    """One endpoint that changes a hearing, called with a valid request."""

    method: str
    path: str
    json: Any = None
    pdf: bool = False
    prepare: Callable[[Bench], Awaitable[None]] = nothing

    async def call(self, bench: Bench, who: Who) -> Any:
        path = bench.path(self.path)
        if self.pdf:
            path += "?title=Шешім"
            return await bench.api.call(
                self.method, path, who, data=make_pdf(), headers={"Content-Type": "application/pdf"}
            )
        return await bench.api.call(self.method, path, who, json=self.json)


STAFF_ONLY = ("other_operator", "not_hearing_staff")
JUDGE_ONLY = ("other_judge", "not_presiding_judge")
# (the change, the outsider refused and their code, the staff member who then makes it, the answer)
CASES: list[tuple[Change, tuple[str, str], str, int]] = [
    (Change("PATCH", HEARING, {"courtroom": "Зал №9"}), STAFF_ONLY, "secretary", 200),
    (Change("PATCH", HEARING, {"scheduled_start": "2031-05-06T04:00:00+00:00"}), STAFF_ONLY, "admin", 200),
    (Change("PATCH", HEARING, {"secretary_id": None}), STAFF_ONLY, "secretary", 200),
    (Change("POST", HEARING + "/cancel", {"reason": "иск отозван"}), STAFF_ONLY, "secretary", 200),
    (Change("POST", HEARING + "/parties", {"role": "witness", "display_name": "Нұрланов Д."}), STAFF_ONLY,
     "secretary", 201),
    (Change("PATCH", HEARING + "/parties/{party_id}", {"display_name": "Нұрланов Дәулет"}), STAFF_ONLY,
     "secretary", 200),
    (Change("DELETE", HEARING + "/parties/{party_id}"), STAFF_ONLY, "admin", 204),
    (Change("POST", HEARING + "/parties/{party_id}/invitation", {"channel": "handover"}), STAFF_ONLY,
     "secretary", 201),
    (Change("DELETE", HEARING + "/parties/{party_id}/invitation"), STAFF_ONLY, "secretary", 204),
    (Change("POST", HEARING + "/seal", prepare=ended), STAFF_ONLY, "secretary", 200),
    (Change("POST", HEARING + "/acts", pdf=True), JUDGE_ONLY, "judge", 201),
]  # fmt: skip


@pytest.mark.parametrize(
    ("change", "outsider", "staff", "status"),
    CASES,
    ids=[f"{c.method} {c.path.removeprefix(HEARING) or '/'} {c.json or ''}" for c, *_ in CASES],
)
async def test_a_change_is_refused_to_outsiders_and_made_by_the_hearings_staff(
    api: Api, change: Change, outsider: tuple[str, str], staff: str, status: int
) -> None:
    bench = await make_bench(api)
    await change.prepare(bench)
    before = (await api.counts(), len(await api.app[EVENTS].entries(bench.hearing["id"])))
    who, code = outsider
    refused = await change.call(bench, getattr(bench, who))
    assert (refused.status, refused.code) == (403, code), refused.json
    assert refused.json["error"]["message"]
    if code == "not_hearing_staff":
        assert refused.json["error"]["message"] == NOT_STAFF_NOTE
    assert (await api.counts(), len(await api.app[EVENTS].entries(bench.hearing["id"]))) == before
    made = await change.call(bench, getattr(bench, staff))
    assert made.status == status, made.json


async def test_outsiders_still_read_the_hearing(api: Api) -> None:
    bench = await make_bench(api)
    for who in (bench.other_operator, bench.other_judge):
        for template in (
            HEARING,
            HEARING + "/parties",
            HEARING + "/parties/{party_id}",
            HEARING + "/parties/{party_id}/invitation",
            HEARING + "/acts",
            HEARING + "/events",
        ):
            read = await api.call("GET", bench.path(template), who)
            assert read.status == 200, (template, read.json)


async def test_an_outsider_cannot_take_a_hearing_over_by_assigning_themself(api: Api) -> None:
    bench = await make_bench(api)
    taken = await api.call(
        "PATCH",
        bench.path(HEARING),
        bench.other_operator,
        json={"secretary_id": bench.other_operator.user_id},
    )
    assert (taken.status, taken.code) == (403, "not_hearing_staff")
    detail = await api.call("GET", bench.path(HEARING), bench.secretary)
    assert detail.json["secretary_id"] == bench.secretary.user_id


async def test_unassigned_hearings_keep_the_role_rules(api: Api) -> None:
    operator = await api.who(StaffRole.OPERATOR)
    other = await api.who(StaffRole.OPERATOR)
    hearing = await api.schedule(operator)
    changed = await api.call(
        "PATCH", f"/api/v1/hearings/{hearing['id']}", other, json={"courtroom": "Зал №2"}
    )
    assert changed.status == 200, changed.json
    added = await api.call(
        "POST",
        f"/api/v1/hearings/{hearing['id']}/parties",
        other,
        json={"role": "witness", "display_name": "A"},
    )
    assert added.status == 201, added.json


def test_every_endpoint_that_changes_a_hearing_declares_a_staff_guard(api: Api) -> None:
    unguarded = [
        f"{ep.method} {ep.path}"
        for ep in api.app[ROUTES].endpoints
        if ep.method not in ("GET", "HEAD") and ep.path.startswith(HEARING) and ep.guard not in GUARDS
    ]
    assert not unguarded, unguarded
    guarded = [ep for ep in api.app[ROUTES].endpoints if ep.guard in GUARDS]
    assert {(ep.method, ep.path) for ep in guarded} == {(change.method, change.path) for change, *_ in CASES}
