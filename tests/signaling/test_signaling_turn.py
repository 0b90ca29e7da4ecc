"""With a TURN relay configured, every participant's `hearing` message carries its own short-lived
credentials (TURN REST API scheme), never the shared secret."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from signaling_harness import Bench

from hearing_server.turn import turn_password

MakeBench = Callable[..., Awaitable[Bench]]
SECRET = "relay secret of the test"
URLS = ["turns:turn.court.example:443?transport=tcp", "turn:turn.court.example:3478?transport=udp"]


async def test_each_participant_gets_its_own_turn_credentials(make_bench: MakeBench) -> None:
    bench = await make_bench(turn_urls=URLS, turn_secret=SECRET, turn_ttl_s=600, ice_servers=["stun:s:3478"])
    await bench.make_hearing()
    cookie = await bench.make_staff()
    operator = await bench.connect(cookie=cookie)
    await operator.send("join", hearing_id=bench.hearing_id, **{"as": "courtroom"})
    court_hello = await operator.expect("hearing")
    await operator.send("open_waiting_room")
    await operator.expect("state", lambda m: m["hearing"]["status"] == "open")
    party_id, token = await bench.make_party("Aigerim Witness")
    party = await bench.connect(user_agent="PartyPhone/1.0")
    await party.send("join", token=token, language="kk")
    party_hello = await party.expect("hearing")

    seen = {}
    for hello in (court_hello, party_hello):
        servers = hello["media"]["ice_servers"]
        assert servers[0] == {"urls": "stun:s:3478"}
        relay = servers[1]
        assert relay["urls"] == URLS
        expiry, user = relay["username"].split(":", 1)
        assert user == hello["you"]["participant_id"]
        assert abs(int(expiry) - (time.time() + 600)) < 30
        assert relay["credential"] == turn_password(SECRET, relay["username"])
        assert SECRET not in str(hello)
        seen[user] = relay["credential"]
    assert party_id in seen and len(set(seen.values())) == 2

    await party.close()
    await operator.close()
