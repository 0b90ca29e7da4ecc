"""Per-hearing staff over /ws: only the assigned secretary and judge (or an admin) take the courtroom seat;
other staff may watch as silent observers; parties are told who invited them."""

from __future__ import annotations

from signaling_harness import Bench, types_of
from sqlalchemy import select, update

from hearing_server.domain.staff import READ_ONLY_NOTE
from hearing_server.store.db import SESSIONS
from hearing_server.store.models import Hearing, User


async def assign(bench: Bench, *, judge: str | None, secretary: str | None) -> None:
    """Assign the accounts named ``judge`` and ``secretary`` (usernames) to the bench's hearing."""
    async with bench.app[SESSIONS]() as db:
        ids = {name: user_id for name, user_id in await db.execute(select(User.username, User.id))}
        await db.execute(
            update(Hearing)
            .where(Hearing.id == bench.hearing_id)
            .values(presiding_judge_id=ids.get(judge or ""), secretary_id=ids.get(secretary or ""))
        )
        await db.commit()


async def test_another_operator_is_refused_the_courtroom_but_may_observe(bench: Bench) -> None:
    await bench.make_staff(username="secretary1")
    await bench.make_staff(role="judge", username="judge1")
    other = await bench.make_staff(username="operator2")
    other_judge = await bench.make_staff(role="judge", username="judge2")
    await assign(bench, judge="judge1", secretary="secretary1")

    for cookie in (other, other_judge):
        peer = await bench.connect(cookie=cookie)
        await peer.send("join", hearing_id=bench.hearing_id, **{"as": "courtroom"})
        error = await peer.expect_error("forbidden")
        assert error["message"] == READ_ONLY_NOTE and error["field"] == "seat"
    assert await bench.events() == []  # refused seats leave nothing in the log

    watcher = await bench.operator(other, seat="observer")
    hearing = next(m for m in watcher.seen if m["type"] == "hearing")
    assert hearing["you"]["role"] == "observer" and hearing["you"]["operator"] is False
    await watcher.send("open_waiting_room")
    await watcher.expect_error("forbidden")


async def test_the_assigned_secretary_judge_and_an_admin_take_the_courtroom(bench: Bench) -> None:
    secretary = await bench.make_staff(username="secretary1")
    judge = await bench.make_staff(role="judge", username="judge1")
    admin = await bench.make_staff(role="admin", username="admin1")
    await assign(bench, judge="judge1", secretary="secretary1")
    for cookie in (secretary, judge, admin):
        peer = await bench.operator(cookie)
        hearing = next(m for m in peer.seen if m["type"] == "hearing")
        assert hearing["you"]["role"] == "courtroom" and hearing["you"]["operator"] is True
        await peer.close()
    assert "party_added" in types_of(await bench.events())


async def test_without_assigned_staff_any_operator_takes_the_courtroom(bench: Bench) -> None:
    cookie = await bench.make_staff(username="anyone")
    peer = await bench.operator(cookie)
    await peer.send("open_waiting_room")
    await peer.expect("state", lambda m: m["hearing"]["status"] == "open")


async def test_the_party_is_told_the_court_and_the_secretary_who_invited_them(bench: Bench) -> None:
    await bench.make_staff(username="secretary1")  # display name "Secretary1"
    await assign(bench, judge=None, secretary="secretary1")
    _party_id, token = await bench.make_party("Aigerim Witness")
    party = await bench.party(token)
    hearing = next(m for m in party.seen if m["type"] == "hearing")
    assert hearing["hearing"]["invited_by"] == {
        "court": "Almaty District Court No. 2",
        "secretary": "Secretary1",
    }


async def test_without_a_secretary_the_party_is_told_only_the_court(bench: Bench) -> None:
    _party_id, token = await bench.make_party("Aigerim Witness")
    party = await bench.party(token)
    hearing = next(m for m in party.seen if m["type"] == "hearing")
    assert hearing["hearing"]["invited_by"] == {"court": "Almaty District Court No. 2", "secretary": None}
