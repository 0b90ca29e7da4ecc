"""Invitation tokens under attack: forged, truncated, overlong, expired, revoked, foreign, of a removed party.

Each gets a clear error code over the WebSocket join; guessing is rate-limited per address; the join page
itself tells a valid link from a forged one by nothing.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from reliability_harness import MakeBench
from signaling_harness import Bench, WsPeer

from hearing_server.auth.tokens import new_token
from hearing_server.config import Config
from hearing_server.store.db import SESSIONS
from hearing_server.store.models import Invitation
from signaling.protocol import CloseCode


async def _join(bench: Bench, token: str, address: str | None = None) -> tuple[WsPeer, dict[str, Any]]:
    """Send ``join`` with ``token``; the first reply (``hearing`` or ``error``)."""
    peer = await bench.connect()
    if address is not None:
        await peer.ws.close()
        ws = await bench.client.ws_connect(
            "/ws", headers={"Origin": bench.origin, "X-Forwarded-For": address, "User-Agent": "Guesser/1.0"}
        )
        peer = WsPeer(ws)
    await peer.send("join", token=token)
    reply = await peer._next(5.0)
    return peer, reply


async def _refused(bench: Bench, token: str, code: str) -> None:
    peer, reply = await _join(bench, token)
    assert reply["type"] == "error" and reply["code"] == code, (token[:40], reply)
    assert await peer.expect_closed() == CloseCode.JOIN_FAILED


async def _set_invitation(bench: Bench, party_id: str, **values: object) -> None:
    async with bench.app[SESSIONS]() as db:
        for invitation in await bench.invitations(party_id):
            row = await db.get(Invitation, invitation.id)
            assert row is not None
            for name, value in values.items():
                setattr(row, name, value)
        await db.commit()


async def test_unusable_tokens_get_their_code_and_the_socket_closes(make_bench: MakeBench) -> None:
    bench = await make_bench()
    await bench.make_hearing()
    party_id, token = await bench.make_party("Witness")

    for forged in (new_token(), token[:-6], token[:16], token[1:] + "A", token.swapcase()):
        await _refused(bench, forged, "invitation_invalid")

    # overlong and malformed: refused by the message schema before any lookup; the socket stays open
    for malformed in (token + "A" * 200, "short", token + "/../x", "é" * 43):
        peer, reply = await _join(bench, malformed)
        assert reply["type"] == "error" and reply["code"] in {"invalid_message", "invitation_invalid"}, reply
        await peer.close()

    await _set_invitation(bench, party_id, expires_at=datetime.now(UTC) - timedelta(seconds=1))
    await _refused(bench, token, "invitation_expired")
    await _set_invitation(bench, party_id, expires_at=datetime.now(UTC) + timedelta(days=1))
    await _set_invitation(bench, party_id, revoked_at=datetime.now(UTC))
    await _refused(bench, token, "invitation_revoked")
    # nobody got a seat from any of this
    assert bench.live().get(bench.hearing_id) is None or not bench.live().get(bench.hearing_id).participant(
        party_id
    )


async def test_a_removed_party_cannot_come_back_with_its_link(make_bench: MakeBench) -> None:
    bench = await make_bench()
    await bench.make_hearing()
    operator = await bench.operator(await bench.make_staff())
    await operator.send("open_waiting_room")
    party_id, token = await bench.make_party("Disruptive")
    party = await bench.waiting_party(token)
    await operator.send("admit", party_id=party_id)
    await party.expect_state("in_hearing")
    await operator.send("remove", party_id=party_id)
    await party.expect("removed")
    assert await party.expect_closed() == CloseCode.REMOVED
    await _refused(bench, token, "invitation_revoked")


async def test_a_token_of_another_hearing_opens_only_that_hearing(make_bench: MakeBench) -> None:
    bench = await make_bench()
    first = await bench.make_hearing()
    operator = await bench.operator(await bench.make_staff())
    second = await bench.make_hearing()
    stranger_id, stranger_token = await bench.make_party("Stranger", hearing_id=second)
    peer, reply = await _join(bench, stranger_token)
    assert reply["type"] == "hearing" and reply["hearing"]["id"] == second, reply
    await peer.close()
    snapshot = await operator.expect("state")
    seen = {p["id"] for p in snapshot["participants"] + snapshot.get("waiting", [])}
    assert stranger_id not in seen
    room = bench.live().get(first)
    assert room is not None and room.participant(stranger_id) is None


async def test_guessing_tokens_is_rate_limited_per_address(make_bench: MakeBench) -> None:
    # behind a trusted reverse proxy the address comes from X-Forwarded-For: two addresses
    bench = await make_bench(trusted_proxies=["127.0.0.1"])
    await bench.make_hearing()
    _party_id, token = await bench.make_party("Witness")
    guesser, bystander = "203.0.113.7", "198.51.100.2"

    for _ in range(Config.model_fields["token_failures_per_address"].default):
        peer, reply = await _join(bench, new_token(), guesser)
        assert reply["code"] == "invitation_invalid", reply
        await peer.close()
    peer, reply = await _join(bench, new_token(), guesser)
    assert reply["type"] == "error" and reply["code"] == "rate_limited", reply
    assert isinstance(reply["retry_after"], int) and 0 < reply["retry_after"] <= 60, reply
    assert await peer.expect_closed() == CloseCode.JOIN_FAILED
    # a valid link from the same address (a shared NAT) still gets in
    peer, reply = await _join(bench, token, guesser)
    assert reply["type"] == "hearing", reply
    await peer.close()
    # another address is not affected
    peer, reply = await _join(bench, new_token(), bystander)
    assert reply["code"] == "invitation_invalid", reply
    await peer.close()


async def _metric(bench: Bench, name: str) -> dict[str, float]:
    async with bench.client.get("/metrics") as response:
        text = await response.text()
    return {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in text.splitlines()
        if line.startswith(name) and not line.startswith("#")
    }


async def test_a_guesser_does_not_lock_out_a_valid_link_from_the_same_address(
    make_bench: MakeBench, caplog: pytest.LogCaptureFixture
) -> None:
    """#18.2: 300 random tokens from one address, then a valid link from that address joins at once."""
    bench = await make_bench(trusted_proxies=["127.0.0.1"])
    await bench.make_hearing()
    _party_id, token = await bench.make_party("Witness")
    guesser = "203.0.113.7"
    codes: dict[str, int] = {}
    for _ in range(300):
        peer, reply = await _join(bench, new_token(), guesser)
        codes[reply["code"]] = codes.get(reply["code"], 0) + 1
        await peer.close()
    assert codes == {"invitation_invalid": 20, "rate_limited": 280}, codes
    started = time.monotonic()
    peer, reply = await _join(bench, token, guesser)
    assert reply["type"] == "hearing", reply
    assert time.monotonic() - started < 1.0
    await peer.close()
    refused = await _metric(bench, "hearing_invitation_guesses_refused_total")
    assert refused == {'hearing_invitation_guesses_refused_total{scope="address"}': 280.0}, refused
    alerts = [r for r in caplog.records if "invitation link guessing" in r.getMessage()]
    assert len(alerts) == 1 and alerts[0].levelno == logging.WARNING and guesser in alerts[0].getMessage()


async def test_guessing_spread_over_addresses_meets_the_server_budget(make_bench: MakeBench) -> None:
    bench = await make_bench(trusted_proxies=["127.0.0.1"], token_failures_budget=30)
    await bench.make_hearing()
    _party_id, token = await bench.make_party("Witness")
    replies = []
    for index in range(40):  # two guesses from each of 20 addresses: no address is over its own limit
        peer, reply = await _join(bench, new_token(), f"198.51.100.{index // 2}")
        replies.append(reply["code"])
        await peer.close()
    assert replies == ["invitation_invalid"] * 30 + ["rate_limited"] * 10, replies
    peer, reply = await _join(bench, token, "198.51.100.200")
    assert reply["type"] == "hearing", reply
    await peer.close()
    refused = await _metric(bench, "hearing_invitation_guesses_refused_total")
    assert refused == {'hearing_invitation_guesses_refused_total{scope="server"}': 10.0}, refused


async def test_the_join_page_is_the_same_for_valid_and_forged_links(make_bench: MakeBench) -> None:
    bench = await make_bench()
    await bench.make_hearing()
    _party_id, token = await bench.make_party("Witness")
    bodies = set()
    for candidate in (token, new_token(), token[:-1], "x" * 2000, "%00", "..%2f..%2fetc"):
        async with bench.client.get(f"/join/{candidate}") as response:
            assert response.status in (200, 404), (candidate[:30], response.status)
            if response.status == 200:
                bodies.add(await response.read())
                assert response.headers["Referrer-Policy"] == "no-referrer"
                assert "no-store" in response.headers.get("Cache-Control", "")
    assert len(bodies) == 1
