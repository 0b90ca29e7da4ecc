"""Two phone parties (real headless Chromium, fake camera and microphone) open their links on different
nodes' addresses for one hearing: node A hosts it, party 2's socket reaches it through node B's bridge, and
both send their media straight to node A. Each party decodes the other's video and hears the other's tone;
the hearing is recorded, ended and sealed, and its log holds both parties' joins."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from browser_harness import CHROMIUM, CHROMIUM_ARGS, FakeMedia, phone
from cluster_harness import NodeNet, NodeProcess
from integration_harness import ServerApi, free_port, sealed_record, stop_renders
from playwright.async_api import Browser, Page, Playwright, async_playwright, expect
from signaling_harness import WsPeer

from hearing_server.bootstrap import FIRST_ADMIN
from recording.confirmation_log import LOG_FILE_NAME

pytestmark = [pytest.mark.media, pytest.mark.slow, pytest.mark.postgres, pytest.mark.browser]

PARTIES = (FakeMedia("green", (0, 200, 0), 660.0), FakeMedia("blue", (0, 0, 200), 880.0))
MEDIA_TIMEOUT_S = 40.0
STATS_JS = "() => window.hearingClient.call.participantStats()"
# Where the page's media goes: the remote address of each peer connection's selected candidate pair.
MEDIA_PEER_JS = """
async () => {
  const call = window.hearingClient.call;
  const out = {};
  for (const [name, side] of [['publish', call._publish], ['subscribe', call._subscribe]]) {
    if (!side || !side.pc) continue;
    const stats = await side.pc.getStats();
    stats.forEach((s) => {
      if (s.type === 'transport' && s.selectedCandidatePairId) {
        const pair = stats.get(s.selectedCandidatePairId);
        const remote = pair && stats.get(pair.remoteCandidateId);
        out[name] = remote ? remote.address : null;
      }
    });
  }
  return out;
}
"""


@pytest.fixture
async def playwright() -> AsyncIterator[Playwright]:
    """Playwright driving the system Chromium (in this process's namespace: the lab and loopback only)."""
    if not os.access("/usr/bin/chromium", os.X_OK):
        pytest.skip("/usr/bin/chromium is not installed")
    async with async_playwright() as driver:
        yield driver


async def phone_browser(playwright: Playwright, media: FakeMedia, folder: Path, nodes: list[str]) -> Browser:
    """A Chromium whose fake camera and microphone play ``media``, treating the nodes' plain-HTTP addresses
    as secure (a phone reaches them through the court's TLS proxy; getUserMedia needs a secure origin)."""
    video, audio = media.files(folder)
    args = [
        *CHROMIUM_ARGS,
        f"--use-file-for-fake-video-capture={video}",
        f"--use-file-for-fake-audio-capture={audio}",
        f"--unsafely-treat-insecure-origin-as-secure={','.join(nodes)}",
    ]
    return await playwright.chromium.launch(executable_path=CHROMIUM, args=args)


async def party_waits(page: Page, url: str) -> None:
    """The party's phone: link, details, device check (picture and meter live), notice, waiting room."""
    await page.goto(url)
    await page.click("#details-continue")
    await expect(page.locator("#device-continue")).to_be_enabled()
    await page.wait_for_function("() => document.getElementById('device-preview').videoWidth > 0")
    await page.wait_for_function("() => document.getElementById('device-meter').value > 0")
    await page.click("#device-continue")
    await expect(page.locator("#notice-text")).not_to_be_empty()
    await page.check("#notice-agree")
    await page.click("#notice-continue")
    await expect(page.locator("#screen-waiting")).to_be_visible()


async def admitted(court: WsPeer, page: Page, party_id: str) -> None:
    """The operator admits the waiting party; the phone shows the hearing."""
    await court.expect(
        "state", lambda m: any(w["id"] == party_id and w["state"] == "waiting" for w in m.get("waiting", []))
    )
    await court.send("admit", party_id=party_id)
    await expect(page.locator("#screen-hearing")).to_be_visible()


async def hears_and_sees_the_other(page: Page, what: str) -> dict[str, Any]:
    """Poll the page's inbound stats until the one other party's video decodes and its audio is loud."""
    deadline = time.monotonic() + MEDIA_TIMEOUT_S
    stats: dict[str, Any] = {}
    while time.monotonic() < deadline:
        stats = await page.evaluate(STATS_JS)
        entries = list(stats.values())
        if (
            len(entries) == 1
            and entries[0].get("framesDecoded", 0) > 30
            and entries[0].get("totalSamplesReceived", 0) > 48_000
            and entries[0].get("audioLevel", 0) > 0.05
        ):
            return dict(entries[0])
        await asyncio.sleep(0.25)
    raise AssertionError(f"{what} never decoded the other party's media: {stats}")


async def test_parties_on_two_nodes_addresses_see_and_hear_each_other_in_one_hearing(
    tmp_path: Path, cluster_net: NodeNet, cluster_url: str, playwright: Playwright
) -> None:
    shared = tmp_path / "shared"  # one data folder (recordings, court key) mounted on both nodes
    a = NodeProcess(shared, free_port(), "node-a", cluster_url, cluster_net.nodes[0])
    b = NodeProcess(shared, free_port(), "node-b", cluster_url, cluster_net.nodes[1])
    api = ServerApi(a.base)
    browsers = []
    print(f"nodes at {a.base} and {b.base}, phones at {cluster_net.client}")
    try:
        password = await a.start()
        assert password is not None
        await b.start()
        await api.login(FIRST_ADMIN, password)
        await api.staff_operator()
        hearing_id = (await api.schedule())["id"]
        parties = [await api.invite(hearing_id, name) for name in ("Aliya Witness", "Bolat Expert")]
        court = await api.courtroom(hearing_id)  # the operator's console, on node A: A hosts the hearing
        await court.send("open_waiting_room")
        await court.expect("state", lambda m: m["hearing"]["status"] == "open")

        pages: list[Page] = []
        for (party_id, token), node, media in zip(parties, (a, b), PARTIES, strict=True):
            browser = await phone_browser(playwright, media, tmp_path / "media", [a.base, b.base])
            browsers.append(browser)
            page = await (await phone(browser, playwright, "ru")).new_page()
            await party_waits(page, f"{node.base}/join/{token}")  # party 2: node B's address
            await admitted(court, page, party_id)
            pages.append(page)
        await court.send("start")
        await court.expect("state", lambda m: m["hearing"]["recording"] == "recording")

        for number, page in enumerate(pages, start=1):
            got = await hears_and_sees_the_other(page, f"party {number}")
            print(f"party {number} receives {got}")
            # Signaling went through either node; media goes straight to the hosting node.
            assert set((await page.evaluate(MEDIA_PEER_JS)).values()) == {a.address}
        await court.send("end")
        record = await sealed_record(api, hearing_id)
        assert record["status"] == "sealed" and record["seal"]["valid"] is True, record["seal"]
        events = await api.events(hearing_id)
    finally:
        for browser in browsers:
            await browser.close()
        await api.close()
        await a.stop()
        await b.stop()
        stop_renders(shared)

    # Both parties' joins are in the sealed log, from their phones' own address and browser, in the
    # order they were admitted.
    folder = next(p.parent for p in (shared / "recordings").rglob(LOG_FILE_NAME))
    entries = [json.loads(line) for line in (folder / LOG_FILE_NAME).read_text().splitlines()]
    assert [(e["seq"], e["event"]) for e in entries] == [(e["seq"], e["event"]) for e in events]
    party_ids = [party_id for party_id, _ in parties]
    joined = [e for e in entries if e["event"] == "party_joined" and e["party_id"] in party_ids]
    assert [e["party_id"] for e in joined] == party_ids
    for entry in joined:
        assert entry["details"]["ip"] == cluster_net.client
        assert "Chrome" in entry["details"]["user_agent"]
    assert entries[-1]["event"] == "hearing_sealed"
    # Party 2's page talked to node B, which bridged its socket to node A.
    assert any("GET /ws 101" in line for line in b.output), "".join(b.output)[-4000:]
    assert any("GET /internal/bridge 101" in line for line in a.output), "".join(a.output)[-4000:]
    for node in (a, b):
        assert not any("Traceback" in line for line in node.output), "".join(node.output)[-4000:]
