"""The party's phone flow in two languages: link → details → device check → notice → waiting room →
admitted → in the hearing (recording, recess, court mute) → the end; and the error screens."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from browser_harness import (
    FakeMedia,
    LiveServer,
    OperatorSocket,
    assert_all_text_from_catalog,
    event_types,
    launch,
    phone,
    screenshot,
    t,
    visible_text,
    watch_console,
)
from playwright.async_api import Page, Playwright, expect

from hearing_server.auth.tokens import new_token
from signaling.notice import render_notice

GREEN = FakeMedia("green", (0, 200, 0), 660.0)
# What the browser answers when the user (or a policy) has blocked the camera and microphone for the site.
BLOCKED_CAMERA_JS = (
    "navigator.mediaDevices.getUserMedia = () =>"
    " Promise.reject(new DOMException('denied', 'NotAllowedError'));"
)


async def notice_shown(page: Page, language: str, server: LiveServer, case_number: str) -> str:
    """Wait until the page shows the notice in ``language``; return its text as the server renders it."""
    expected = render_notice(language, case_number=case_number, court=server.config.court_name)
    await expect(page.locator("#notice-text")).to_have_attribute("lang", language)
    first_line = expected.text.strip().splitlines()[0].strip()
    await expect(page.locator("#notice-text")).to_contain_text(first_line)
    return expected.sha256


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.media
@pytest.mark.parametrize("language", ["kk", "ru"])
async def test_party_goes_from_link_to_the_end_of_the_hearing(
    server: LiveServer, playwright: Playwright, tmp_path: Path, language: str
) -> None:
    hearing = await server.schedule(notice_language="ru")
    party_id, url = await server.invite(hearing["id"], "Сәрсенбаев Ерлан")
    operator = OperatorSocket(server, hearing["id"])
    await operator.connect()
    browser = await launch(playwright, GREEN, tmp_path / "media")
    try:
        # Kazakh on the smallest supported screen (360×640), Russian on a Pixel 7.
        small = {"width": 360, "height": 640} if language == "kk" else None
        context = await phone(browser, playwright, language, viewport=small)
        page = await context.new_page()
        problems: list[str] = []
        watch_console(page, problems)
        flow = "party"

        # 1. The hearing's details, in the browser's language.
        await page.goto(url)
        await expect(page.locator("#screen-details")).to_be_visible()
        assert await page.evaluate("document.documentElement.lang") == language
        await expect(page.locator("#details-title")).to_have_text(t(language, "details.title"))
        await expect(page.locator("#d-case")).to_have_text(hearing["case_number"])
        await expect(page.locator("#d-judge")).to_have_text(hearing["presiding_judge"])
        await expect(page.locator("#d-role")).to_have_text(t(language, "role.witness"))
        start_local = hearing_local_time(hearing["scheduled_start"], server)
        assert start_local in await visible_text(page, "#d-when")
        await assert_all_text_from_catalog(page, language)
        await assert_fits_width(page)
        await screenshot(page, flow, language, "details")

        # 2. Device check: camera preview plays, the microphone meter moves.
        await page.click("#details-continue")
        await expect(page.locator("#screen-device")).to_be_visible()
        await expect(page.locator("#device-continue")).to_be_enabled()
        await page.wait_for_function("() => document.getElementById('device-preview').videoWidth > 0")
        await page.wait_for_function("() => document.getElementById('device-meter').value > 0")
        await assert_all_text_from_catalog(page, language)
        await assert_fits_width(page)
        await screenshot(page, flow, language, "device")

        # 3. The recording notice: Continue stays disabled until the box is ticked.
        await page.click("#device-continue")
        await expect(page.locator("#screen-notice")).to_be_visible()
        sha = await notice_shown(page, language, server, hearing["case_number"])
        await expect(page.locator("#notice-continue")).to_be_disabled()
        await page.check("#notice-agree")
        await expect(page.locator("#notice-continue")).to_be_enabled()
        if language == "ru":
            # Switching to English shows the notice in English and un-ticks the box; back to Russian.
            await page.click("button[data-language='en']")
            await notice_shown(page, "en", server, hearing["case_number"])
            await expect(page.locator("#notice-title")).to_have_text(t("en", "notice.title"))
            await expect(page.locator("#notice-agree")).not_to_be_checked()
            await expect(page.locator("#notice-continue")).to_be_disabled()
            await assert_all_text_from_catalog(page, "en")
            await screenshot(page, flow, "en", "notice")
            await page.click("button[data-language='ru']")
            sha = await notice_shown(page, "ru", server, hearing["case_number"])
            await page.check("#notice-agree")
        await assert_all_text_from_catalog(page, language)
        await screenshot(page, flow, language, "notice")
        await page.click("#notice-continue")

        # 4. The waiting room until the secretary admits.
        await expect(page.locator("#screen-waiting")).to_be_visible()
        await operator.waiting_party(party_id)
        await assert_all_text_from_catalog(page, language)
        await screenshot(page, flow, language, "waiting")

        # 5. Admitted: in the hearing; the recording indicator once the hearing starts.
        await operator.send("admit", party_id=party_id)
        await expect(page.locator("#screen-hearing")).to_be_visible()
        await expect(page.locator("#banner-recording")).to_be_hidden()
        await operator.send("start")
        await expect(page.locator("#banner-recording")).to_be_visible()
        await expect(page.locator("#banner-recording")).to_contain_text(t(language, "banner.recording"))
        await expect(
            page.locator("#stage .tile[data-role='courtroom']")
        ).to_be_visible()  # the court is on the stage
        await page.wait_for_function("() => window.hearingClient.call.connectionState === 'connected'")
        await assert_all_text_from_catalog(page, language)
        await assert_fits_width(page)
        await screenshot(page, flow, language, "hearing")

        # The network drops (the socket stops answering, as the ping check finds): the page says it is
        # reconnecting while offline, then carries on without a second admission.
        await context.set_offline(True)
        await page.evaluate("() => window.hearingClient.signaling._abandon()")
        await expect(page.locator("#banner-reconnecting")).to_contain_text(t(language, "banner.reconnecting"))
        await assert_all_text_from_catalog(page, language)
        await screenshot(page, flow, language, "reconnecting")
        await context.set_offline(False)
        await expect(page.locator("#banner-reconnecting")).to_be_hidden(timeout=20_000)
        await expect(page.locator("#screen-hearing")).to_be_visible()
        await page.wait_for_function("() => window.hearingClient.call.connectionState === 'connected'")

        # Camera off and on; audio only (the court sees it) and back to video.
        await page.click("#ctl-camera")
        await expect(page.locator("#ctl-camera")).to_have_attribute("aria-pressed", "true")
        await expect(page.locator("#self-view")).to_be_hidden()
        await page.click("#ctl-camera")
        await expect(page.locator("#ctl-camera")).to_have_attribute("aria-pressed", "false")
        await page.click("#ctl-audio-only")
        await expect(page.locator("#ctl-audio-only")).to_have_attribute("aria-pressed", "true")
        await expect(page.locator("#ctl-camera")).to_be_disabled()
        await operator.expect("state", lambda m: audio_only_of(m, party_id) is True)
        await page.click("#ctl-audio-only")
        await expect(page.locator("#self-view")).to_be_visible()
        await operator.expect("state", lambda m: audio_only_of(m, party_id) is False)

        # Recess and resume.
        await operator.send("recess")
        await expect(page.locator("#banner-recess")).to_have_text(t(language, "banner.recess"))
        await expect(page.locator("#banner-recording-paused")).to_be_visible()
        await assert_all_text_from_catalog(page, language)
        await screenshot(page, flow, language, "recess")
        await operator.send("resume")
        await expect(page.locator("#banner-recess")).to_be_hidden()
        await expect(page.locator("#banner-recording")).to_be_visible()

        # The court mutes the microphone, lifts the mute, and asks to unmute.
        await operator.send("mute", party_id=party_id, kind="audio")
        await expect(page.locator("#banner-court-muted")).to_have_text(t(language, "banner.court_muted"))
        await expect(page.locator("#ctl-mic")).to_be_disabled()
        assert await page.evaluate("window.hearingClient.localStream.getAudioTracks()[0].enabled") is False
        await screenshot(page, flow, language, "muted")
        await operator.send("unmute", party_id=party_id, kind="audio")
        await expect(page.locator("#banner-court-muted")).to_be_hidden()
        await expect(page.locator("#ctl-mic")).to_be_enabled()
        await page.click("#ctl-mic")  # the party mutes themselves...
        await expect(page.locator("#ctl-mic")).to_have_attribute("aria-pressed", "true")
        await operator.send("request_unmute", party_id=party_id)
        await expect(page.locator("#banner-unmute-request")).to_be_visible()
        await assert_all_text_from_catalog(page, language)
        await page.click("#unmute-accept")  # ...and follows the court's request
        await expect(page.locator("#ctl-mic")).to_have_attribute("aria-pressed", "false")

        # 6. The end.
        await operator.send("end")
        await expect(page.locator("#screen-end")).to_be_visible()
        await expect(page.locator("#end-title")).to_have_text(t(language, "end.ended_title"))
        await expect(page.locator("#banner-recording")).to_be_hidden()
        await assert_all_text_from_catalog(page, language)
        await screenshot(page, flow, language, "end")
        assert not problems, problems
    finally:
        await operator.close()
        await browser.close()

    events = await server.events(hearing["id"])
    kinds = event_types(events)
    for kind in (
        "link_opened",
        "notice_shown",
        "notice_confirmed",
        "party_waiting",
        "party_admitted",
        "party_joined",
        "party_disconnected",
        "party_reconnected",
        "hearing_started",
        "recess_called",
        "hearing_resumed",
        "party_muted",
        "party_unmuted",
        "unmute_requested",
        "hearing_ended",
    ):
        assert kind in kinds, (kind, kinds)
    confirmed = next(e for e in events if e.event == "notice_confirmed")
    assert confirmed.details["language"] == language
    assert confirmed.details["notice_sha256"] == sha
    shown = [e.details.get("language") for e in events if e.event == "notice_shown"]
    assert shown[0] == language
    if language == "ru":
        assert "en" in shown
    tracks = server.config.recordings_dir.rglob(f"{hearing['id']}/tracks/{party_id}-video-*.webm")
    assert any(path.stat().st_size > 0 for path in tracks), "the party's camera was not recorded"


def audio_only_of(state: dict, party_id: str) -> bool | None:
    """Whether the court's view of ``party_id`` is audio-only (None when not in the hearing)."""
    return next((p["audio_only"] for p in state["participants"] if p["id"] == party_id), None)


def hearing_local_time(iso: str, server: LiveServer) -> str:
    """HH:MM of ``iso`` in the court's time zone (what the page must show)."""
    from datetime import datetime

    moment = datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(ZoneInfo(server.config.timezone))
    return moment.strftime("%H:%M")


async def assert_fits_width(page: Page) -> None:
    """Nothing sticks out sideways on the phone, and every control is a comfortable touch target."""
    overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow}px wider than the screen"
    small = await page.evaluate(
        """() => [...document.querySelectorAll('button, input[type=checkbox], a.button')]
            .filter((e) => e.checkVisibility())
            .map((e) => { const r = (e.type === 'checkbox' ? e.closest('label') : e).getBoundingClientRect();
                          return [e.id || e.textContent.trim(), Math.round(r.width), Math.round(r.height)]; })
            .filter(([, w, h]) => w < 44 || h < 44)"""
    )
    assert not small, f"touch targets under 44px: {small}"


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.parametrize("language", ["kk", "ru"])
async def test_party_sees_plain_words_when_the_link_cannot_be_used(
    server: LiveServer, playwright: Playwright, tmp_path: Path, language: str
) -> None:
    hearing = await server.schedule()
    later = await server.schedule(start_in=timedelta(hours=3), case="2-999/2026")
    expired_id, expired_url = await server.invite(hearing["id"], "Expired Person")
    await server.expire_links(expired_id)
    revoked_id, revoked_url = await server.invite(hearing["id"], "Revoked Person")
    await server.revoke(hearing["id"], revoked_id)
    _, early_url = await server.invite(later["id"], "Early Person")
    cases = {
        "expired": (expired_url, "invitation_expired"),
        "revoked": (revoked_url, "invitation_revoked"),
        "invalid": (f"{server.base_url}/join/{new_token()}", "invitation_invalid"),
        "malformed": (f"{server.base_url}/join/abc", "invitation_invalid"),
        "not-open": (early_url, "hearing_not_open"),
    }
    browser = await launch(playwright)
    try:
        context = await phone(browser, playwright, language)
        page = await context.new_page()
        problems: list[str] = []
        watch_console(page, problems)
        for screen, (url, code) in cases.items():
            await page.goto(url)
            await expect(page.locator("#screen-error")).to_be_visible()
            await expect(page.locator("#error-title")).to_have_text(t(language, f"party_error.{code}_title"))
            await expect(page.locator("#error-text")).to_have_text(t(language, f"party_error.{code}_text"))
            if code == "hearing_not_open":
                opens_at = hearing_local_time(
                    (_parse(later["scheduled_start"]) - timedelta(minutes=30)).isoformat(), server
                )
                await expect(page.locator("#error-opens")).to_contain_text(opens_at)
                await expect(page.locator("#error-retry")).to_be_visible()
            await assert_all_text_from_catalog(page, language)
            if screen != "malformed":
                await screenshot(page, "party", language, f"error-{screen}")

        # Camera and microphone blocked: the device check explains how to allow them on Android and iPhone.
        _, url = await server.invite(hearing["id"], "Blocked Camera")
        blocked = await context.new_page()
        watch_console(blocked, problems)
        await blocked.add_init_script(BLOCKED_CAMERA_JS)
        await blocked.goto(url)
        await blocked.click("#details-continue")
        await expect(blocked.locator("#device-problem")).to_be_visible()
        await expect(blocked.locator("#device-problem-title")).to_have_text(
            t(language, "device.problem_blocked_title")
        )
        await expect(blocked.locator("#device-howto")).to_be_visible()
        await expect(blocked.locator("#device-continue")).to_be_disabled()
        await assert_all_text_from_catalog(blocked, language)
        await screenshot(blocked, "party", language, "error-camera-blocked")
        assert not problems, problems
    finally:
        await browser.close()


def _parse(iso: str):  # noqa: ANN202
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00"))
