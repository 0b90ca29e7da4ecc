"""Issue 17 end to end, in one walk: the secretary sends a party's link by e-mail from the console, the mail
reaches the court's SMTP server (aiosmtpd) in Kazakh, the party opens it in Chromium with a fake camera,
checks devices, confirms the notice, waits, is admitted and takes part (media flows), the hearing ends and
is sealed, the presiding judge signs an act on the console with their own key and password, the party gets
a notice by mail and downloads the signed act from their page; pyHanko and pdfsig validate it, and the
archive's export package holds it and passes ``hearing-server archive verify``."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import subprocess
import sys
import zipfile
from io import BytesIO
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from browser_harness import (
    STAFF_PASSWORD,
    FakeMedia,
    LiveServer,
    OperatorSocket,
    desktop,
    launch,
    phone,
    t,
    watch_console,
)
from cryptography.hazmat.primitives import serialization
from playwright.async_api import Page, Playwright, expect
from pyhanko.keys import load_cert_from_pemder
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import async_validate_pdf_signature
from pyhanko_certvalidator import ValidationContext
from sqlalchemy import select

from hearing_server.domain.party import StaffRole
from hearing_server.store.db import SESSIONS
from hearing_server.store.models import Notification, User

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "acts"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "notify"))
from judge_certs import JUDGE_NAME, PASSPHRASE, issue  # noqa: E402
from notify_peers import SmtpPeer, rfc2047  # noqa: E402
from pdfs import make_pdf  # noqa: E402

COURT = "Алматы қаласының №2 аудандық соты"
CASE = "2-1017/2026"
PARTY = "Сапарова Айгүл"
EMAIL = "aigul@example.kz"
ACT_TITLE = "Сот шешімі"
CAMERA = FakeMedia("party", (0, 200, 0), 660.0)

OUTBOUND_JS = """
async () => {
  const publish = window.hearingClient.call._publish;
  const sent = {audio: 0, video: 0, frames: 0};
  if (!publish) return sent;
  for (const entry of (await publish.pc.getStats()).values()) {
    if (entry.type === 'outbound-rtp') {
      sent[entry.kind] += entry.bytesSent || 0;
      if (entry.kind === 'video') sent.frames += entry.framesEncoded || 0;
    }
  }
  return sent;
}
"""


async def user_id(server: LiveServer, username: str) -> str:
    async with server.app[SESSIONS]() as db:
        return str((await db.execute(select(User.id).where(User.username == username))).scalar_one())


async def log_in(page: Page, server: LiveServer, username: str, hearing_id: str) -> None:
    """Log in on the console and open the hearing's page."""
    await page.goto(f"{server.base_url}/login?next=/console/%3Fhearing%3D{hearing_id}")
    await page.fill("#login-username", username)
    await page.fill("#login-password", STAFF_PASSWORD)
    await page.click("#login-submit")
    await expect(page.locator("#detail-case")).to_have_text(CASE)


async def staff_session(server: LiveServer, username: str) -> tuple[aiohttp.ClientSession, str]:
    """A REST session of ``username`` and its CSRF token."""
    http = aiohttp.ClientSession(base_url=server.base_url, cookie_jar=aiohttp.CookieJar(unsafe=True))
    async with http.post("/api/v1/auth/login", json={"username": username, "password": STAFF_PASSWORD}) as r:
        assert r.status == 200, await r.text()
        return http, (await r.json())["csrf_token"]


async def wait_status(server: LiveServer, hearing_id: str, status: str, within_s: float = 20.0) -> None:
    async with asyncio.timeout(within_s):
        while True:  # the seal follows the room's close: no event to wait on from here
            if (await server.api("GET", f"/api/v1/hearings/{hearing_id}"))["status"] == status:
                return
            await asyncio.sleep(0.1)


async def upload_judge_key(server: LiveServer, judge: str, p12: bytes) -> None:
    """The judge's own PKCS#12, uploaded through the REST API the console's key card uses."""
    http, csrf = await staff_session(server, judge)
    async with http:
        body = {
            "pkcs12": base64.b64encode(p12).decode(),
            "passphrase": PASSPHRASE,
            "password": STAFF_PASSWORD,
        }
        path = f"/api/v1/users/{await user_id(server, judge)}/signing-key"
        async with http.put(path, json=body, headers={"X-CSRF-Token": csrf}) as r:
            assert r.status == 200, await r.text()


async def act_notice_sent(server: LiveServer, hearing_id: str, within_s: float = 15.0) -> None:
    """Wait until the act's notice is written down as sent (its outcome is sealed before the row says so)."""
    query = select(Notification.status).where(
        Notification.hearing_id == hearing_id, Notification.kind == "act"
    )
    async with asyncio.timeout(within_s):
        while True:  # polls the queue: the worker signals nothing
            async with server.app[SESSIONS]() as db:
                if (await db.execute(query)).scalars().all() == ["sent"]:
                    return
            await asyncio.sleep(0.05)


async def export_package(server: LiveServer, archivist: str, hearing_id: str, target: Path) -> Path:
    http, _csrf = await staff_session(server, archivist)
    async with http, http.get(f"/api/v1/archive/hearings/{hearing_id}/export") as r:
        assert r.status == 200 and r.headers["Content-Type"] == "application/zip", await r.text()
        await asyncio.to_thread(target.write_bytes, await r.read())
    return target


def run_archive_verify(package: Path, court_cert: Path) -> dict[str, Any]:
    """``hearing-server archive verify PACKAGE --trusted-cert COURT --json`` as an operator would run it."""
    done = subprocess.run(  # noqa: S603 (our own CLI)
        [sys.executable, "-m", "hearing_server", "archive", "verify", str(package), "--trusted-cert",
         str(court_cert), "--json"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return dict(json.loads(done.stdout))


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.media
async def test_from_an_emailed_link_to_a_verified_signed_act_in_the_archive(
    mail_server: LiveServer, smtp: SmtpPeer, playwright: Playwright, tmp_path: Path
) -> None:
    server = mail_server
    secretary = await server.add_staff("secretary1")  # the first account: server.api speaks as the secretary
    judge = await server.add_staff("judge1", StaffRole.JUDGE)
    archivist = await server.add_staff("archivist1", StaffRole.ARCHIVIST)
    hearing = await server.api(
        "POST",
        "/api/v1/hearings",
        {
            "case_number": CASE,
            "title": "Сапарова А. v. Ахметов Б.",
            "courtroom": "Зал №7",
            "scheduled_start": server_time_in(minutes=10),
            "duration_minutes": 60,
            "notice_language": "kk",
            "presiding_judge_id": await user_id(server, judge),
            "secretary_id": await user_id(server, secretary),
        },
        expect=201,
    )
    hearing_id = hearing["id"]
    issued = await asyncio.to_thread(issue)
    await upload_judge_key(server, judge, issued.p12)
    operator = OperatorSocket(server, hearing_id)
    browser = await launch(playwright, CAMERA, tmp_path / "media")
    problems: list[str] = []
    try:
        # 1. The secretary adds the party and sends the link by e-mail from the console.
        console = await (await desktop(browser, "kk")).new_page()
        watch_console(console, problems)
        await log_in(console, server, secretary, hearing_id)
        await console.fill("#p-name", PARTY)
        await console.select_option("#p-role", "plaintiff")
        await console.select_option("#p-language", "kk")
        await console.fill("#p-contact", EMAIL)
        await console.click("#party-submit")
        row = console.locator("#parties-body tr", has_text=PARTY)
        await row.locator("button[data-action='issue']").click()
        await expect(console.locator("#issue-email")).to_be_checked()
        await expect(console.locator("#issue-to")).to_have_value(EMAIL)
        await console.click("#issue-submit")
        await expect(console.locator("#link-panel")).to_be_visible()
        party_id = await row.get_attribute("data-party-id") or ""

        # 2. The mail reaches the court's SMTP server in Kazakh, with the link.
        [invitation] = await smtp.drop.wait_for(1)
        assert invitation.rcpt_tos == [EMAIL]
        assert invitation.message["Content-Language"] == "kk"
        assert invitation.message["Auto-Submitted"] == "auto-generated"
        assert invitation.mail_from == "hearings@court.test"
        assert rfc2047(invitation.raw_header("From")) == f"{COURT} <hearings@court.test>"
        assert rfc2047(invitation.raw_header("Subject")).startswith(
            f"{COURT}: № {CASE} іс бойынша сот отырысы, "
        )
        assert invitation.text.startswith(f"Құрметті {PARTY}!")
        link = next(line for line in invitation.text.splitlines() if "/join/" in line)
        assert link.startswith(f"{server.base_url}/join/")

        # 3. The party opens the link from the mail on a phone: details, devices, notice, waiting room.
        await operator.connect()
        party = await (await phone(browser, playwright, "kk")).new_page()
        watch_console(party, problems)
        await party.goto(link)
        await expect(party.locator("#d-case")).to_have_text(CASE)
        await expect(party.locator("#d-role")).to_have_text(t("kk", "role.plaintiff"))
        await party.click("#details-continue")
        await expect(party.locator("#device-continue")).to_be_enabled()
        await party.wait_for_function("() => document.getElementById('device-preview').videoWidth > 0")
        await party.wait_for_function("() => document.getElementById('device-meter').value > 0")
        await party.click("#device-continue")
        await expect(party.locator("#notice-text")).to_have_attribute("lang", "kk")
        await expect(party.locator("#notice-continue")).to_be_disabled()
        await party.check("#notice-agree")
        await party.click("#notice-continue")
        await expect(party.locator("#screen-waiting")).to_be_visible()
        if not party_id:
            party_id = (await server.api("GET", f"/api/v1/hearings/{hearing_id}/parties"))["items"][0]["id"]
        await operator.waiting_party(party_id)

        # 4. Admitted, the hearing starts: the party's camera and microphone reach the server.
        await operator.send("admit", party_id=party_id)
        await expect(party.locator("#screen-hearing")).to_be_visible()
        await operator.send("start")
        await expect(party.locator("#banner-recording")).to_be_visible()
        await party.wait_for_function("() => window.hearingClient.call.connectionState === 'connected'")
        async with asyncio.timeout(10):
            while True:  # the first packets leave a moment after the connection is up
                first = await party.evaluate(OUTBOUND_JS)
                if first["video"] > 0 and first["audio"] > 0:
                    break
                await asyncio.sleep(0.1)
        await asyncio.sleep(1.5)
        later = await party.evaluate(OUTBOUND_JS)
        assert later["video"] > first["video"] > 0 and later["audio"] > first["audio"] > 0, (first, later)
        assert later["frames"] > first["frames"], (first, later)

        # 5. The hearing ends; the server seals it once the room has closed.
        await operator.send("end")
        await expect(party.locator("#screen-end")).to_be_visible()
        await operator.close()
        await wait_status(server, hearing_id, "sealed")

        # 6. The presiding judge signs the act on the console with their own key and password.
        bench = await (await desktop(browser, "kk")).new_page()
        watch_console(bench, problems)
        await log_in(bench, server, judge, hearing_id)
        await expect(bench.locator("#act-addendum-hint")).to_have_text(t("kk", "acts.addendum_hint"))
        await expect(bench.locator("#act-password-field")).to_be_visible()
        await bench.fill("#act-title", ACT_TITLE)
        pdf = {"name": "sheshim.pdf", "mimeType": "application/pdf", "buffer": make_pdf("Sheshim")}
        await bench.set_input_files("#act-file", pdf)
        await bench.fill("#act-password", STAFF_PASSWORD)
        await bench.click("#act-submit")
        signed_item = bench.locator("#acts-staff-list li")
        await expect(signed_item).to_have_count(1)
        await expect(signed_item).to_contain_text(JUDGE_NAME)

        # 7. The party is told by mail, with the link to their page.
        _, notice = await smtp.drop.wait_for(2)
        assert notice.rcpt_tos == [EMAIL] and notice.message["Content-Language"] == "kk"
        assert (
            rfc2047(notice.raw_header("Subject")) == f"{COURT}: № {CASE} іс бойынша сот актісі: {ACT_TITLE}"
        )
        assert link in notice.text.splitlines()

        # 8. The party downloads the signed act from their page (the link no longer joins, but brings acts).
        acts_page = await (await phone(browser, playwright, "kk")).new_page()
        watch_console(acts_page, problems)
        await acts_page.goto(link)
        item = acts_page.locator("#acts-list li", has_text=ACT_TITLE)
        await expect(item.locator("[data-valid]")).to_have_text(t("kk", "acts.valid"))
        async with acts_page.expect_download() as caught:
            await item.locator("a").click()
        download = await caught.value
        assert download.suggested_filename == "sheshim.pdf"
        signed = await asyncio.to_thread(Path(await download.path()).read_bytes)
        assert not problems, problems
    finally:
        await operator.close()
        await browser.close()

    # 9. pyHanko: intact, valid, trusted through the judge's CA, signed by the judge; pdfsig agrees.
    ca_path = tmp_path / "judge-ca.pem"
    ca_path.write_bytes(issued.ca_cert.public_bytes(serialization.Encoding.PEM))
    [signature] = PdfFileReader(BytesIO(signed)).embedded_signatures
    status = await async_validate_pdf_signature(
        signature, ValidationContext(trust_roots=[load_cert_from_pemder(str(ca_path))])
    )
    assert status.bottom_line and status.intact and status.valid and status.trusted
    assert status.signing_cert.subject.native["common_name"] == JUDGE_NAME
    pdf_path = tmp_path / "signed.pdf"
    pdf_path.write_bytes(signed)
    pdfsig = await asyncio.to_thread(
        subprocess.run, ["pdfsig", str(pdf_path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert "Signature Validation: Signature is Valid." in pdfsig.stdout, pdfsig.stdout + pdfsig.stderr
    assert f"Signer Certificate Common Name: {JUDGE_NAME}" in pdfsig.stdout
    assert "Total document signed" in pdfsig.stdout

    # 10. The archive's export package holds the act (addendum 1) and the notice's delivery (addendum 2:
    # the hearing was sealed before it was sent), and verifies offline.
    await act_notice_sent(server, hearing_id)
    package = await export_package(server, archivist, hearing_id, tmp_path / "hearing.zip")
    with zipfile.ZipFile(package) as archive:
        names = archive.namelist()
        [act_entry] = [n for n in names if "/hearing/acts/" in n and n.endswith(".pdf")]
        assert hashlib.sha256(archive.read(act_entry)).digest() == hashlib.sha256(signed).digest()
        [act_log] = [n for n in names if n.endswith("/hearing/addenda/1/log.jsonl")]
        assert [json.loads(line)["event"] for line in archive.read(act_log).splitlines()] == [
            "act_signed",
            "notification_queued",
        ]
        [notice_log] = [n for n in names if n.endswith("/hearing/addenda/2/log.jsonl")]
        [delivered] = [json.loads(line) for line in archive.read(notice_log).splitlines()]
        assert delivered["event"] == "notification_sent" and delivered["details"]["kind"] == "act"
        assert delivered["details"]["recipient"] == EMAIL
        assert delivered["details"]["message_sha256"] == hashlib.sha256(notice.text.encode()).hexdigest()
    report = await asyncio.to_thread(run_archive_verify, package, server.config.court_cert_path)
    assert report["valid"] and report["hearing"]["addenda"] == 2, report
    assert report["certificate_matches_signer"] is True

    events = [e.event for e in await server.events(hearing_id)]
    for kind in ("notification_sent", "link_opened", "notice_confirmed", "party_admitted", "hearing_ended"):
        assert kind in events, (kind, events)


def server_time_in(minutes: int) -> str:
    from datetime import UTC, datetime, timedelta

    return (datetime.now(UTC) + timedelta(minutes=minutes)).replace(microsecond=0).isoformat()
