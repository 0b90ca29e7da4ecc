"""Issue #16, test 1: a phone whose network blocks UDP joins through the court's TURN relay over TLS on 443.

The lab: the server (a real ``hearing-server serve`` process, HTTPS) and coturn on the "internet"; the
phone behind a NAT router that forwards only TCP to ports 443 and 8443 (no UDP at all, no TURN port
3478). The phone runs Chromium (Pixel 7 emulation, fake camera and microphone) inside its namespace;
the courtroom is an aiortc peer inside the server's host. The party must get media both ways through
a ``relay`` candidate over TLS, and the hearing must be recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sqlite3
import time
from pathlib import Path

import av
import pytest
from lab_hearing import SECRET, LabHearing, wait_for
from netlab import SERVER_ADDRESS, TURN_ADDRESS, Netlab, phone_network
from playwright.async_api import Playwright

from integration_harness import until  # isort: skip (on sys.path through lab_hearing)

BLOCKED_S = 5.0
pytestmark = [pytest.mark.network, pytest.mark.slow, pytest.mark.browser, pytest.mark.media]


async def test_a_party_whose_network_blocks_udp_joins_through_turn_over_tls_443(
    lab: Netlab, playwright: Playwright, tmp_path: Path
) -> None:
    net = phone_network(lab, allow_udp=False, allow_tcp_ports=[443, 8443])
    hearing = LabHearing(net, tmp_path, playwright)
    try:
        await hearing.start(relay=True)
        await hearing.party_waits()
        assert hearing.page is not None and hearing.turn is not None
        given = await hearing.page.evaluate("() => window.hearingClient.call.iceServers")
        relay = [s for s in given if s.get("username")]
        assert len(relay) == 1 and relay[0]["username"].endswith(f":{hearing.party_id}"), given
        assert relay[0]["urls"] == hearing.turn.urls() and SECRET not in json.dumps(given)

        times = await hearing.admit_and_start()
        pairs = await hearing.selected_pairs()
        for name in ("publish", "subscribe"):
            pair = pairs[name]
            assert pair["ice"] in ("connected", "completed"), pairs
            assert pair["local"]["type"] == "relay" and pair["local"]["relayProtocol"] == "tls", pairs
            assert pair["local"]["address"] == TURN_ADDRESS, pairs
            assert pair["local"]["url"] == f"turns:{TURN_ADDRESS}:443?transport=tcp", pairs
            assert pair["remote"]["address"] == SERVER_ADDRESS, pairs

        await asyncio.sleep(3.0)
        record = await hearing.end_and_seal()
        assert record["status"] == "sealed", record
        recorded = hearing.recorded_packets(record)
        assert recorded.get("audio", 0) > 100 and recorded.get("video", 0) > 30, (recorded, record["files"])
        print(
            f"\nTURN over TLS 443: both media connections up {times['connected_s']:.2f} s and the phone "
            f"decoding the courtroom {times['media_s']:.2f} s after admission; recorded packets {recorded}"
        )
    finally:
        await hearing.close()


async def test_a_relay_out_of_reach_at_the_join_is_used_once_it_is_back(
    lab: Netlab, playwright: Playwright, tmp_path: Path
) -> None:
    """The relay is out of reach while the phone joins (its router drops everything to it) and the router
    forwards no UDP: the offer goes out without a relay candidate (the client waits 3 s for candidates)
    and nothing connects. The relay comes back 5 s after the admission; the party gets media through it
    (measured: Chromium keeps gathering, its late relay candidate reaches the server as peer-reflexive and
    the first connection comes up without a restart; the client's restart on failure and its relay-only
    attempt after 6 s are the further fallbacks)."""
    net = phone_network(lab, allow_udp=False, allow_tcp_ports=[443, 8443])
    hearing = LabHearing(net, tmp_path, playwright)
    try:
        await hearing.start(relay=True)
        await hearing.party_waits()
        net.router.block(TURN_ADDRESS)
        page, court = hearing.page, hearing.court
        assert page is not None and court is not None
        admitted_at = time.monotonic()
        await hearing.on_court(court.peer.send("admit", party_id=hearing.party_id))
        await hearing.on_court(court.publish())
        await asyncio.sleep(BLOCKED_S)  # longer than the client waits for candidates (3 s)
        assert hearing.connections() == 1, await hearing.diagnostics()  # the courtroom only
        net.router.unblock()
        await hearing.on_court(until(lambda: hearing.connections() == 2, 20, "the phone's media connection"))
        connected_s = time.monotonic() - admitted_at
        call = "window.hearingClient.call"
        how = await page.evaluate(f"() => ({{relay_only: {call}.relayOnly, restarts: {call}.restarts}})")
        await hearing.on_court(court.send("start"))
        await wait_for(hearing.phone_receives, "the phone to decode the courtroom")
        media_s = time.monotonic() - admitted_at
        pairs = await hearing.selected_pairs()
        for name in ("publish", "subscribe"):
            assert pairs[name]["local"]["type"] == "relay", pairs
        print(
            f"\nrelay back after {BLOCKED_S} s: media connected {connected_s:.2f} s and decoded at the phone "
            f"{media_s:.2f} s after admission; {how}"
        )
        # The relay dies, then the server is stopped: its connections give the relay's answer to each
        # allocation's deletion 1 s (aioice alone retransmits for ~31 s, one candidate after another).
        assert hearing.turn is not None and hearing.server is not None
        recordings = hearing.server.data_dir / "recordings"

        async def four_tracks_recorded() -> bool:  # a track's file opens with its first usable frame
            return len(list(recordings.rglob("*.webm"))) >= 4

        await wait_for(four_tracks_recorded, "the courtroom's and the phone's audio and video recorded")
        hearing.turn.process.kill()
        hearing.turn.process.wait(5)
        stopping = time.monotonic()
        hearing.server.process.send_signal(signal.SIGTERM)
        await asyncio.to_thread(hearing.server.process.wait, 20)
        stopped_s = time.monotonic() - stopping
        log = hearing.server.log()
        print(f"server stopped {stopped_s:.2f} s after SIGTERM with the relay gone")
        assert hearing.server.process.returncode == 0, log[-3000:]
        assert stopped_s < 4.0, log[-3000:]
        assert "no answer to its deletion within 1.0 s" in log, log[-3000:]
        # ... having interrupted the hearing and closed its recording's files (a finished file has a duration)
        with contextlib.closing(sqlite3.connect(hearing.server.data_dir / "hearing.db")) as db:
            (status,) = db.execute(
                "SELECT status FROM hearings WHERE id = ?", (hearing.hearing_id,)
            ).fetchone()
        assert status == "interrupted"
        files = sorted(recordings.rglob("*.webm"))
        assert len(files) >= 4, files  # the courtroom's and the phone's audio and video
        for path in files:
            with av.open(str(path)) as container:
                assert container.duration, f"{path.name} was not finished"
    finally:
        await hearing.close()
