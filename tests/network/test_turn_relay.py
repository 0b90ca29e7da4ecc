"""Issue #16, test 1: a phone whose network blocks UDP joins through the court's TURN relay over TLS on 443.

The lab: the server (a real ``hearing-server serve`` process, HTTPS) and coturn on the "internet"; the
phone behind a NAT router that forwards only TCP to ports 443 and 8443 (no UDP at all, no TURN port
3478). The phone runs Chromium (Pixel 7 emulation, fake camera and microphone) inside its namespace;
the courtroom is an aiortc peer inside the server's host. The party must get media both ways through
a ``relay`` candidate over TLS, and the hearing must be recorded.
"""

from __future__ import annotations

import asyncio
import json
import stat
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from coturn import Coturn, start_coturn
from lab_server import LabServer, insecure_session, start_server
from netlab import SERVER_ADDRESS, TURN_ADDRESS, Host, Netlab, PhoneNetwork, phone_network
from nsloop import HostLoop

_TESTS = Path(__file__).resolve().parent.parent
for _folder in ("browser", "signaling", "media", "recording", "integration"):
    if str(_TESTS / _folder) not in sys.path:
        sys.path.append(str(_TESTS / _folder))

from browser_harness import CHROMIUM, CHROMIUM_ARGS, FakeMedia, pixel7  # noqa: E402
from integration_harness import Browser, ServerApi, make_clip, sealed_record, until  # noqa: E402
from playwright.async_api import Page, Playwright, async_playwright, expect  # noqa: E402

pytestmark = [pytest.mark.network, pytest.mark.slow, pytest.mark.browser, pytest.mark.media]

SECRET = "the lab relay's shared secret"
PARTY = FakeMedia("green", (0, 200, 0), 660.0)
MEDIA_TIMEOUT_S = 40.0

SELECTED_PAIRS_JS = """
async () => {
  const call = window.hearingClient.call;
  const result = {};
  const pcs = {publish: call._publish && call._publish.pc, subscribe: call._subscribe && call._subscribe.pc};
  for (const [name, pc] of Object.entries(pcs)) {
    if (!pc) continue;
    const stats = await pc.getStats();
    let pair = null;
    stats.forEach((s) => {
      if (s.type === 'transport' && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId);
    });
    const local = pair && stats.get(pair.localCandidateId);
    const remote = pair && stats.get(pair.remoteCandidateId);
    result[name] = {
      ice: pc.iceConnectionState,
      local: local && {type: local.candidateType, relayProtocol: local.relayProtocol || null,
                       address: local.address, url: local.url || null},
      remote: remote && {type: remote.candidateType, address: remote.address, port: remote.port},
      bytesSent: pair ? pair.bytesSent : 0, bytesReceived: pair ? pair.bytesReceived : 0,
    };
  }
  return result;
}
"""
CANDIDATES_JS = """
async () => {
  const call = window.hearingClient.call;
  const out = {};
  for (const [name, pc] of Object.entries({publish: call._publish && call._publish.pc,
                                           subscribe: call._subscribe && call._subscribe.pc})) {
    if (!pc) continue;
    const stats = await pc.getStats();
    const rows = [];
    stats.forEach((s) => {
      if (s.type === 'local-candidate' || s.type === 'remote-candidate')
        rows.push([s.type, s.candidateType, s.protocol, s.relayProtocol, s.address, s.port, s.url]);
      if (s.type === 'candidate-pair') rows.push(['pair', s.state, s.nominated, s.bytesSent, s.bytesReceived]);
    });
    out[name] = {ice: pc.iceConnectionState, gathering: pc.iceGatheringState, rows,
                 sdp: pc.localDescription && pc.localDescription.sdp.split('\\r\\n').filter((l) => l.startsWith('a=candidate'))};
  }
  return out;
}
"""
STATS_JS = "() => window.hearingClient.call.participantStats()"


def chromium_in(host: Host, folder: Path) -> Path:
    """A wrapper that Playwright starts as its browser: Chromium inside ``host``'s namespace."""
    wrapper = folder / f"chromium-{host.role}.sh"
    wrapper.write_text(f'#!/bin/sh\nexec ip netns exec {host.netns} {CHROMIUM} "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    return wrapper


@pytest.fixture
async def playwright() -> AsyncIterator[Playwright]:
    """Playwright driving the system Chromium."""
    async with async_playwright() as driver:
        yield driver


async def operator_prepares(server: LabServer) -> tuple[ServerApi, str, str, str]:
    """(On the server host's loop) log in, schedule, invite the party; returns api, hearing, party, URL."""
    api = ServerApi(server.base_url)
    await api.http.close()
    api.http = insecure_session()
    await api.login("admin", server.admin_password)
    await api.staff_operator()
    hearing_id = (await api.schedule())["id"]
    party = await api.ok(
        "POST", f"/hearings/{hearing_id}/parties", {"role": "witness", "display_name": "Phone"}
    )
    issued = await api.ok("POST", f"/hearings/{hearing_id}/parties/{party['id']}/invitation")
    return api, hearing_id, party["id"], issued["url"]


async def party_enters_waiting_room(page: Page, url: str) -> None:
    """A party on a phone: details, device check, notice confirmed, waiting room."""
    await page.goto(url)
    await page.click("#details-continue")
    await expect(page.locator("#device-continue")).to_be_enabled()
    await page.click("#device-continue")
    await expect(page.locator("#notice-text")).not_to_be_empty()
    await page.check("#notice-agree")
    await page.click("#notice-continue")
    await expect(page.locator("#screen-waiting")).to_be_visible()


async def wait_for(check: Any, what: str, within: float = MEDIA_TIMEOUT_S) -> Any:
    """Poll ``check()`` every 0.25 s until it returns something truthy."""
    deadline = time.monotonic() + within
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


async def test_a_party_whose_network_blocks_udp_joins_through_turn_over_tls_443(
    lab: Netlab, playwright: Playwright, tmp_path: Path
) -> None:
    net: PhoneNetwork = phone_network(lab, allow_udp=False, allow_tcp_ports=[443, 8443])
    turn: Coturn = start_coturn(net.turn, tmp_path / "turn", SECRET, allowed_peers=[SERVER_ADDRESS])
    server = start_server(
        net.server,
        tmp_path / "server" / "data",
        turn_urls=json.dumps(turn.urls()),
        turn_secret=SECRET,
        turn_ttl_s="600",
    )
    court_host = HostLoop(net.server)
    browser = None
    court: Browser | None = None
    api: ServerApi | None = None
    try:
        api, hearing_id, party_id, url = await court_host.run(operator_prepares(server))

        async def courtroom_opens() -> Browser:
            assert api is not None
            peer = await api.courtroom(hearing_id)
            await peer.send("open_waiting_room")
            await peer.expect("state", lambda m: m["hearing"]["status"] == "open")
            return Browser(peer, make_clip(0))

        court = await court_host.run(courtroom_opens())

        video, audio = PARTY.files(tmp_path / "media")
        args = [a for a in CHROMIUM_ARGS if a != "--allow-loopback-in-peer-connection"]
        args += [f"--use-file-for-fake-video-capture={video}", f"--use-file-for-fake-audio-capture={audio}"]
        args.append(f"--ignore-certificate-errors-spki-list={turn.spki()}")  # trust the lab relay's key
        browser = await playwright.chromium.launch(
            executable_path=str(chromium_in(net.phone, tmp_path)), args=args
        )
        context = await browser.new_context(**pixel7(playwright), locale="ru-RU", ignore_https_errors=True)
        context.set_default_timeout(20_000)
        page = await context.new_page()
        await party_enters_waiting_room(page, url)
        hello = await page.evaluate("() => window.hearingClient.call.iceServers")
        relay = [s for s in hello if s.get("username")]
        assert len(relay) == 1 and relay[0]["username"].endswith(f":{party_id}"), hello
        assert SECRET not in json.dumps(hello)

        assert court is not None
        admitted_at = time.monotonic()
        await court_host.run(court.peer.send("admit", party_id=party_id))
        await expect(page.locator("#screen-hearing")).to_be_visible()
        await court_host.run(court.publish())

        def both_connected() -> bool:
            state = court.state() if court else None
            return (
                state is not None and sum(p["connection"] == "connected" for p in state["participants"]) == 2
            )

        try:
            await court_host.run(until(both_connected, MEDIA_TIMEOUT_S, "both media connections"))
        except TimeoutError:
            raise AssertionError(
                f"no media connection: court state {court.state()}\nphone {await page.evaluate(CANDIDATES_JS)}"
                f"\nturn log:\n{turn.log()[-3000:]}\nserver log:\n{server.log()[-3000:]}"
            ) from None
        connected_s = time.monotonic() - admitted_at
        await asyncio.sleep(1.0)
        await court_host.run(court.send("start"))
        court_id = court.participant_id

        async def phone_receives() -> dict[str, Any] | None:
            entry = (await page.evaluate(STATS_JS)).get(court_id) or {}
            ok = entry.get("framesDecoded", 0) > 0 and entry.get("totalSamplesReceived", 0) > 0
            return entry if ok else None

        await wait_for(phone_receives, "the phone to decode the courtroom's video and audio")
        media_s = time.monotonic() - admitted_at
        await court_host.run(
            until(lambda: len([n for n in court.received.values() if n > 10]) >= 2, 20, "media")
        )

        pairs = await page.evaluate(SELECTED_PAIRS_JS)
        for name in ("publish", "subscribe"):
            pair = pairs[name]
            assert pair["ice"] in ("connected", "completed"), pairs
            assert pair["local"]["type"] == "relay", pairs
            assert pair["local"]["relayProtocol"] == "tls", pairs
            assert pair["local"]["address"] == TURN_ADDRESS, pairs
            assert pair["remote"]["address"] == SERVER_ADDRESS, pairs
        assert "ALLOCATE processed, success" in turn.log() or "allocation" in turn.log().lower()

        await asyncio.sleep(3.0)
        await court_host.run(court.send("end"))
        record = await court_host.run(sealed_record(api, hearing_id))
        assert record["status"] == "sealed", record
        recorded = {f["path"]: f["size"] for f in record["files"] if party_id in f["path"]}
        assert {p.split("-")[-2] for p in recorded} == {"audio", "video"}, record["files"]
        assert all(size > 5000 for size in recorded.values()), recorded
        print(
            f"\nrelay over TLS 443: media connected {connected_s:.2f} s and first frame decoded at the phone "
            f"{media_s:.2f} s after admission; phone publish pair {pairs['publish']}; recorded {recorded}"
        )
    finally:
        if browser is not None:
            await browser.close()
        if court is not None:
            await court_host.run(court.close())
        if api is not None:
            await court_host.run(api.close())
        court_host.close()
