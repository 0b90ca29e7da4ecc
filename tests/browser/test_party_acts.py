"""A party fetches a signed court act from their own link's page on a phone: during the hearing and, with the
same link, after the hearing is over and sealed; the downloaded file validates with pyHanko."""

from __future__ import annotations

import asyncio
import hashlib
import sys
from io import BytesIO
from pathlib import Path

import aiohttp
import pytest
from browser_harness import (
    STAFF_PASSWORD,
    LiveServer,
    assert_all_text_from_catalog,
    launch,
    phone,
    screenshot,
    t,
    watch_console,
)
from playwright.async_api import Playwright, expect
from pyhanko.keys import load_cert_from_pemder
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import async_validate_pdf_signature
from pyhanko_certvalidator import ValidationContext
from sqlalchemy import update

from hearing_server.domain.party import StaffRole
from hearing_server.record.context import SEALER
from hearing_server.store.db import SESSIONS
from hearing_server.store.models import Hearing

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "acts"))
from pdfs import make_pdf  # noqa: E402


async def sign_as_judge(server: LiveServer, hearing_id: str, title: str) -> dict[str, object]:
    """The judge uploads an act through the API (the console page for it is not built yet)."""
    judge = await server.add_staff("judge1", StaffRole.JUDGE)
    async with aiohttp.ClientSession(
        base_url=server.base_url, cookie_jar=aiohttp.CookieJar(unsafe=True)
    ) as http:
        async with http.post("/api/v1/auth/login", json={"username": judge, "password": STAFF_PASSWORD}) as r:
            csrf = (await r.json())["csrf_token"]
        async with http.post(
            f"/api/v1/hearings/{hearing_id}/acts",
            params={"title": title, "file_name": "sheshim.pdf"},
            data=make_pdf("Sheshim"),
            headers={"Content-Type": "application/pdf", "X-CSRF-Token": csrf},
        ) as r:
            assert r.status == 201, await r.text()
            return dict(await r.json())


@pytest.mark.browser
@pytest.mark.slow
async def test_party_downloads_the_signed_act_with_their_link(
    server: LiveServer, playwright: Playwright, tmp_path: Path
) -> None:
    hearing = await server.schedule(case="2-733/2026", notice_language="kk")
    party_id, url = await server.invite(hearing["id"], "Сапарова Айгүл", role="plaintiff", language="kk")
    act = await sign_as_judge(server, hearing["id"], "Сот шешімі")

    browser = await launch(playwright)
    try:
        context = await phone(browser, playwright, "kk")
        page = await context.new_page()
        problems: list[str] = []
        watch_console(page, problems)
        await page.goto(url)
        await expect(page.locator("#d-case")).to_have_text("2-733/2026")
        item = page.locator(f"#acts-list li[data-act-id='{act['id']}']")
        await expect(item).to_contain_text("Сот шешімі")
        await expect(page.locator("#acts-title")).to_have_text(t("kk", "acts.title"))
        await expect(item.locator("[data-valid]")).to_have_text(t("kk", "acts.valid"))
        await assert_all_text_from_catalog(page, "kk")
        await screenshot(page, "acts", "kk", "details")
        async with page.expect_download() as caught:
            await item.locator("a").click()
        download = await caught.value
        assert download.suggested_filename == "sheshim.pdf"
        signed = await asyncio.to_thread(Path(await download.path()).read_bytes)
        assert hashlib.sha256(signed).hexdigest() == act["signed_sha256"]
        assert not problems, problems

        # After the hearing (ended and sealed) the link no longer joins, but still brings the act.
        async with server.app[SESSIONS]() as db, db.begin():
            await db.execute(update(Hearing).where(Hearing.id == hearing["id"]).values(status="ended"))
        await server.app[SEALER].seal(hearing["id"])
        later = await context.new_page()
        await later.goto(url)
        await expect(later.locator("#error-title")).to_have_text(
            t("kk", "party_error.invitation_expired_title")
        )
        await expect(later.locator(f"#acts-list li[data-act-id='{act['id']}']")).to_be_visible()
        await screenshot(later, "acts", "kk", "after-seal")
    finally:
        await browser.close()

    [signature] = PdfFileReader(BytesIO(signed)).embedded_signatures
    status = await async_validate_pdf_signature(
        signature, ValidationContext(trust_roots=[load_cert_from_pemder(str(server.config.court_cert_path))])
    )
    assert status.bottom_line and status.intact and status.valid and status.trusted
    events = [e.event for e in await server.events(hearing["id"])]
    assert "act_signed" in events and events.count("act_delivered") == 1
    assert events.index("act_delivered") < events.index("hearing_sealed")


@pytest.mark.browser
@pytest.mark.slow
async def test_judge_signs_an_act_in_the_console(server: LiveServer, playwright: Playwright) -> None:
    from browser_harness import desktop
    from pdfs import with_javascript

    hearing = await server.schedule(case="2-734/2026", notice_language="ru")
    judge = await server.add_staff("judge2", StaffRole.JUDGE)
    browser = await launch(playwright)
    try:
        page = await (await desktop(browser, "ru")).new_page()
        problems: list[str] = []
        watch_console(page, problems)
        await page.goto(f"{server.base_url}/login?next=/console/%3Fhearing%3D{hearing['id']}")
        await page.fill("#login-username", judge)
        await page.fill("#login-password", STAFF_PASSWORD)
        await page.click("#login-submit")
        await expect(page.locator("#detail-case")).to_have_text("2-734/2026")
        await expect(page.locator("#act-form")).to_be_visible()
        await expect(page.locator("#acts-empty")).to_be_visible()

        # A PDF with JavaScript is refused with a clear message.
        await page.fill("#act-title", "Определение")
        await page.set_input_files(
            "#act-file", {"name": "bad.pdf", "mimeType": "application/pdf", "buffer": with_javascript()}
        )
        await page.click("#act-submit")
        await expect(page.locator("#act-error")).to_have_text(t("ru", "api_error.pdf_active_content"))

        await page.set_input_files(
            "#act-file", {"name": "opredelenie.pdf", "mimeType": "application/pdf", "buffer": make_pdf()}
        )
        await page.click("#act-submit")
        item = page.locator("#acts-staff-list li")
        await expect(item).to_have_count(1)
        await expect(item).to_contain_text("Определение")
        await expect(item).to_contain_text("Алматы қаласының №2 аудандық соты")
        await assert_all_text_from_catalog(page, "ru")
        await screenshot(page, "acts", "ru", "console")
        async with page.expect_download() as caught:
            await item.locator("a").click()
        assert (await caught.value).suggested_filename == "opredelenie.pdf"
        assert not problems, problems
    finally:
        await browser.close()
    events = [e.event for e in await server.events(hearing["id"])]
    assert events.count("act_signed") == 1


async def test_judge_signs_an_act_for_a_sealed_hearing_as_an_addendum(
    server: LiveServer, playwright: Playwright
) -> None:
    from browser_harness import desktop

    from hearing_server.config import CONFIG
    from recording.verify import verify_hearing

    hearing = await server.schedule(case="2-735/2026", notice_language="kk")
    judge = await server.add_staff("judge3", StaffRole.JUDGE)
    async with server.app[SESSIONS]() as db, db.begin():
        await db.execute(update(Hearing).where(Hearing.id == hearing["id"]).values(status="ended"))
    outcome = await server.app[SEALER].seal(hearing["id"])
    browser = await launch(playwright)
    try:
        page = await (await desktop(browser, "kk")).new_page()
        problems: list[str] = []
        watch_console(page, problems)
        await page.goto(f"{server.base_url}/login?next=/console/%3Fhearing%3D{hearing['id']}")
        await page.fill("#login-username", judge)
        await page.fill("#login-password", STAFF_PASSWORD)
        await page.click("#login-submit")
        await expect(page.locator("#detail-case")).to_have_text("2-735/2026")
        await expect(page.locator("#act-form")).to_be_visible()
        await expect(page.locator("#act-addendum-hint")).to_have_text(t("kk", "acts.addendum_hint"))
        await page.fill("#act-title", "Қосымша шешім")
        await page.set_input_files(
            "#act-file", {"name": "sheshim.pdf", "mimeType": "application/pdf", "buffer": make_pdf()}
        )
        await page.click("#act-submit")
        item = page.locator("#acts-staff-list li")
        await expect(item).to_have_count(1)
        await expect(item).to_contain_text("Қосымша шешім")
        await assert_all_text_from_catalog(page, "kk")
        await screenshot(page, "acts", "kk", "console-sealed")
        assert not problems, problems
    finally:
        await browser.close()
    report = await asyncio.to_thread(verify_hearing, outcome.folder, server.app[CONFIG].court_cert_path)
    assert report.valid and report.addenda == 1, report.problems
    assert (outcome.folder / "addenda" / "1" / "manifest.json.p7s").exists()
