"""Dropped connections: back within the grace without admission, after it through the waiting room."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from signaling_harness import Bench, WsPeer, types_of

from hearing_server.store.models import Party


async def _admitted(bench: Bench, operator: WsPeer, name: str) -> tuple[str, str, WsPeer]:
    party_id, token = await bench.make_party(name)
    party = await bench.waiting_party(token)
    await operator.send("admit", party_id=party_id)
    await party.expect_state("in_hearing")
    return party_id, token, party


def _participant_state(party_id: str, state: str) -> Callable[[dict], bool]:
    return lambda m: any(p["id"] == party_id and p["state"] == state for p in m["participants"])


async def test_reconnect_within_grace_needs_no_admission(make_bench: Callable[..., Awaitable[Bench]]) -> None:
    bench = await make_bench(reconnect_grace_s=10.0)
    await bench.make_hearing()
    operator = await bench.operator(await bench.make_staff())
    party_id, token, party = await _admitted(bench, operator, "Commuter")

    await party.close()  # the phone's network drops
    await operator.expect("state", _participant_state(party_id, "disconnected"))
    assert (await bench.row(Party, party_id)).state == "disconnected"

    back = await bench.connect(user_agent="PartyPhone/2.0 (mobile data)")
    await back.send("join", token=token)
    hearing = await back.expect("hearing")
    assert hearing["notice"] is None and hearing["you"]["state"] == "in_hearing"
    await back.expect_state("in_hearing")
    await operator.expect("state", _participant_state(party_id, "in_hearing"))
    await back.send("publish_offer", sdp="v=0 again")
    await back.expect("publish_answer")

    kinds = types_of([e for e in await bench.events() if e.party_id == party_id])
    assert kinds[-2:] == ["party_disconnected", "party_reconnected"]
    assert kinds.count("party_admitted") == 1
    reconnected = (await bench.events())[-1]
    assert reconnected.details["user_agent"] == "PartyPhone/2.0 (mobile data)"


async def test_after_the_grace_the_party_must_be_admitted_again(
    make_bench: Callable[..., Awaitable[Bench]],
) -> None:
    bench = await make_bench(reconnect_grace_s=0.3)
    await bench.make_hearing()
    operator = await bench.operator(await bench.make_staff())
    party_id, token, party = await _admitted(bench, operator, "Tunnel")

    await party.close()
    await operator.expect("state", _participant_state(party_id, "disconnected"))
    await operator.expect("state", lambda m: all(p["id"] != party_id for p in m["participants"]))
    assert (await bench.row(Party, party_id)).state == "left"
    left = [e for e in await bench.events() if e.event == "party_left"]
    assert left[-1].details["reason"] == "reconnect_grace_expired" and left[-1].actor == "system"

    back = await bench.connect()
    await back.send("join", token=token)
    hearing = await back.expect("hearing")
    assert hearing["you"]["state"] == "link_opened" and hearing["notice"] is not None
    await back.send("publish_offer", sdp="v=0")
    await back.expect_error("invalid_state")  # not admitted any more


async def test_a_second_connection_with_the_same_token_replaces_the_first(bench: Bench) -> None:
    operator = await bench.operator(await bench.make_staff())
    party_id, token, first = await _admitted(bench, operator, "Two Tabs")

    second = await bench.connect(user_agent="SecondTab/1.0")
    await second.send("join", token=token)
    hearing = await second.expect("hearing")
    assert hearing["you"]["state"] == "in_hearing"
    await first.expect("replaced")
    assert await first.expect_closed() == 4002

    await second.send("ping", ref="after")
    assert (await second.expect("pong"))["ref"] == "after"
    state = await operator.expect("state", _participant_state(party_id, "in_hearing"))
    assert len(state["participants"]) == 2
    events = [e for e in await bench.events() if e.party_id == party_id]
    assert types_of(events)[-1] == "party_connection_replaced"
    assert events[-1].details["user_agent"] == "SecondTab/1.0"
    assert events[-1].details["previous_user_agent"] == "PartyPhone/1.0"
    # the old socket's close did not make the party look disconnected
    assert "party_disconnected" not in types_of(events)
    assert (await bench.row(Party, party_id)).state == "in_hearing"


async def test_leave_is_final(bench: Bench) -> None:
    operator = await bench.operator(await bench.make_staff())
    party_id, _token, party = await _admitted(bench, operator, "Leaver")
    await party.send("leave")
    assert await party.expect_closed() == 1000
    await operator.expect("state", lambda m: all(p["id"] != party_id for p in m["participants"]))
    left = [e for e in await bench.events() if e.event == "party_left"]
    assert left[-1].details["reason"] == "left"
