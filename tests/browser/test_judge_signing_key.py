"""A judge uploads their own PKCS#12 on the console, sees the certificate, then signs an act with their
password: the act names the judge and pyHanko validates it against the judge's CA; a wrong password is
refused with its message."""

from __future__ import annotations

import sys
from io import BytesIO
from pathlib import Path

import pytest
from browser_harness import STAFF_PASSWORD, LiveServer, assert_all_text_from_catalog, launch, t, watch_console
from cryptography.hazmat.primitives import serialization
from playwright.async_api import Playwright, expect
from pyhanko.keys import load_cert_from_pemder
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import async_validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from hearing_server.domain.party import StaffRole

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "acts"))
from judge_certs import JUDGE_NAME, PASSPHRASE, issue  # noqa: E402
from pdfs import make_pdf  # noqa: E402


@pytest.mark.browser
@pytest.mark.slow
async def test_judge_uploads_a_key_and_signs_with_their_password(
    server: LiveServer, playwright: Playwright, tmp_path: Path
) -> None:
    from browser_harness import desktop

    issued = issue()
    hearing = await server.schedule(case="2-881/2026", notice_language="kk")
    judge = await server.add_staff("judge3", StaffRole.JUDGE)
    browser = await launch(playwright)
    try:
        page = await (await desktop(browser, "kk")).new_page()
        problems: list[str] = []
        watch_console(page, problems)
        await page.goto(f"{server.base_url}/login?next=/console/%3Fhearing%3D{hearing['id']}")
        await page.fill("#login-username", judge)
        await page.fill("#login-password", STAFF_PASSWORD)
        await page.click("#login-submit")
        await expect(page.locator("#key-card")).to_be_visible()
        await expect(page.locator("#key-none")).to_be_visible()
        await expect(page.locator("#act-password-field")).to_be_hidden()

        # A wrong passphrase is refused with its message; the right one shows the certificate.
        p12 = {"name": "judge.p12", "mimeType": "application/x-pkcs12", "buffer": issued.p12}
        await page.set_input_files("#key-file", p12)
        await page.fill("#key-passphrase", "not the passphrase")
        await page.fill("#key-password", STAFF_PASSWORD)
        await page.click("#key-submit")
        await expect(page.locator("#key-error")).to_have_text(t("kk", "api_error.wrong_passphrase"))
        await page.set_input_files("#key-file", p12)
        await page.fill("#key-passphrase", PASSPHRASE)
        await page.fill("#key-password", STAFF_PASSWORD)
        await page.click("#key-submit")
        await expect(page.locator("#key-facts")).to_contain_text(JUDGE_NAME)
        await expect(page.locator("#key-none")).to_be_hidden()
        await expect(page.locator("#act-password-field")).to_be_visible()

        # Signing asks for the password: a wrong one signs nothing.
        await page.fill("#act-title", "Сот шешімі")
        pdf = {"name": "sheshim.pdf", "mimeType": "application/pdf", "buffer": make_pdf()}
        await page.set_input_files("#act-file", pdf)
        await page.fill("#act-password", "Бұл қате құпиясөз")
        await page.click("#act-submit")
        await expect(page.locator("#act-error")).to_have_text(t("kk", "api_error.signing_password_wrong"))
        await page.fill("#act-password", STAFF_PASSWORD)
        await page.click("#act-submit")
        item = page.locator("#acts-staff-list li")
        await expect(item).to_have_count(1)
        await expect(item).to_contain_text(JUDGE_NAME)
        await assert_all_text_from_catalog(page, "kk")
        async with page.expect_download() as caught:
            await item.locator("a").click()
        signed = (await (await caught.value).path()).read_bytes()
        assert not problems, problems
    finally:
        await browser.close()

    ca_path = tmp_path / "judge-ca.pem"
    ca_path.write_bytes(issued.ca_cert.public_bytes(serialization.Encoding.PEM))
    [signature] = PdfFileReader(BytesIO(signed)).embedded_signatures
    status = await async_validate_pdf_signature(
        signature, ValidationContext(trust_roots=[load_cert_from_pemder(str(ca_path))])
    )
    assert status.bottom_line and status.signing_cert.subject.native["common_name"] == JUDGE_NAME
    events = [e.event for e in await server.events(hearing["id"])]
    assert events.count("act_signing_failed") == 1 and events.count("act_signed") == 1
