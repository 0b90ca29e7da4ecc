"""After an interruption, parties who were admitted come back to the waiting room without the notice and
are re-admitted by the operator (one click each, or all at once) or automatically (configuration)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from signaling_harness import Bench, WsPeer, types_of

from hearing_server.config import Config
from hearing_server.domain.events import LoggedEvent
from hearing_server.record.event_log import EVENTS, EventRecorder
from hearing_server.services.room_store import SqlRoomStore
from hearing_server.store.db import create_engine, sessionmaker
from signaling.room.readmission import find_return, returning_party

MakeBench = Callable[..., Awaitable[Bench]]


def _waiting(party_id: str, **checks: Any) -> Callable[[dict[str, Any]], bool]:
    def match(message: dict[str, Any]) -> bool:
        return any(
            w["id"] == party_id and all(w.get(k) == v for k, v in checks.items())
            for w in message.get("waiting", [])
        )

    return match


async def _interrupted_hearing(make_bench: MakeBench, **overrides: Any) -> tuple[Bench, dict[str, str]]:
    """A hearing in session with an admitted party (``admitted``), a party confirmed but still waiting
    (``waiting``) and one who left before the interruption (``left``); then the server stops."""
    bench = await make_bench()
    await bench.make_hearing()
    operator = await bench.operator(await bench.make_staff())
    await operator.send("open_waiting_room")
    tokens: dict[str, str] = {}
    ids: dict[str, str] = {}
    peers: dict[str, WsPeer] = {}
    for who in ("admitted", "waiting", "left"):
        ids[who], tokens[who] = await bench.make_party(who.title())
        peers[who] = await bench.waiting_party(tokens[who])
    for who in ("admitted", "left"):
        await operator.send("admit", party_id=ids[who])
        await peers[who].expect_state("in_hearing")
    await operator.send("start")
    await peers["admitted"].expect("state", lambda m: m["hearing"]["status"] == "in_session")
    await peers["left"].send("leave")
    assert await peers["left"].expect_closed() == 1000
    await bench.client.server.close()  # the server stops: the hearing becomes interrupted
    assert await peers["admitted"].expect_closed() == 1001
    return bench, {**{f"{k}_id": v for k, v in ids.items()}, **tokens}


async def test_an_admitted_party_returns_to_the_waiting_room_without_the_notice_and_is_readmitted(
    make_bench: MakeBench,
) -> None:
    first, who = await _interrupted_hearing(make_bench)
    bench = await make_bench()  # the restarted server, same database and data directory
    bench.hearing_id = first.hearing_id
    cookie = await bench.make_staff(username="operator2")
    operator = await bench.operator(cookie)
    assert next(m for m in operator.seen if m["type"] == "hearing")["hearing"]["status"] == "interrupted"

    # The admitted party's phone reconnects: no notice, straight to the waiting room, flagged returning.
    back = await bench.connect(user_agent="PartyPhone/1.0 (after the crash)")
    await back.send("join", token=who["admitted"])
    hello = await back.expect("hearing")
    assert hello["notice"] is None and hello["you"]["state"] == "waiting"
    state = await back.expect_state("waiting")
    assert state["you"]["returning"] is True
    await operator.expect("state", _waiting(who["admitted_id"], state="waiting", returning=True))
    await back.send("publish_offer", sdp="v=0")
    await back.expect_error("invalid_state")  # not in the hearing before the operator re-admits

    # The party who only waited, and the one who had left, confirm the notice again as usual.
    for key in ("waiting", "left"):
        again = await bench.party(who[key])
        hello = next(m for m in again.seen if m["type"] == "hearing")
        assert hello["notice"] is not None and hello["you"]["state"] == "link_opened", key
    await operator.expect("state", _waiting(who["waiting_id"], state="link_opened", returning=False))

    await operator.send("admit_returning")
    await back.expect_state("in_hearing")
    state = await operator.expect(
        "state", lambda m: any(p["id"] == who["admitted_id"] for p in m["participants"])
    )
    assert [w["id"] for w in state["waiting"] if w["returning"]] == []
    assert {w["id"] for w in state["waiting"]} == {
        who["waiting_id"],
        who["left_id"],
    }  # not admitted with them
    await back.send("publish_offer", sdp="v=0 after the crash")
    await back.expect("publish_answer")

    events = await bench.events()
    mine = [e for e in events if e.party_id == who["admitted_id"]]
    assert types_of(mine)[-4:] == ["link_opened", "party_waiting", "party_admitted", "party_joined"]
    waiting = mine[-3]
    confirmed = next(e for e in mine if e.event == "notice_confirmed")
    interrupted = [e for e in events if e.event == "hearing_interrupted"][-1]
    assert waiting.details["returning"] is True
    assert waiting.details["notice_confirmed_seq"] == confirmed.seq
    assert waiting.details["notice_sha256"] == confirmed.details["notice_sha256"]
    assert waiting.details["interrupted_seq"] == interrupted.seq < waiting.seq
    assert waiting.details["user_agent"] == "PartyPhone/1.0 (after the crash)"
    assert mine[-2].actor.startswith("user:")  # the operator re-admitted
    assert types_of(mine).count("notice_confirmed") == 1
    chain = (await bench.app[EVENTS].confirmation_log(bench.hearing_id)).verify()
    assert chain.valid, chain.problem


async def test_one_click_readmits_a_single_returning_party(make_bench: MakeBench) -> None:
    first, who = await _interrupted_hearing(make_bench)
    bench = await make_bench()
    bench.hearing_id = first.hearing_id
    operator = await bench.operator(await bench.make_staff(username="operator2"))
    back = await bench.connect()
    await back.send("join", token=who["admitted"])
    await back.expect_state("waiting")
    await operator.expect("state", _waiting(who["admitted_id"], returning=True))
    await operator.send("admit", party_id=who["admitted_id"])
    await back.expect_state("in_hearing")


async def test_automatic_readmission_puts_the_party_back_in_the_hearing(
    make_bench: MakeBench, config: Config
) -> None:
    first, who = await _interrupted_hearing(make_bench)
    bench = await make_bench(readmit_after_interruption="automatic")
    bench.hearing_id = first.hearing_id
    operator = await bench.operator(await bench.make_staff(username="operator2"))
    back = await bench.connect()
    await back.send("join", token=who["admitted"])
    hello = await back.expect("hearing")
    assert hello["notice"] is None and hello["you"]["state"] == "in_hearing"
    await operator.expect("state", lambda m: any(p["id"] == who["admitted_id"] for p in m["participants"]))
    await back.send("publish_offer", sdp="v=0")
    await back.expect("publish_answer")
    mine = [e for e in await bench.events() if e.party_id == who["admitted_id"]]
    assert types_of(mine)[-4:] == ["link_opened", "party_waiting", "party_admitted", "party_joined"]
    assert mine[-2].actor == "system" and mine[-2].details["reason"] == "readmitted_after_interruption"

    # Not returning: the party who only waited confirms the notice again even with automatic re-admission.
    again = await bench.party(who["waiting"])
    assert next(m for m in again.seen if m["type"] == "hearing")["you"]["state"] == "link_opened"


async def test_admit_returning_is_for_the_operator_only(make_bench: MakeBench) -> None:
    first, who = await _interrupted_hearing(make_bench)
    bench = await make_bench()
    bench.hearing_id = first.hearing_id
    back = await bench.connect()
    await back.send("join", token=who["admitted"])
    await back.expect_state("waiting")
    await back.send("admit_returning")
    await back.expect_error("forbidden")


# --- the rule over the log alone ------------------------------------------------------------------


def _log(*steps: tuple[str, str | None]) -> list[LoggedEvent]:
    numbered = enumerate(steps, 1)
    return [LoggedEvent(seq, event, None, party, {"language": "kk"}) for seq, (event, party) in numbered]


CONFIRMED_AND_ADMITTED = (("notice_confirmed", "p"), ("party_waiting", "p"), ("party_admitted", "p"))


def test_the_rule_needs_confirmation_admission_and_then_an_interruption() -> None:
    back = find_return(_log(*CONFIRMED_AND_ADMITTED, ("hearing_interrupted", None)), "p")
    assert back is not None and (back.notice_confirmed_seq, back.admitted_seq, back.interrupted_seq) == (
        1,
        3,
        4,
    )
    assert back.notice_language == "kk"
    assert find_return(_log(*CONFIRMED_AND_ADMITTED), "p") is None  # no interruption
    assert find_return(_log(("notice_confirmed", "p"), ("hearing_interrupted", None)), "p") is None
    assert find_return(_log(("party_admitted", "p"), ("hearing_interrupted", None)), "p") is None
    assert find_return(_log(*CONFIRMED_AND_ADMITTED, ("hearing_interrupted", None)), "q") is None


def test_the_rule_forgets_parties_who_left_or_were_readmitted() -> None:
    for gone in ("party_left", "party_removed", "party_denied"):
        assert (
            find_return(_log(*CONFIRMED_AND_ADMITTED, (gone, "p"), ("hearing_interrupted", None)), "p")
            is None
        )
        assert (
            find_return(_log(*CONFIRMED_AND_ADMITTED, ("hearing_interrupted", None), (gone, "p")), "p")
            is None
        )
    readmitted = _log(*CONFIRMED_AND_ADMITTED, ("hearing_interrupted", None), ("party_admitted", "p"))
    assert find_return(readmitted, "p") is None
    # A disconnect (also the server's own at shutdown) keeps the seat; a second interruption keeps the return.
    kept = _log(*CONFIRMED_AND_ADMITTED, ("party_disconnected", "p"), ("hearing_interrupted", None))
    assert find_return(kept, "p") is not None
    twice = _log(*CONFIRMED_AND_ADMITTED, ("hearing_interrupted", None), ("hearing_interrupted", None))
    back = find_return(twice, "p")
    assert back is not None and back.interrupted_seq == 4


async def test_without_the_database_a_party_is_not_taken_for_returning(tmp_path: Path) -> None:
    """The safe side: the notice is confirmed again rather than skipped on a guess."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'missing' / 'hearing.db'}")
    try:
        sessions = sessionmaker(engine)
        store = SqlRoomStore(sessions, EventRecorder(sessions, tmp_path / "recordings"))
        assert await returning_party(store, "h", "p") is None
    finally:
        await engine.dispose()
