"""Hostile signaling during a live hearing with real media: the courtroom keeps receiving the party.

A courtroom and a witness exchange real aiortc media (pre-encoded VP8 + Opus) while a third, admitted party
and an unjoined socket send garbage, oversized and out-of-order messages, SDP garbage and operator commands,
and the witness's own page misbehaves too. Frames from the witness must keep arriving at the courtroom
(no gap over a second), and after ``end`` the sealed hearing and its confirmation log must verify.

Run inside a loopback-only namespace (see docs/reliability.md).
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from live_media import (
    MediaBrowser,
    log_verifies,
    sealed_and_verified,
    until,
)
from media_harness import make_clip
from signaling_harness import Bench, WsPeer, types_of

pytestmark = [pytest.mark.media, pytest.mark.slow]

GARBAGE_SDP = [
    "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=garbage\r\n",
    "not an sdp at all",
    "v=0\r\n" + "a=candidate:" + "9" * 4000 + "\r\n",
    "\x00\x01\x02",
]
OPERATOR_COMMANDS = ["admit", "deny", "remove", "mute", "unmute", "request_unmute", "recess", "end", "start"]


def hostile_frames(target: str) -> list[str]:
    """Everything the third party throws at the server (text frames)."""
    frames = ["{", "[1, 2, 3]", "null", '"join"', json.dumps({"type": "no_such_type"})]
    frames += [json.dumps({"type": "join", "token": "A" * 43})]  # a second join
    frames += [json.dumps({"type": "publish_offer", "sdp": sdp}) for sdp in GARBAGE_SDP]
    frames += [json.dumps({"type": "subscribe_answer", "sdp": sdp}) for sdp in GARBAGE_SDP]
    frames += [
        json.dumps({"type": command, "party_id": target, "kind": "audio"})
        if command in {"mute", "unmute"}
        else json.dumps({"type": command, "party_id": target})
        if command in {"admit", "deny", "remove", "request_unmute"}
        else json.dumps({"type": command})
        for command in OPERATOR_COMMANDS
    ]
    frames += [json.dumps({"type": "mute_self", "kind": "audio", "muted": "yes"})]
    frames += [json.dumps({"type": "ping", "ref": "x" * 10_000})]
    frames += [json.dumps({"type": "ready", "extra": {"deep": [[[[[[[[[[1]]]]]]]]]]}})]
    frames += [json.dumps({"type": "confirm_notice", "language": "kk", "notice_sha256": "0" * 64})]
    return frames


async def _attack(bench: Bench, hostile: WsPeer, target: str) -> None:
    for frame in hostile_frames(target):
        await hostile.send_raw(frame)
        await asyncio.sleep(0.02)
    await hostile.ws.send_bytes(b"\x00" * 100)
    await hostile.send_raw("x" * 70_000)  # over ws_max_message_bytes: too_large, the socket stays
    # an unjoined socket trying operator commands, then a staff join without a session
    stranger = await bench.connect()
    for command in OPERATOR_COMMANDS:
        await stranger.send(command, party_id=target)
    await stranger.send("join", hearing_id=bench.hearing_id, **{"as": "courtroom"})
    assert await stranger.expect_closed() == 4004
    # a socket sending more than twice the limit is cut off (1009) — nobody else notices
    brute = await bench.connect()
    await brute.send_raw("y" * 200_000)
    await brute.expect_closed()
    # a flood of pings from the admitted third party is rate-limited, then cut off (1008)
    for index in range(400):
        if hostile.ws.closed:
            break
        await hostile.send("ping", ref=str(index))
        if index % 50 == 0:
            await asyncio.sleep(0)
    assert await hostile.expect_closed(within=10) == 1008  # policy: flooding


async def test_hostile_signaling_does_not_disturb_the_media_of_others(media_bench: Bench) -> None:
    bench = media_bench
    operator = await bench.operator(await bench.make_staff())
    await operator.send("open_waiting_room")
    witness_id, witness_token = await bench.make_party("Witness")
    hostile_id, hostile_token = await bench.make_party("Hostile")
    witness_peer = await bench.waiting_party(witness_token)
    hostile = await bench.waiting_party(hostile_token)
    for party_id in (witness_id, hostile_id):
        await operator.send("admit", party_id=party_id)
    await witness_peer.expect_state("in_hearing")
    await hostile.expect_state("in_hearing")
    courtroom_id = next(m for m in operator.seen if m["type"] == "hearing")["you"]["participant_id"]

    courtroom, witness = MediaBrowser(operator, make_clip(0)), MediaBrowser(witness_peer, make_clip(2))
    try:
        await courtroom.publish()
        await witness.publish()
        await operator.send("start")
        await until(
            lambda: courtroom.count(witness_id) > 15 and witness.count(courtroom_id) > 15, 20, "media"
        )

        attack_started = time.monotonic()
        witness_before = courtroom.count(witness_id)
        await _attack(bench, hostile, witness_id)
        # the witness's own page misbehaves too: garbage, stale and hostile messages on its live socket
        for frame in [
            "{",
            json.dumps({"type": "admit", "party_id": courtroom_id}),
            json.dumps({"type": "end"}),
        ]:
            await witness_peer.send_raw(frame)
        for sdp in GARBAGE_SDP:
            await witness_peer.send("subscribe_answer", sdp=sdp)
        await witness_peer.send("publish_offer", sdp=GARBAGE_SDP[0])
        await witness_peer.send("ready")
        await asyncio.sleep(3.0)

        # frames kept coming during the attack and after it, both ways
        assert courtroom.longest_gap(witness_id, attack_started) < 1.0
        assert witness.longest_gap(courtroom_id, attack_started) < 1.0
        assert courtroom.count(witness_id) - witness_before > 30
        codes = {m["code"] for m in witness.errors()}
        assert "forbidden" in codes and "internal_error" not in codes, codes
        hostile_codes = {m["code"] for m in hostile.seen if m["type"] == "error"}
        assert {"forbidden", "too_large", "rate_limited", "invalid_message"} <= hostile_codes, hostile_codes
        assert "internal_error" not in hostile_codes, hostile_codes
        print("witness got", sorted(codes), "hostile got", sorted(hostile_codes))

        await operator.send("end")
        await until(lambda: any(m["type"] == "hearing_ended" for m in witness.messages), 10, "hearing_ended")
    finally:
        await courtroom.close()
        await witness.close()

    report = await sealed_and_verified(bench, bench.hearing_id)
    assert report.hearing_id == bench.hearing_id
    await log_verifies(bench, bench.hearing_id)
    events = types_of(await bench.events())
    assert events.count("hearing_ended") == 1
    assert "party_removed" not in events and "recess_called" not in events, events
