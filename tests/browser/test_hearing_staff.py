"""Per-hearing staff in the browser: another operator sees the hearing read-only in the console (with the note
in their language), its secretary runs it; the party's page says who invited them."""

from __future__ import annotations

import re
from typing import Any

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
from playwright.async_api import Browser, Page, Playwright, expect

from hearing_server.domain.party import StaffRole


async def staffed_hearing(server: LiveServer) -> dict[str, Any]:
    """A hearing with judge1 presiding and secretary1 as its secretary (scheduled by secretary1)."""
    await server.add_staff("secretary1")
    await server.add_staff("judge1", StaffRole.JUDGE)
    await server.add_staff("operator2")
    staff = {m["username"]: m["id"] for m in (await server.api("GET", "/api/v1/staff"))["items"]}
    hearing = await server.schedule()
    return dict(
        await server.api(
            "PATCH",
            f"/api/v1/hearings/{hearing['id']}",
            {"presiding_judge_id": staff["judge1"], "secretary_id": staff["secretary1"]},
            expect=200,
        )
    )


async def console_as(
    browser: Browser, server: LiveServer, language: str, username: str, hearing_id: str
) -> Page:
    """The console of ``hearing_id`` for ``username``, logged in through the login page."""
    page = await (await desktop(browser, language)).new_page()
    await page.goto(f"{server.base_url}/console/?hearing={hearing_id}")
    await expect(page).to_have_url(re.compile(r"/login\?next="))
    await page.fill("#login-username", username)
    await page.fill("#login-password", STAFF_PASSWORD)
    await page.click("#login-submit")
    await expect(page.locator("#detail")).to_be_visible()
    return page


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.parametrize("language", ["kk", "en"])
async def test_another_operator_sees_the_hearing_read_only(
    server: LiveServer, playwright: Playwright, language: str
) -> None:
    hearing = await staffed_hearing(server)
    browser = await launch(playwright)
    try:
        other = await console_as(browser, server, language, "operator2", hearing["id"])
        problems: list[str] = []
        watch_console(other, problems)
        note = other.locator("#detail-read-only")
        await expect(note).to_be_visible()
        await expect(note).to_have_text(t(language, "detail.read_only"))
        await expect(other.locator("#detail-judge")).to_have_text("Judge1")
        await expect(other.locator("#detail-secretary")).to_have_text("Secretary1")
        for control in ("#detail-run", "#party-form", "#staff-form", "#act-form"):
            await expect(other.locator(control)).to_be_hidden()
        await assert_all_text_from_catalog(other, language)
        await screenshot(other, "staff", language, "read_only")
        # Opening its courtroom console by address: the server refuses the seat and the page says why.
        await other.goto(f"{server.base_url}/console/hearing/{hearing['id']}")
        await expect(other.locator("#ended-panel")).to_be_visible()
        await expect(other.locator("#ended-text")).to_have_text(t(language, "detail.read_only"))

        own = await console_as(browser, server, language, "secretary1", hearing["id"])
        await expect(own.locator("#detail-read-only")).to_be_hidden()
        await expect(own.locator("#detail-run")).to_be_visible()
        await expect(own.locator("#party-form")).to_be_visible()
        await expect(own.locator("#staff-form")).to_be_visible()
        await expect(own.locator("#d-secretary option:checked")).to_have_text("Secretary1")
        await expect(own.locator("#d-judge-account option:checked")).to_have_text("Judge1")

        # The secretary schedules the next hearing choosing the judge and themselves from the staff lists.
        await own.click("#schedule-open")
        await own.fill("#s-case", "2-778/2026")
        await own.fill("#s-courtroom", "Зал №3")
        await own.fill("#s-title", "Нұрланов Д. v. ТОО «Жол»")
        await own.fill("#s-date", "2099-06-01")
        await own.fill("#s-time", "10:00")
        await own.select_option("#s-judge-account", label="Judge1")
        await own.select_option("#s-secretary", label="Secretary1")
        await assert_all_text_from_catalog(own, language)
        await own.click("#schedule-submit")
        await expect(own.locator("#detail-case")).to_have_text("2-778/2026")
        await expect(own.locator("#detail-judge")).to_have_text("Judge1")
        await expect(own.locator("#detail-secretary")).to_have_text("Secretary1")
        await expect(own.locator("#detail-read-only")).to_be_hidden()

        # Handing the hearing to another secretary from its page: the old one then sees it read-only.
        await own.select_option("#d-secretary", label="Operator2")
        await own.click("#staff-submit")
        await expect(own.locator("#detail-secretary")).to_have_text("Operator2")
        await expect(own.locator("#detail-read-only")).to_be_visible()
        await expect(own.locator("#detail-run")).to_be_hidden()
        events = [e.event for e in await server.events(await own.evaluate("window.location.search.slice(9)"))]
        assert events[-2:] == ["hearing_updated", "staff_assigned"]
        assert problems == []
    finally:
        await browser.close()


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.parametrize("language", ["kk", "ru", "en"])
async def test_the_party_page_says_who_invited_them(
    server: LiveServer, playwright: Playwright, language: str
) -> None:
    hearing = await staffed_hearing(server)
    _party_id, url = await server.invite(hearing["id"], "Сәрсенбаев Ерлан")
    browser = await launch(playwright)
    try:
        page = await (await phone(browser, playwright, language)).new_page()
        problems: list[str] = []
        watch_console(page, problems)
        await page.goto(url)
        await expect(page.locator("#screen-details")).to_be_visible()
        expected = (
            t(language, "details.invited_by_secretary")
            .replace("{court}", server.config.court_name)
            .replace("{name}", "Secretary1")
        )
        await expect(page.locator("#d-invited-by")).to_have_text(expected)
        await assert_all_text_from_catalog(page, language)
        await screenshot(page, "staff", language, "invited_by")
        assert problems == []
    finally:
        await browser.close()
