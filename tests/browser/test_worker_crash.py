"""Issue 14: the media worker hosting a hearing is SIGKILLed while a real Chromium party is in it.

The server itself lives on: the hearing becomes ``interrupted``, the party's phone says so and reconnects
by itself; the pool restarts the worker; the server re-admits the returning party
(``readmit_after_interruption = automatic``) without the notice, and when the operator starts the hearing
again the court's video reaches the phone anew (decoded frames and bitrate from ``getStats``).
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
from pathlib import Path

import pytest
from browser_harness import (
    STAFF_PASSWORD,
    FakeMedia,
    assert_all_text_from_catalog,
    desktop,
    free_port,
    launch,
    phone,
    screenshot,
    t,
    watch_console,
)
from playwright.async_api import Page, Playwright, expect
from server_process import ServerProcess, StaffApi

COURTROOM = FakeMedia("red", (220, 0, 0), 440.0)
PARTY = FakeMedia("green", (0, 200, 0), 660.0)
MEDIA_TIMEOUT_S = 40.0
RECONNECT_TIMEOUT_MS = 30_000
MIN_VIDEO_KBPS = 1.0  # a still one-colour picture: VP8 needs only a few kbit/s for it


async def worker_pid(api: StaffApi) -> int:
    """The process id of the (only) media worker, from ``/metrics``."""
    async with api.http.get("/metrics") as response:
        text = await response.text()
    [pid] = re.findall(r'hearing_worker_info\{pid="(\d+)",worker="worker-0"\} 1', text)
    return int(pid)


async def received(page: Page, source: str) -> tuple[int, int]:
    """Video frames decoded and video bytes received from ``source`` on the page's subscribe connection."""
    stats = await page.evaluate("async () => await window.hearingClient.call.participantStats()")
    entry = stats.get(source) or {}
    return int(entry.get("framesDecoded", 0)), int(entry.get("videoBytes", 0))


async def video_flows(page: Page, source: str) -> tuple[int, float]:
    """Wait until video from ``source`` decodes; returns the frames decoded and kbit/s over the next 2 s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + MEDIA_TIMEOUT_S
    while (await received(page, source))[0] == 0:
        assert loop.time() < deadline, f"no video frames decoded from {source}"
        await asyncio.sleep(0.5)
    frames, size = await received(page, source)
    started = loop.time()
    await asyncio.sleep(2.0)
    later_frames, later_size = await received(page, source)
    kbps = (later_size - size) * 8 / 1000 / (loop.time() - started)
    assert later_frames > frames and kbps > MIN_VIDEO_KBPS, (frames, later_frames, kbps)
    return later_frames, kbps


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.media
async def test_after_its_media_worker_is_killed_the_party_page_reconnects_and_media_flows_again(
    playwright: Playwright, tmp_path: Path
) -> None:
    server = ServerProcess(
        tmp_path / "data",
        free_port(),
        court_name="Алматы қаласының №2 аудандық соты",
        media_workers="1",
        readmit_after_interruption="automatic",
    )
    await server.add_staff("secretary1", STAFF_PASSWORD)
    await server.start()
    api = StaffApi(server.base_url)
    media = tmp_path / "media"
    browsers = await asyncio.gather(launch(playwright, COURTROOM, media), launch(playwright, PARTY, media))
    problems: list[str] = []
    try:
        await api.login("secretary1", STAFF_PASSWORD)
        hearing = await api.schedule("2-914/2026")
        party_id, url = await api.invite(hearing["id"], "Айдос Серікбаев", "plaintiff", "kk")

        court = await (await desktop(browsers[0], "ru")).new_page()
        party = await (await phone(browsers[1], playwright, "kk")).new_page()
        for page in (court, party):
            watch_console(page, problems)
        await court.goto(f"{server.base_url}/login?next=/console/hearing/{hearing['id']}")
        await court.fill("#login-username", "secretary1")
        await court.fill("#login-password", STAFF_PASSWORD)
        await court.click("#login-submit")
        await court.wait_for_function("() => window.hearingClient && window.hearingClient.state")
        await court.click("#cmd-open")
        await expect(court.locator("#run-status")).to_have_text(t("ru", "status.open"))
        court_id = await court.evaluate("() => window.hearingClient.state.you.participant_id")

        await party.goto(url)
        await party.click("#details-continue")
        await expect(party.locator("#device-continue")).to_be_enabled()
        await party.click("#device-continue")
        await expect(party.locator("#screen-notice")).to_be_visible()
        await party.check("#notice-agree")
        await party.click("#notice-continue")
        await expect(party.locator("#screen-waiting")).to_be_visible()
        await court.click(f"#waiting-list button[data-action='admit'][data-party-id='{party_id}']")
        await expect(party.locator("#screen-hearing")).to_be_visible()
        await court.click("#cmd-start")
        await expect(court.locator("#run-status")).to_have_text(t("ru", "status.in_session"))
        frames, kbps = await video_flows(party, court_id)
        print(f"\nbefore the crash: {frames} frames decoded at the phone, {kbps:.0f} kbit/s")

        # SIGKILL the worker: the server stays up, the hearing is interrupted, the phone says so.
        killed = await worker_pid(api)
        os.kill(killed, signal.SIGKILL)
        banner = party.locator("#banner-interrupted")
        await expect(banner).to_be_visible()
        await expect(banner).to_contain_text(t("kk", "banner.interrupted"))
        await assert_all_text_from_catalog(party, "kk")
        await screenshot(party, "worker-crash", "kk", "interrupted")
        await expect(court.locator("#run-status")).to_have_text(
            t("ru", "status.interrupted"), timeout=RECONNECT_TIMEOUT_MS
        )
        assert (await api.call("GET", f"/hearings/{hearing['id']}"))["status"] == "interrupted"

        # The phone reconnected by itself and is back in the hearing screen: no notice, no admit click.
        await expect(party.locator("#screen-hearing")).to_be_visible(timeout=RECONNECT_TIMEOUT_MS)
        assert await party.locator("#screen-notice").is_hidden()
        restarted = await worker_pid(api)
        assert restarted != killed

        # The operator resumes: the court's video reaches the phone again, and the phone's the court.
        await court.click("#cmd-start")
        await expect(court.locator("#run-status")).to_have_text(t("ru", "status.in_session"))
        await expect(party.locator("#banner-interrupted")).to_be_hidden(timeout=RECONNECT_TIMEOUT_MS)
        await expect(party.locator("#banner-recording")).to_be_visible()
        frames, kbps = await video_flows(party, court_id)
        print(f"after the resume on worker pid {restarted}: {frames} frames at the phone, {kbps:.0f} kbit/s")
        await video_flows(court, party_id)
        await assert_all_text_from_catalog(party, "kk")
        await screenshot(party, "worker-crash", "kk", "resumed")
        assert not problems, problems

        # The log: interrupted by the worker's loss, one notice confirmation, the system re-admitted.
        events = await api.events(hearing["id"])
        kinds = [e["event"] for e in events if e["party_id"] == party_id]
        assert kinds.count("notice_confirmed") == 1, kinds
        readmitted = [
            e
            for e in events
            if e["event"] == "party_admitted"
            and e["party_id"] == party_id
            and e["details"].get("reason") == "readmitted_after_interruption"
        ]
        assert len(readmitted) == 1 and readmitted[0]["actor"] == "system", readmitted
        interrupted = [e for e in events if e["event"] == "hearing_interrupted"]
        assert len(interrupted) == 1 and interrupted[0]["seq"] < readmitted[0]["seq"]
    finally:
        await api.close()
        for browser in browsers:
            await browser.close()
        await server.stop()
    assert not any("Traceback" in line for line in server.output), "".join(server.output)[-4000:]
