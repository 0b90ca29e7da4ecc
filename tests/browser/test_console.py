"""The operator console on a desktop: log in, schedule a hearing, add a party, issue its link with a QR
code, see that the link opens the party's page, withdraw it."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from browser_harness import (
    STAFF_PASSWORD,
    LiveServer,
    assert_all_text_from_catalog,
    desktop,
    launch,
    phone,
    screenshot,
    t,
    watch_console,
)
from playwright.async_api import Playwright, expect


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.parametrize("language", ["ru", "en"])
async def test_operator_schedules_a_hearing_and_issues_a_link(
    server: LiveServer, playwright: Playwright, tmp_path: Path, language: str
) -> None:
    username = await server.add_staff("secretary1")
    zone = ZoneInfo(server.config.timezone)
    start = (datetime.now(UTC) + timedelta(minutes=20)).astimezone(zone)
    browser = await launch(playwright)
    try:
        context = await desktop(browser, language)
        await context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.base_url)
        page = await context.new_page()
        problems: list[str] = []
        watch_console(page, problems)
        flow = "console"

        # Staff pages send a visitor without a session to the login page, and back after logging in.
        await page.goto(f"{server.base_url}/console/")
        await expect(page).to_have_url(re.compile(r"/login\?next="))
        await expect(page.locator("h1")).to_have_text(t(language, "login.title"))
        await page.fill("#login-username", username)
        await page.fill("#login-password", "wrong password!")
        await page.click("#login-submit")
        await expect(page.locator("#login-error")).to_have_text(t(language, "api_error.invalid_credentials"))
        await assert_all_text_from_catalog(page, language)
        await screenshot(page, flow, language, "login")
        await page.fill("#login-password", STAFF_PASSWORD)
        await page.click("#login-submit")
        await expect(page).to_have_url(f"{server.base_url}/console/")
        await expect(page.locator("#list-title")).to_have_text(t(language, "hearings.title"))
        await expect(page.locator("#hearings-empty")).to_be_visible()
        await expect(page.locator("#f-date")).to_have_value(datetime.now(zone).strftime("%Y-%m-%d"))  # today

        # Schedule a hearing.
        await page.click("#schedule-open")
        await page.fill("#s-case", "2-777/2026")
        await page.fill("#s-courtroom", "Зал №3")
        await page.fill("#s-title", "Нұрланов Д. v. ТОО «Жол»")
        await page.fill("#s-date", start.strftime("%Y-%m-%d"))
        await page.fill("#s-time", start.strftime("%H:%M"))
        await page.fill("#s-duration", "45")
        await page.select_option("#s-language", "kk")
        await page.fill("#s-judge", "Омарова С. К.")
        await assert_all_text_from_catalog(page, language)
        await screenshot(page, flow, language, "schedule")
        await page.click("#schedule-submit")
        await expect(page.locator("#detail")).to_be_visible()
        await expect(page.locator("#detail-case")).to_have_text("2-777/2026")
        await expect(page.locator("#detail-language")).to_have_text(t(language, "language.kk"))
        await expect(page.locator("#detail-status")).to_have_text(t(language, "status.scheduled"))
        row = page.locator("#hearings-body tr", has_text="2-777/2026")
        await expect(row).to_have_count(1)
        await expect(row).to_contain_text(start.strftime("%H:%M"))
        await expect(page.locator("#detail-when")).to_contain_text(start.strftime("%H:%M"))
        hearing_id = await row.get_attribute("data-hearing-id")
        assert hearing_id

        # Filters: the case-number filter keeps the hearing, another status hides it.
        await page.fill("#f-case", "2-777")
        await page.click("#filters button[type=submit]")
        await expect(page.locator("#hearings-body tr")).to_have_count(1)
        await page.select_option("#f-status", "ended")
        await page.click("#filters button[type=submit]")
        await expect(page.locator("#hearings-empty")).to_be_visible()
        await page.select_option("#f-status", "")
        await page.click("#filters button[type=submit]")
        await expect(page.locator("#hearings-body tr")).to_have_count(1)

        # Add a party.
        await page.fill("#p-name", "Нұрланов Дәурен")
        await page.select_option("#p-role", "plaintiff")
        await page.select_option("#p-language", "kk")
        await page.click("#party-submit")
        party_row = page.locator("#parties-body tr", has_text="Нұрланов Дәурен")
        await expect(party_row).to_have_count(1)
        await expect(party_row).to_contain_text(t(language, "role.plaintiff"))
        await expect(party_row).to_contain_text(t(language, "link.status_none"))
        await assert_all_text_from_catalog(page, language)
        await screenshot(page, flow, language, "detail")

        # Issue the link: the operator is asked how it reaches the party (this server sends no mail or SMS,
        # so handing it over is the only choice), then URL, QR code, copy.
        await party_row.locator("button[data-action='issue']").click()
        await expect(page.locator("#issue-dialog")).to_be_visible()
        await expect(page.locator("#issue-handover")).to_be_checked()
        await expect(page.locator("#issue-email")).to_be_disabled()
        await expect(page.locator("#issue-sms")).to_be_disabled()
        await expect(page.locator("#issue-to-field")).to_be_hidden()
        await assert_all_text_from_catalog(page, language)
        await page.click("#issue-submit")
        await expect(page.locator("#issue-dialog")).to_be_hidden()
        await expect(page.locator("#link-panel")).to_be_visible()
        await expect(page.locator("#link-sending")).to_be_hidden()
        url = await page.locator("#link-url").input_value()
        assert re.fullmatch(re.escape(server.base_url) + r"/join/[A-Za-z0-9_-]{40,}", url), url
        await page.wait_for_function("() => document.getElementById('link-qr').naturalWidth > 100")
        assert (await page.locator("#link-qr").get_attribute("src") or "").startswith("data:image/svg+xml")
        await expect(party_row).to_contain_text(t(language, "link.status_active"))
        await page.click("#link-copy")
        await expect(page.locator("#link-copied")).to_be_visible()
        assert await page.evaluate("() => navigator.clipboard.readText()") == url
        await assert_all_text_from_catalog(page, language)
        await screenshot(page, flow, language, "link")
        assert not problems, problems
    finally:
        await browser.close()

    # The link opens the party's page for this hearing (in the party's language, Kazakh).
    browser = await launch(playwright)
    try:
        party = await (await phone(browser, playwright, "kk")).new_page()
        await party.goto(url)
        await expect(party.locator("#d-case")).to_have_text("2-777/2026")
        await expect(party.locator("#d-role")).to_have_text(t("kk", "role.plaintiff"))
    finally:
        await browser.close()

    # Withdrawing the link (back in the console) stops it working.
    browser = await launch(playwright)
    try:
        context = await desktop(browser, language)
        page = await context.new_page()
        await page.goto(f"{server.base_url}/login?next=/console/%3Fhearing%3D{hearing_id}")
        await page.fill("#login-username", username)
        await page.fill("#login-password", STAFF_PASSWORD)
        await page.click("#login-submit")
        party_row = page.locator("#parties-body tr", has_text="Нұрланов Дәурен")
        await expect(party_row).to_contain_text(t(language, "link.status_active"))
        await party_row.locator("button[data-action='revoke']").click()
        await expect(party_row).to_contain_text(t(language, "link.status_revoked"))
        party = await (await phone(browser, playwright, "kk")).new_page()
        await party.goto(url)
        await expect(party.locator("#error-title")).to_have_text(
            t("kk", "party_error.invitation_revoked_title")
        )

        # The archive is for archivists: an operator is told so (tests/browser/test_archive.py walks it).
        await page.goto(f"{server.base_url}/archive/")
        await expect(page.locator("#no-access-title")).to_have_text(t(language, "archive.no_access_title"))
        await assert_all_text_from_catalog(page, language)
    finally:
        await browser.close()


@pytest.mark.browser
@pytest.mark.slow
async def test_pages_are_served_with_safe_headers_and_module_types(server: LiveServer) -> None:
    import aiohttp

    async with aiohttp.ClientSession(base_url=server.base_url) as http:
        async with http.get("/join/some-token-value-that-is-long-enough", allow_redirects=False) as response:
            assert response.status == 200
            assert response.headers["Cache-Control"] == "no-store"
            assert response.headers["Referrer-Policy"] == "no-referrer"
            assert "script-src 'self'" in response.headers["Content-Security-Policy"]
            html = await response.text()
            assert '<script type="module" src="/static/join/join.js"></script>' in html
            assert " style=" not in html and "onclick" not in html
        for path in ("/static/join/join.js", "/static/shared/signaling.js", "/static/console/hearing.js"):
            async with http.get(path) as response:
                assert response.status == 200
                assert response.content_type in {"text/javascript", "application/javascript"}, (
                    response.content_type
                )
        async with http.get("/static/i18n/kk.json") as response:
            assert response.content_type == "application/json"
        async with http.get("/static/styles/base.css") as response:
            assert response.content_type == "text/css"
        async with http.get("/", allow_redirects=False) as response:
            assert response.status == 302 and response.headers["Location"] == "/console/"
        for page in ("/console/", "/console/hearing/abc", "/archive/"):
            async with http.get(page, allow_redirects=False) as response:
                assert response.status == 302
                assert response.headers["Location"].startswith("/login?next=")
        async with http.get("/login") as response:
            assert response.status == 200
        async with http.get("/static/__init__.py") as response:
            assert response.status == 404  # only the asset folders are public
        async with http.get("/client/settings.json") as response:
            settings = await response.json()
            assert settings["timezone"] == "Asia/Almaty"
            assert settings["languages"] == ["kk", "ru", "en"]
            assert settings["channels"] == ["handover"]
