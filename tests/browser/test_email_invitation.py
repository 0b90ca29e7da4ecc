"""The secretary sends a party's link by e-mail from the console: the mail reaches a real SMTP server
(aiosmtpd on 127.0.0.1) in Kazakh, the party opens the link from it on a phone, the console shows delivery."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

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
from sqlalchemy import select

from hearing_server.store.db import SESSIONS
from hearing_server.store.models import Notification

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "notify"))
from notify_peers import SmtpPeer, rfc2047  # noqa: E402


async def _status(server: LiveServer) -> str | None:
    async with server.app[SESSIONS]() as db:
        return (await db.execute(select(Notification.status))).scalar()


@pytest.mark.browser
@pytest.mark.slow
async def test_secretary_sends_the_link_by_email_and_the_party_opens_it(
    mail_server: LiveServer, smtp: SmtpPeer, playwright: Playwright
) -> None:
    language = "kk"
    username = await mail_server.add_staff("secretary1")
    hearing = await mail_server.schedule(case="2-512/2026", notice_language="kk")
    browser = await launch(playwright)
    try:
        page = await (await desktop(browser, language)).new_page()
        problems: list[str] = []
        watch_console(page, problems)
        await page.goto(f"{mail_server.base_url}/login?next=/console/%3Fhearing%3D{hearing['id']}")
        await page.fill("#login-username", username)
        await page.fill("#login-password", STAFF_PASSWORD)
        await page.click("#login-submit")
        await expect(page.locator("#detail-case")).to_have_text("2-512/2026")

        await page.fill("#p-name", "Сапарова Айгүл")
        await page.select_option("#p-role", "plaintiff")
        await page.select_option("#p-language", "kk")
        await page.fill("#p-contact", "aigul@example.kz")
        await page.click("#party-submit")
        party_row = page.locator("#parties-body tr", has_text="Сапарова Айгүл")
        await expect(party_row).to_have_count(1)

        # The contact is an e-mail address: e-mail is offered, with the address filled in.
        await party_row.locator("button[data-action='issue']").click()
        await expect(page.locator("#issue-email")).to_be_checked()
        await expect(page.locator("#issue-sms")).to_be_disabled()
        await expect(page.locator("#issue-to-label")).to_have_text(t(language, "send.recipient_email"))
        await expect(page.locator("#issue-to")).to_have_value("aigul@example.kz")
        await assert_all_text_from_catalog(page, language)
        await screenshot(page, "email", language, "send-dialog")

        # A mistyped address is refused with a clear message, and nothing is sent.
        await page.fill("#issue-to", "aigul@example")
        await page.click("#issue-submit")
        await expect(page.locator("#issue-error")).to_have_text(t(language, "api_error.invalid_email"))
        await page.fill("#issue-to", "aigul@example.kz")
        await page.click("#issue-submit")
        await expect(page.locator("#link-panel")).to_be_visible()
        await expect(page.locator("#link-sending")).to_contain_text("aigul@example.kz")
        url = await page.locator("#link-url").input_value()

        [mail] = await smtp.drop.wait_for(1)
        assert mail.rcpt_tos == ["aigul@example.kz"]
        assert rfc2047(mail.raw_header("Subject")).startswith(
            "Алматы қаласының №2 аудандық соты: № 2-512/2026 іс бойынша сот отырысы, "
        )
        assert mail.text.startswith("Құрметті Сапарова Айгүл!")
        assert url in mail.text.splitlines()

        # The party's row shows that the court's mail server accepted the message (once the worker has
        # written the acceptance down, a moment after the server answered).
        async with asyncio.timeout(10):
            while True:  # polls the database: no event to wait on
                if await _status(mail_server) == "sent":
                    break
                await asyncio.sleep(0.05)
        await page.reload()
        party_row = page.locator("#parties-body tr", has_text="Сапарова Айгүл")
        delivery = party_row.locator(".delivery")
        await expect(delivery).to_have_attribute("data-delivery", "sent")
        await expect(delivery).to_contain_text(t(language, "delivery.status_sent"))
        await expect(delivery).to_contain_text("aigul@example.kz")
        await assert_all_text_from_catalog(page, language)
        await screenshot(page, "email", language, "delivered")
        assert not problems, problems

        # The party opens the link from the mail on a phone: their hearing, in Kazakh.
        link = next(line for line in mail.text.splitlines() if "/join/" in line)
        party = await (await phone(browser, playwright, "kk")).new_page()
        await party.goto(link)
        await expect(party.locator("#d-case")).to_have_text("2-512/2026")
        await expect(party.locator("#d-role")).to_have_text(t("kk", "role.plaintiff"))
    finally:
        await browser.close()
    events = [e.event for e in await mail_server.events(hearing["id"])]
    assert events.count("notification_sent") == 1 and "notification_queued" in events
    assert events.index("party_invited") < events.index("notification_sent")
    assert "link_opened" in events
