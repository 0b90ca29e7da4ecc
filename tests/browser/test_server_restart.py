"""Issue 12 item 1: the server is killed (SIGKILL) mid-hearing and started again on the same data directory.

The party's phone (Pixel 7, Kazakh) says the hearing was interrupted, reconnects by itself, comes back to
the waiting room without the recording notice, flagged as returning; the courtroom console (real Chromium)
rejoins, re-admits with one click and starts again; the court's video reaches the phone again. A second
party who had only reached the waiting room is taken back to the notice and confirms it again.
"""

from __future__ import annotations

import asyncio
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
MEDIA_TIMEOUT_MS = 40_000
RECONNECT_TIMEOUT_MS = 30_000  # back-off up to 5 s after the restart, plus the restart itself


async def confirm_notice(page: Page) -> None:
    """Read and confirm the recording notice; the page goes to the waiting room."""
    await expect(page.locator("#screen-notice")).to_be_visible()
    await expect(page.locator("#notice-text")).not_to_be_empty()
    await page.check("#notice-agree")
    await page.click("#notice-continue")
    await expect(page.locator("#screen-waiting")).to_be_visible()


async def frames_from(page: Page, source: str) -> int:
    """Video frames the page has decoded from ``source`` on its current subscribe connection."""
    stats = await page.evaluate("async () => await window.hearingClient.call.participantStats()")
    return int((stats.get(source) or {}).get("framesDecoded", 0))


async def frames_grow(page: Page, source: str, within_s: float = MEDIA_TIMEOUT_MS / 1000) -> int:
    """Wait until frames from ``source`` are decoded and still growing; returns the later count."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    first = 0
    while loop.time() < deadline:
        first = await frames_from(page, source)
        if first > 0:
            break
        await asyncio.sleep(0.5)
    assert first > 0, f"no video frames decoded from {source}"
    while loop.time() < deadline:
        await asyncio.sleep(1.0)
        later = await frames_from(page, source)
        if later > first:
            return later
    raise AssertionError(f"video from {source} stopped at {first} frames")


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.media
async def test_after_a_sigkill_the_party_returns_without_the_notice_and_video_flows_again(
    playwright: Playwright, tmp_path: Path
) -> None:
    server = ServerProcess(tmp_path / "data", free_port(), court_name="Алматы қаласының №2 аудандық соты")
    await server.add_staff("secretary1", STAFF_PASSWORD)
    await server.start()
    api = StaffApi(server.base_url)
    media = tmp_path / "media"
    browsers = await asyncio.gather(launch(playwright, COURTROOM, media), launch(playwright, PARTY, media))
    problems: list[str] = []
    try:
        await api.login("secretary1", STAFF_PASSWORD)
        hearing = await api.schedule("2-912/2026")
        party_id, url = await api.invite(hearing["id"], "Айдос Серікбаев", "plaintiff", "kk")
        waiter_id, waiter_url = await api.invite(hearing["id"], "Jane Witness", "witness", "en")

        court = await (await desktop(browsers[0], "ru")).new_page()
        party = await (await phone(browsers[1], playwright, "kk")).new_page()
        waiter = await (await phone(browsers[1], playwright, "en")).new_page()
        for page in (court, party, waiter):
            watch_console(page, problems)
        await court.goto(f"{server.base_url}/login?next=/console/hearing/{hearing['id']}")
        await court.fill("#login-username", "secretary1")
        await court.fill("#login-password", STAFF_PASSWORD)
        await court.click("#login-submit")
        await court.wait_for_function("() => window.hearingClient && window.hearingClient.state")
        await court.click("#cmd-open")
        await expect(court.locator("#run-status")).to_have_text(t("ru", "status.open"))
        court_id = await court.evaluate("() => window.hearingClient.state.you.participant_id")

        # The party confirms the notice once, is admitted, and sees the court; the other one only waits.
        for page, link in ((party, url), (waiter, waiter_url)):
            await page.goto(link)
            await page.click("#details-continue")
            await expect(page.locator("#device-continue")).to_be_enabled()
            await page.click("#device-continue")
            await confirm_notice(page)
            await expect(page.locator("#waiting-returning")).to_be_hidden()
        await court.click(f"#waiting-list button[data-action='admit'][data-party-id='{party_id}']")
        await expect(party.locator("#screen-hearing")).to_be_visible()
        await court.click("#cmd-start")
        await expect(court.locator("#run-status")).to_have_text(t("ru", "status.in_session"))
        await frames_grow(party, court_id)

        # SIGKILL: the phone says the hearing was interrupted and keeps trying by itself.
        await server.kill()
        banner = party.locator("#banner-interrupted")
        await expect(banner).to_be_visible()
        await expect(banner).to_contain_text(t("kk", "banner.interrupted"))
        await expect(party.locator("#banner-reconnecting")).to_be_hidden()
        await assert_all_text_from_catalog(party, "kk")
        await screenshot(party, "restart", "kk", "interrupted")
        await expect(court.locator("#banner-reconnecting")).to_be_visible()
        await expect(waiter.locator("#banner-interrupted")).to_be_visible()

        # Started again on the same data: the phone is back in the waiting room, no notice, flagged returning.
        await server.start()
        await expect(party.locator("#screen-waiting")).to_be_visible(timeout=RECONNECT_TIMEOUT_MS)
        await expect(party.locator("#waiting-returning")).to_have_text(t("kk", "waiting.returning"))
        await expect(party.locator("#banner-interrupted")).to_be_visible()  # the hearing is still interrupted
        assert (
            await party.evaluate("() => window.hearingClient.call.connectionState") == "new"
        )  # media torn down
        await assert_all_text_from_catalog(party, "kk")
        await screenshot(party, "restart", "kk", "returning")

        # The console has rejoined: the party waits as returning, Admit is usable, one click re-admits.
        await expect(court.locator("#run-status")).to_have_text(
            t("ru", "status.interrupted"), timeout=RECONNECT_TIMEOUT_MS
        )
        item = court.locator(f"#waiting-list li[data-party-id='{party_id}'][data-returning='true']")
        await expect(item).to_be_visible(timeout=RECONNECT_TIMEOUT_MS)
        await expect(item.locator("[data-returning='true']")).to_have_text(t("ru", "run.returning"))
        await expect(item.locator("button[data-action='admit']")).to_be_enabled()
        await expect(court.locator("#cmd-admit-returning")).to_be_visible()
        await assert_all_text_from_catalog(court, "ru")
        await screenshot(court, "restart", "ru", "courtroom-returning")
        # The party who had only waited is back at the notice (not returning) and confirms it again.
        await expect(waiter.locator("#screen-notice")).to_be_visible(timeout=RECONNECT_TIMEOUT_MS)
        await expect(waiter.locator("#notice-agree")).not_to_be_checked()
        await expect(waiter.locator("#notice-continue")).to_be_disabled()
        await confirm_notice(waiter)
        await expect(waiter.locator("#waiting-returning")).to_be_hidden()
        await expect(
            court.locator(f"#waiting-list li[data-party-id='{waiter_id}'][data-returning='false']")
        ).to_be_visible()

        await court.click("#cmd-admit-returning")
        await expect(party.locator("#screen-hearing")).to_be_visible()
        await expect(court.locator("#cmd-admit-returning")).to_be_hidden()
        await expect(
            court.locator(f"#waiting-list li[data-party-id='{waiter_id}']")
        ).to_be_visible()  # not re-admitted
        await court.click("#cmd-start")
        await expect(court.locator("#run-status")).to_have_text(t("ru", "status.in_session"))
        await expect(party.locator("#banner-interrupted")).to_be_hidden()
        await expect(party.locator("#banner-recording")).to_be_visible()
        await frames_grow(party, court_id)  # the court's video reaches the phone again
        await frames_grow(court, party_id)  # and the phone's reaches the court
        assert await party.locator("#screen-notice").is_hidden()
        assert not problems, problems

        # The log: one confirmation; the return rests on it; the operator re-admitted after the interruption.
        events = await api.events(hearing["id"])
        mine = [e for e in events if e["party_id"] == party_id]
        kinds = [e["event"] for e in mine]
        assert kinds.count("notice_confirmed") == 1, kinds
        confirmed = next(e for e in mine if e["event"] == "notice_confirmed")
        interrupted = next(e for e in events if e["event"] == "hearing_interrupted")
        assert interrupted["details"]["reason"] == "server_restarted"
        back = next(e for e in mine if e["event"] == "party_waiting" and e["details"].get("returning"))
        assert back["details"]["notice_confirmed_seq"] == confirmed["seq"]
        assert interrupted["seq"] < back["seq"]
        readmitted = [e for e in mine if e["event"] == "party_admitted" and e["seq"] > back["seq"]]
        assert len(readmitted) == 1 and readmitted[0]["actor"].startswith("user:")
        waited = [e["event"] for e in events if e["party_id"] == waiter_id]
        assert waited.count("notice_confirmed") == 2 and "party_admitted" not in waited, waited
    finally:
        await api.close()
        for browser in browsers:
            await browser.close()
        await server.stop()
