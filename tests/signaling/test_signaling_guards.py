"""Who may connect and what they may do: Origin, staff sessions, roles, order of messages, limits."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta

import aiohttp
import pytest
from signaling_harness import Bench, types_of

from hearing_server.store.models import Hearing

MakeBench = Callable[..., Awaitable[Bench]]


@pytest.mark.parametrize("origin", [None, "https://evil.example", "null"])
async def test_a_missing_or_foreign_origin_is_refused_before_the_upgrade(
    bench: Bench, origin: str | None
) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await bench.connect(origin=origin)
    assert refused.value.status == 403


async def test_the_configured_public_origin_is_accepted(make_bench: MakeBench) -> None:
    bench = await make_bench(public_url="https://court.example:8443")
    peer = await bench.connect(origin="https://court.example:8443")
    await peer.send("ping")
    await peer.expect("pong")


async def test_staff_without_a_session_cannot_take_the_courtroom(bench: Bench) -> None:
    peer = await bench.connect()
    await peer.send("join", hearing_id=bench.hearing_id, **{"as": "courtroom"})
    await peer.expect_error("not_authenticated")
    assert await peer.expect_closed() == 4004

    stranger = await bench.connect(cookie="not-a-real-session-token-at-all")
    await stranger.send("join", hearing_id=bench.hearing_id, **{"as": "courtroom"})
    await stranger.expect_error("not_authenticated")


async def test_staff_who_must_change_a_one_time_password_cannot_take_the_courtroom(bench: Bench) -> None:
    from sqlalchemy import update

    from hearing_server.store.db import SESSIONS
    from hearing_server.store.models import User

    cookie = await bench.make_staff(role="admin", username="admin")
    async with bench.app[SESSIONS]() as db:
        await db.execute(update(User).where(User.username == "admin").values(must_change_password=True))
        await db.commit()
    peer = await bench.connect(cookie=cookie)
    await peer.send("join", hearing_id=bench.hearing_id, **{"as": "courtroom"})
    error = await peer.expect_error("forbidden")
    assert "password" in error["message"]
    assert await bench.events() == []  # never seated: nothing recorded for this hearing


async def test_an_archivist_may_not_join_a_hearing(bench: Bench) -> None:
    cookie = await bench.make_staff(role="archivist", username="archivist1")
    peer = await bench.connect(cookie=cookie)
    await peer.send("join", hearing_id=bench.hearing_id, **{"as": "observer"})
    await peer.expect_error("forbidden")


async def test_a_party_cannot_use_operator_commands(bench: Bench) -> None:
    operator = await bench.operator(await bench.make_staff())
    other_id, other_token = await bench.make_party("Other")
    await bench.waiting_party(other_token)
    _party_id, token = await bench.make_party("Curious")
    party = await bench.waiting_party(token)
    commands = [
        {"type": "admit", "party_id": other_id},
        {"type": "deny", "party_id": other_id},
        {"type": "remove", "party_id": other_id},
        {"type": "mute", "party_id": other_id, "kind": "audio"},
        {"type": "open_waiting_room"},
        {"type": "start"},
        {"type": "recess"},
        {"type": "end"},
    ]
    for command in commands:
        await party.send_raw(json.dumps({**command, "ref": command["type"]}))
        error = await party.expect_error("forbidden")
        assert error["ref"] == command["type"]
    await party.send("ping")
    await party.expect("pong")
    await operator.expect("state", lambda m: [w["state"] for w in m["waiting"]] == ["waiting", "waiting"])
    assert "party_admitted" not in types_of(await bench.events())


async def test_an_observer_sees_but_cannot_operate(bench: Bench) -> None:
    operator = await bench.operator(await bench.make_staff())
    observer = await bench.operator(await bench.make_staff(role="judge", username="judge1"), seat="observer")
    await observer.send("start")
    await observer.expect_error("forbidden")
    await operator.send("open_waiting_room")
    state = await observer.expect("state", lambda m: m["hearing"]["status"] == "open")
    assert "waiting" not in state
    await observer.send("publish_offer", sdp="v=0")
    await observer.expect("publish_answer")
    observer_id = state["you"]["participant_id"]
    assert bench.router.muted[observer_id] == {"audio", "video"}  # an observer is never forwarded


async def test_messages_out_of_order(bench: Bench) -> None:
    peer = await bench.connect()
    await peer.send("publish_offer", sdp="v=0")
    await peer.expect_error("not_joined")
    await peer.send("admit", party_id="x")
    await peer.expect_error("not_joined")

    _party_id, token = await bench.make_party("Early")
    await peer.send("join", token=token)
    await peer.expect("hearing")
    await peer.send("join", token=token)
    await peer.expect_error("already_joined")
    await peer.send("publish_offer", sdp="v=0 offer")
    await peer.expect_error("invalid_state")  # SDP before admission
    await peer.send("subscribe_answer", sdp="v=0 answer")
    await peer.expect_error("invalid_state")
    await peer.send("mute_self", kind="audio", muted=True)
    await peer.expect_error("invalid_state")
    assert bench.routers == []  # no media was set up for someone not admitted


async def test_garbage_sdp_is_a_media_error(bench: Bench) -> None:
    operator = await bench.operator(await bench.make_staff())
    await operator.send("open_waiting_room")
    await operator.send("publish_offer", sdp="garbage\x00\x01", ref="p1")
    error = await operator.expect_error("media_error")
    assert error["ref"] == "p1"
    await operator.send("publish_offer", sdp="v=0 fine")
    await operator.expect("publish_answer")


async def test_the_waiting_room_opens_thirty_minutes_before_the_start(make_bench: MakeBench) -> None:
    bench = await make_bench()
    await bench.make_hearing(start_in=timedelta(hours=2))
    _party_id, token = await bench.make_party("Too Early")
    peer = await bench.connect()
    await peer.send("join", token=token)
    error = await peer.expect_error("hearing_not_open")
    assert error["opens_at"].endswith("Z")
    assert await peer.expect_closed() == 4004
    assert (await bench.row(Hearing, bench.hearing_id)).status == "scheduled"

    soon = await bench.make_hearing(start_in=timedelta(minutes=20))
    _party_id, token = await bench.make_party("On Time", hearing_id=soon)
    await bench.party(token)
    assert (await bench.row(Hearing, soon)).status == "open"
    opened = [e for e in await bench.events(soon) if e.event == "waiting_room_opened"]
    assert opened[0].actor == "system"


async def test_an_ended_hearing_is_closed_to_staff(make_bench: MakeBench) -> None:
    bench = await make_bench()
    await bench.make_hearing(status="ended")
    peer = await bench.connect(cookie=await bench.make_staff())
    await peer.send("join", hearing_id=bench.hearing_id, **{"as": "courtroom"})
    await peer.expect_error("hearing_closed")
    unknown = await bench.connect(cookie=await bench.make_staff(username="operator2"))
    await unknown.send("join", hearing_id="00000000-0000-4000-8000-000000000000", **{"as": "courtroom"})
    await unknown.expect_error("not_found")


async def test_hearing_full(make_bench: MakeBench) -> None:
    bench = await make_bench(max_participants=3)
    await bench.make_hearing()
    tokens = [(await bench.make_party(f"Party {i}"))[1] for i in range(3)]
    await bench.party(tokens[0])
    await bench.party(tokens[1])
    third = await bench.connect()
    await third.send("join", token=tokens[2])
    await third.expect_error("hearing_full")
    assert await third.expect_closed() == 4004
    operator = await bench.operator(await bench.make_staff())  # the court's own seat is always free
    state = await operator.expect("state")
    assert len(state["waiting"]) == 2


async def test_flooding_is_rate_limited_then_closed(make_bench: MakeBench) -> None:
    bench = await make_bench(ws_messages_per_s=5.0)
    peer = await bench.connect()
    for _ in range(15):
        await peer.send("ping")
    await peer.expect_error("rate_limited")
    for _ in range(150):
        await peer.send("ping")
    assert await peer.expect_closed() == 1008


async def test_oversized_messages(make_bench: MakeBench) -> None:
    bench = await make_bench(ws_max_message_bytes=1024)
    peer = await bench.connect()
    await peer.send("ping", ref="x" * 1500)
    await peer.expect_error("too_large")
    await peer.ws.send_bytes(b"\x00\x01")
    await peer.expect_error("bad_json")
    await peer.send("ping")
    await peer.expect("pong")  # still connected
    await peer.send("ping", ref="x" * 3000)
    assert await peer.expect_closed() == 1009


async def test_a_refused_join_leaves_no_room_behind(make_bench: MakeBench) -> None:
    bench = await make_bench()
    await bench.make_hearing(start_in=timedelta(hours=3))
    _party_id, token = await bench.make_party("Too Early")
    peer = await bench.connect()
    await peer.send("join", token=token)
    await peer.expect_error("hearing_not_open")
    assert bench.live().get(bench.hearing_id) is None


@pytest.mark.parametrize(
    "frame",
    [
        '{"type": "ping", "ref": "\\ud800"}',
        '{"type": "ping", "ref": "ok\\udfff"}',
        '{"type": "join", "token": "AAAAAAAAAAAAAAAAAAAA\\ud800"}',
        '{"type": "show_notice", "language": "\\udc00", "ref": "r1"}',
        '{"type": "ping", "\\ud800": 1}',
    ],
)
async def test_a_lone_surrogate_is_refused_and_the_connection_survives(
    bench: Bench, frame: str, caplog: pytest.LogCaptureFixture
) -> None:
    peer = await bench.connect()
    await peer.send_raw(frame)
    error = await peer.expect_error("invalid_message")
    assert "surrogate" in error["message"]
    assert "ref" not in error or error["ref"] == "r1"
    await peer.send("ping", ref="after")
    assert (await peer.expect("pong"))["ref"] == "after"
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text


async def test_a_socket_that_does_not_join_in_time_is_closed(make_bench: MakeBench) -> None:
    bench = await make_bench(ws_join_timeout_s=0.5)
    await bench.make_hearing()
    idle = await bench.connect()
    await idle.send("ping")  # talking is not joining
    await idle.expect("pong")
    error = await idle.expect_error("join_timeout")
    assert "0.5 s" in error["message"]
    assert await idle.expect_closed() == 1008
    # a party that joins in time stays
    _party_id, token = await bench.make_party("Witness")
    party = await bench.party(token)
    await asyncio.sleep(0.8)
    await party.send("ping", ref="still here")
    assert (await party.expect("pong"))["ref"] == "still here"


async def test_an_address_may_hold_only_a_few_unjoined_sockets(make_bench: MakeBench) -> None:
    bench = await make_bench(ws_unjoined_per_address=2, ws_per_address=3)
    await bench.make_hearing()
    first, second = await bench.connect(), await bench.connect()
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await bench.connect()
    assert refused.value.status == 429
    # once one has joined, the address may open another unjoined socket — up to its total cap
    _party_id, token = await bench.make_party("Witness")
    await first.send("join", token=token)
    await first.expect("hearing")
    third = await bench.connect()
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await bench.connect()
    assert refused.value.status == 429
    # a closed socket gives its place back
    await second.close()
    await third.close()
    await asyncio.sleep(0.1)
    fourth = await bench.connect()
    await fourth.send("ping")
    await fourth.expect("pong")
