"""Behind a reverse proxy the confirmation log names the party's address, not the proxy's — and only a
configured trusted proxy is believed: from anyone else X-Forwarded-For is ignored."""

from __future__ import annotations

from typing import Any

import pytest
from api_harness import Api
from reliability_harness import MakeApi, MakeBench
from signaling_harness import Bench, WsPeer

from hearing_server.domain.party import StaffRole
from hearing_server.record.event_log import EVENTS

PARTY = "203.0.113.5"
SPOOFED = "198.51.100.9"  # written by the client itself, left of the proxy's hop


async def _join_through(bench: Bench, token: str, forwarded_for: str) -> WsPeer:
    ws = await bench.client.ws_connect(
        "/ws",
        headers={"Origin": bench.origin, "X-Forwarded-For": forwarded_for, "User-Agent": "PartyPhone/1.0"},
    )
    peer = WsPeer(ws)
    await peer.send("join", token=token)
    await peer.expect("hearing")
    return peer


async def _logged_ips(bench: Bench, party_id: str) -> list[tuple[str, Any]]:
    confirmation_log = await bench.app[EVENTS].confirmation_log(bench.hearing_id)
    in_file = [(e.event, e.details.get("ip")) for e in confirmation_log.entries() if e.party_id == party_id]
    mirrored = [(e.event, e.details.get("ip")) for e in await bench.events() if e.party_id == party_id]
    assert in_file[: len(mirrored)] == mirrored  # the mirror may still be catching up on the disconnect
    return in_file


async def test_a_trusted_proxy_passes_the_party_address_into_the_confirmation_log(
    make_bench: MakeBench,
) -> None:
    bench = await make_bench(trusted_proxies=["127.0.0.0/8", "10.1.2.3"])  # the test client is 127.0.0.1
    await bench.make_hearing()
    party_id, token = await bench.make_party("Witness")
    # client-written hop, the party as the outer proxy saw it, then an inner trusted proxy
    peer = await _join_through(bench, token, f"{SPOOFED}, {PARTY}, 10.1.2.3")
    await peer.close()
    logged = await _logged_ips(bench, party_id)
    assert logged and logged[0] == ("link_opened", PARTY), logged


@pytest.mark.parametrize("trusted", [[], ["10.0.0.0/8"]], ids=["none", "others"])
async def test_an_untrusted_peer_cannot_choose_the_logged_address(
    make_bench: MakeBench, trusted: list[str]
) -> None:
    bench = await make_bench(trusted_proxies=trusted)
    await bench.make_hearing()
    party_id, token = await bench.make_party("Witness")
    peer = await _join_through(bench, token, f"{SPOOFED}, {PARTY}")
    await peer.close()
    logged = await _logged_ips(bench, party_id)
    assert logged and logged[0] == ("link_opened", "127.0.0.1"), logged


async def test_plain_http_alone_no_longer_trusts_the_header(make_bench: MakeBench) -> None:
    bench = await make_bench(plain_http=True)
    await bench.make_hearing()
    party_id, token = await bench.make_party("Witness")
    peer = await _join_through(bench, token, PARTY)
    await peer.close()
    assert (await _logged_ips(bench, party_id))[0] == ("link_opened", "127.0.0.1")


async def test_staff_events_over_rest_carry_the_forwarded_address(make_api: MakeApi) -> None:
    api: Api = await make_api(trusted_proxies=["127.0.0.1"])
    operator = await api.who(StaffRole.OPERATOR)
    hearing = await api.schedule(operator)
    party = await api.add_party(operator, hearing["id"])
    issued = await api.call(
        "POST",
        f"/api/v1/hearings/{hearing['id']}/parties/{party['id']}/invitation",
        operator,
        headers={"X-Forwarded-For": f"{SPOOFED}, {PARTY}"},
    )
    assert issued.status == 201, issued.json
    events = await api.app[EVENTS].entries(hearing["id"])
    assert [e.details["ip"] for e in events if e.event == "party_invited"] == [PARTY]
