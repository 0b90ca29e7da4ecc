"""The archive browser on a desktop: an archivist searches sealed hearings by case-number prefix and party
name, opens one, plays its copy, seeks by the confirmation log, sees a valid seal, verifies and exports it;
an operator is told the archive is not theirs."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from browser_harness import (
    STAFF_PASSWORD,
    LiveServer,
    assert_all_text_from_catalog,
    desktop,
    free_port,
    launch,
    screenshot,
    t,
    watch_console,
)
from playwright.async_api import Page, Playwright, expect

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "archive"))
from aiohttp import web  # noqa: E402
from archive_bench import ArchiveBench, Clips  # noqa: E402
from archive_media import write_audio, write_video  # noqa: E402
from sqlalchemy import select  # noqa: E402

from archive.context import ARCHIVE  # noqa: E402
from archive.routes import setup as archive_setup  # noqa: E402
from hearing_server.config import load_config  # noqa: E402
from hearing_server.domain.ids import new_id  # noqa: E402
from hearing_server.domain.party import StaffRole  # noqa: E402
from hearing_server.store.db import SESSIONS  # noqa: E402
from hearing_server.store.models import Act, User  # noqa: E402
from hearing_server.web.app import create_app  # noqa: E402
from recording.addendum import AddendumEvent, seal_addendum  # noqa: E402
from recording.composite import (  # noqa: E402
    PROGRESS_NAME,
    CompositeSettings,
    playback_dir,
    render_composite,
)
from recording.seal import generate_court_certificate  # noqa: E402

COURT = "Алматы қаласының №2 аудандық соты"
START = datetime(2026, 3, 2, 5, 0, tzinfo=UTC)
SECONDS = 18  # long enough that every log entry (every 2 s from the start) falls inside the recording
CASE = "2-415/2026"
OTHER_CASE = "3-900/2026"
PARTIES = [("plaintiff", "Иванова Мария Сергеевна"), ("defendant", "Smith John")]
JUDGE = "judge1"


@pytest.fixture
async def archive_server(
    tmp_path: Path, sqlite_template: Path
) -> AsyncIterator[tuple[LiveServer, ArchiveBench]]:
    """The whole application with the archive, an archivist, an operator, and two sealed hearings of
    real media (the newer one with a rendered playback copy)."""
    import shutil

    database = tmp_path / "hearing.db"
    shutil.copy(sqlite_template, database)
    port = free_port()
    signer = generate_court_certificate(tmp_path / "court.pem", tmp_path / "court-key.pem", COURT)
    config = load_config(
        environ={},
        data_dir=tmp_path / "data",
        database_url=f"sqlite+aiosqlite:///{database}",
        host="127.0.0.1",
        port=port,
        public_url=f"http://127.0.0.1:{port}",
        plain_http=True,
        ice_host_addresses=["127.0.0.1"],
        court_name=COURT,
        timezone="Asia/Almaty",
        uvloop=False,
    ).model_copy(update={"court_cert": tmp_path / "court.pem", "court_key": tmp_path / "court-key.pem"})
    app = create_app(config)
    if ARCHIVE not in app:  # older create_app did not wire the archive
        archive_setup(app)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    live = LiveServer(app=app, config=config, runner=runner, base_url=f"http://127.0.0.1:{port}")
    try:
        await live.add_staff("archivist1", StaffRole.ARCHIVIST)
        await live.add_staff("operator1", StaffRole.OPERATOR)
        await live.add_staff(JUDGE, StaffRole.JUDGE)
        async with app[SESSIONS]() as db:
            judge_id = (await db.execute(select(User.id).where(User.username == JUDGE))).scalar_one()
        clips_dir = tmp_path / "clips"
        epoch_us = int(START.timestamp() * 1_000_000)
        await asyncio.to_thread(write_video, clips_dir / "v.webm", "judge", epoch_us, frames=15 * SECONDS)
        await asyncio.to_thread(write_audio, clips_dir / "a.webm", "judge", epoch_us, seconds=SECONDS)
        clips = Clips((clips_dir / "v.webm").read_bytes(), (clips_dir / "a.webm").read_bytes())
        bench = ArchiveBench(client=None, app=app, config=config, clips=clips, signer=signer)  # type: ignore[arg-type]
        bench.staff["other"] = await bench.make_hearing(  # type: ignore[assignment]
            case_number=OTHER_CASE, court=COURT, parties=[("witness", "Нұрланов Дәулет")], files=True,
            start=datetime(2026, 2, 10, 4, 0, tzinfo=UTC),
        )  # fmt: skip
        hearing_id = await bench.make_hearing(
            case_number=CASE, court=COURT, courtroom="Зал №7", parties=PARTIES, files=True, start=START,
            ended_by=f"user:{judge_id}",
        )  # fmt: skip
        folder = await bench.hearing_folder(hearing_id)
        await asyncio.to_thread(render_composite, folder, CompositeSettings(width=320, height=240))
        bench.staff["hearing"] = hearing_id  # type: ignore[assignment]
        yield live, bench
    finally:
        await live.close()


async def log_in(page: Page, base_url: str, username: str, language: str) -> None:
    """Open the archive; the login page sends the user back to it."""
    await page.goto(f"{base_url}/archive/")
    await expect(page).to_have_url(re.compile(r"/login\?next="))
    await expect(page.locator("h1")).to_have_text(t(language, "login.title"))
    await page.fill("#login-username", username)
    await page.fill("#login-password", STAFF_PASSWORD)
    await page.click("#login-submit")
    await expect(page).to_have_url(f"{base_url}/archive/")


async def search(page: Page, **fields: str) -> None:
    """Fill the search form (every other field cleared) and wait for the answer."""
    for field in ("q-case", "q-party", "q-judge", "q-from", "q-to", "q-court", "q-courtroom"):
        await page.fill(f"#{field}", fields.get(field, ""))
    async with page.expect_response(re.compile(r"/api/v1/archive/hearings\?")) as answer:
        await page.click("#search-submit")
    assert (await answer.value).status == 200


async def until(page: Page, expression: str, within: float = 10.0) -> None:
    """Poll ``expression`` until true (``wait_for_function`` evaluates a string, which the CSP forbids)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await page.evaluate(f"() => Boolean({expression})"):
        assert loop.time() < deadline, f"still false after {within} s: {expression}"
        await asyncio.sleep(0.1)


async def case_numbers(page: Page) -> list[str]:
    await expect(page.locator("body[data-searched]")).to_have_count(1)  # the first search has answered
    await expect(page.locator("body[data-searching]")).to_have_count(0)
    return [
        " ".join(text.split()) for text in await page.locator("#results-body .case-link").all_inner_texts()
    ]


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.parametrize(("language", "party_query"), [("ru", "иванова мар"), ("en", "smith")])
async def test_archivist_finds_plays_and_checks_a_sealed_hearing(
    archive_server: tuple[LiveServer, ArchiveBench], playwright: Playwright, language: str, party_query: str
) -> None:
    server, bench = archive_server
    hearing_id = str(bench.staff["hearing"])
    folder = await bench.hearing_folder(hearing_id)
    zone = ZoneInfo(server.config.timezone)
    browser = await launch(playwright)
    try:
        context = await desktop(browser, language)
        page = await context.new_page()
        problems: list[str] = []
        watch_console(page, problems)
        flow = "archive"

        await log_in(page, server.base_url, "archivist1", language)
        await expect(page.locator("#archive-title")).to_have_text(t(language, "archive.title"))
        assert await case_numbers(page) == [CASE, OTHER_CASE]  # newest first by default
        await expect(page.locator("#th-when")).to_have_attribute("aria-sort", "descending")

        # Case number prefix: only the matching hearing, its time in the court's zone.
        await search(page, **{"q-case": "2-41"})
        assert await case_numbers(page) == [CASE]
        row = page.locator("#results-body tr").first
        await expect(row).to_contain_text(START.astimezone(zone).strftime("%H:%M"))
        await expect(row).to_contain_text("Smith John")
        await expect(row).to_contain_text(t(language, "role.defendant"))
        await expect(page.locator("#results-summary")).to_contain_text(
            t(language, "archive.results_count").split("{")[0].strip()
        )
        assert "case=2-41" in page.url
        await assert_all_text_from_catalog(page, language)
        await screenshot(page, flow, language, "search")

        # An exact case number that is only a prefix finds nothing.
        await page.select_option("#q-case-mode", "exact")
        await search(page, **{"q-case": "2-41"})
        await expect(page.locator("#results-empty")).to_have_text(t(language, "archive.no_results"))
        await page.select_option("#q-case-mode", "prefix")

        # Party name (word prefixes, any letter case), then sorting by case number both ways.
        await search(page, **{"q-party": party_query})
        assert await case_numbers(page) == [CASE]
        await search(page, **{"q-party": "нұрланов"})
        assert await case_numbers(page) == [OTHER_CASE]
        await search(page)
        await page.click("#th-case .sort-button")
        await expect(page.locator("#th-case")).to_have_attribute("aria-sort", "ascending")
        assert await case_numbers(page) == [CASE, OTHER_CASE]
        await page.click("#th-case .sort-button")
        await expect(page.locator("#th-case")).to_have_attribute("aria-sort", "descending")
        assert await case_numbers(page) == [OTHER_CASE, CASE]
        await search(page, **{"q-from": "2026-03-02", "q-to": "2026-03-02"})
        assert await case_numbers(page) == [CASE]

        # The hearing's page: the playback copy loads and is seekable.
        await page.click(f"#results-body a[href='/archive/hearing/{hearing_id}']")
        await expect(page).to_have_url(f"{server.base_url}/archive/hearing/{hearing_id}")
        await expect(page.locator("#h-case")).to_have_text(CASE)
        await expect(page.locator("#h-courtroom")).to_have_text("Зал №7")
        await until(page, "document.getElementById('playback').duration > 0")
        duration = await page.evaluate("document.getElementById('playback').duration")
        assert SECONDS - 1 <= duration <= SECONDS + 1
        seekable = await page.evaluate(
            "() => { const s = document.getElementById('playback').seekable; return s.length && s.end(0); }"
        )
        assert seekable > SECONDS - 1

        # The log as a timeline, in words from the catalog; an entry seeks the video to its moment.
        entries = page.locator("#timeline .timeline-entry")
        await expect(entries).to_have_count(8)
        await expect(entries.first.locator(".log-event")).to_have_text(t(language, "event.recording_started"))
        joined = page.locator("#timeline .timeline-entry[data-event='party_joined']", has_text="Smith John")
        await expect(joined).to_have_count(1)
        await expect(joined.locator(".log-event")).to_have_text(t(language, "event.party_joined"))
        offset = float(await joined.locator("button").get_attribute("data-offset") or "nan")
        assert offset in (4.0, 8.0)  # the log writes an entry every 2 s from the recording's start
        await joined.locator("button").click()
        await until(page, f"Math.abs(document.getElementById('playback').currentTime - {offset}) < 0.3")
        await expect(joined).to_have_class(re.compile(r"\bcurrent\b"))
        ended = page.locator("#timeline .timeline-entry[data-event='hearing_ended'] button")
        await ended.click()
        await until(page, "Math.abs(document.getElementById('playback').currentTime - 12) < 0.3")

        # The seal is valid, signed by the court; the tracks are listed with their hashes.
        seal = page.locator("#seal-state")
        await expect(seal).to_have_attribute("data-state", "valid")
        await expect(seal).to_have_text(t(language, "archive.seal_valid"))
        await expect(page.locator("#seal-signer")).to_contain_text(COURT)
        await expect(page.locator("#seal-trust")).to_have_text(t(language, "archive.trusted_yes"))
        tracks = page.locator("#tracks-body tr")
        await expect(tracks).to_have_count(2)
        video_hash = hashlib.sha256((folder / "tracks/judge-video-001.webm").read_bytes()).hexdigest()
        await expect(page.locator("#tracks-body")).to_contain_text(video_hash[:12])
        await expect(page.locator("#tracks-body")).to_contain_text("vp8")
        await expect(page.locator("#tracks-body")).to_contain_text(t(language, "archive.kind_audio"))
        await assert_all_text_from_catalog(page, language)
        await screenshot(page, flow, language, "hearing")

        # Verify now: every file hashed again.
        await page.click("#verify-now")
        result = page.locator("#verify-result")
        await expect(result).to_have_attribute("data-valid", "true")
        await expect(page.locator("#seal-full")).to_contain_text(
            t(language, "archive.full_check_ok").split("{")[0].strip()
        )

        # Export: the link answers with a ZIP.
        href = await page.locator("#export").get_attribute("href")
        assert href == f"/api/v1/archive/hearings/{hearing_id}/export"
        exported = await page.request.get(server.base_url + href)
        assert exported.status == 200 and exported.headers["content-type"] == "application/zip"
        assert (await exported.body())[:2] == b"PK"
        track = await page.request.get(
            server.base_url + f"/api/v1/archive/hearings/{hearing_id}/files/playback",
            headers={"Range": "bytes=0-99"},
        )
        assert track.status == 206 and len(await track.body()) == 100

        # Legal hold: a reason is required, then the hearing is held.
        await page.click("#hold-toggle")
        await expect(page.locator("#hold-error")).to_have_text(t(language, "archive.hold_reason_missing"))
        await page.fill("#hold-reason", "Апелляционная жалоба")
        await page.click("#hold-toggle")
        await expect(page.locator("#h-hold-badge")).to_be_visible()
        await expect(page.locator("#hold-toggle")).to_have_text(t(language, "archive.hold_release"))
        await expect(page.locator("#hold-state")).to_contain_text("Апелляционная жалоба")
        await assert_all_text_from_catalog(page, language)
        await page.locator("#seal-title").scroll_into_view_if_needed()
        await screenshot(page, flow, language, "seal")
        if language == "ru":  # switching the language re-renders the page from the Kazakh catalog
            await page.click("#lang-switch button[data-language='kk']")
            await expect(page.locator("#seal-state")).to_have_text(t("kk", "archive.seal_valid"))
            await expect(joined.locator(".log-event")).to_have_text(t("kk", "event.party_joined"))
            await assert_all_text_from_catalog(page, "kk")
            await page.evaluate("() => window.scrollTo(0, 0)")
            await screenshot(page, flow, "kk", "hearing")
        assert not problems, problems

        # An operator may not open the archive.
        operator = await desktop(browser, language)
        other = await operator.new_page()
        watch_console(other, problems)
        await log_in(other, server.base_url, "operator1", language)
        await expect(other.locator("#no-access-title")).to_have_text(t(language, "archive.no_access_title"))
        await expect(other.locator("#no-access")).to_be_visible()
        await expect(other.locator("#search-screen")).to_be_hidden()
        await assert_all_text_from_catalog(other, language)
        await screenshot(other, flow, language, "no-access")
        await other.goto(f"{server.base_url}/archive/hearing/{hearing_id}")
        await expect(other.locator("#no-access-title")).to_have_text(t(language, "archive.no_access_title"))
        denied = await other.request.get(f"{server.base_url}/api/v1/archive/hearings/{hearing_id}")
        assert denied.status == 403
        assert not problems, problems
    finally:
        await browser.close()


@pytest.mark.browser
@pytest.mark.slow
async def test_timeline_names_its_actors_and_seeks_once_the_playback_copy_is_ready(
    archive_server: tuple[LiveServer, ArchiveBench], playwright: Playwright
) -> None:
    """Issue 12 items 2 and 3: actors as "Name (role)" (staff by name), never raw ids; a copy that finishes
    rendering while the page is open makes the timeline clickable without a reload."""
    server, bench = archive_server
    language = "ru"
    browser = await launch(playwright)
    try:
        page = await (await desktop(browser, language)).new_page()
        problems: list[str] = []
        watch_console(page, problems)
        await log_in(page, server.base_url, "archivist1", language)

        # Names and roles instead of party:<id> and user:<id>.
        hearing_id = str(bench.staff["hearing"])
        await page.goto(f"{server.base_url}/archive/hearing/{hearing_id}")
        confirmed = page.locator("#timeline .timeline-entry[data-event='notice_confirmed']")
        await expect(confirmed).to_have_count(2)
        await expect(confirmed.locator(".log-actor")).to_have_text(
            [
                f"Иванова Мария Сергеевна ({t(language, 'role.plaintiff')})",
                f"Smith John ({t(language, 'role.defendant')})",
            ]
        )
        await expect(confirmed.locator(".log-party")).to_have_count(0)  # the actor already names the party
        ended = page.locator("#timeline .timeline-entry[data-event='hearing_ended'] .log-actor")
        await expect(ended).to_have_text(JUDGE.title())  # the staff member's display name
        system = page.locator("#timeline .timeline-entry[data-event='recording_started'] .log-actor")
        await expect(system).to_have_text(t(language, "archive.actor_system"))
        timeline = await page.locator("#timeline").inner_text()
        assert "party:" not in timeline and "user:" not in timeline, timeline
        await assert_all_text_from_catalog(page, language)

        # A hearing whose copy is still rendering: entries are not buttons yet...
        other_id = str(bench.staff["other"])
        folder = await bench.hearing_folder(other_id)
        progress = playback_dir(folder) / PROGRESS_NAME
        progress.parent.mkdir(parents=True, exist_ok=True)
        progress.write_text(json.dumps({"state": "rendering", "percent": 40.0, "pid": os.getpid()}))
        await page.goto(f"{server.base_url}/archive/hearing/{other_id}")
        await expect(page.locator("#playback-state")).to_have_text(
            t(language, "archive.playback_rendering_percent").replace("{percent}", "40")
        )
        entries = page.locator("#timeline .timeline-entry")
        await expect(entries).to_have_count(6)
        await expect(page.locator("#timeline button.log-seek")).to_have_count(0)

        # ...the copy finishes while the page is open: the video appears and the entries seek it.
        await asyncio.to_thread(render_composite, folder, CompositeSettings(width=320, height=240))
        joined = page.locator("#timeline .timeline-entry[data-event='party_joined'] button.log-seek")
        await expect(joined).to_have_count(1, timeout=20_000)  # the page looks again every 5 s
        await expect(page.locator("#playback")).to_be_visible()
        await until(page, "document.getElementById('playback').duration > 0")
        offset = float(await joined.get_attribute("data-offset") or "nan")
        await joined.click()
        await until(page, f"Math.abs(document.getElementById('playback').currentTime - {offset}) < 0.3")
        await expect(page.locator("#timeline .timeline-entry[data-event='party_joined']")).to_have_class(
            re.compile(r"\bcurrent\b")
        )
        assert not problems, problems
    finally:
        await browser.close()


@pytest.mark.parametrize("language", ["kk", "en"])
async def test_the_hearing_page_lists_acts_and_the_addendum_that_seals_a_late_one(
    archive_server: tuple[LiveServer, ArchiveBench], playwright: Playwright, language: str
) -> None:
    server, bench = archive_server
    hearing_id = str(bench.staff["hearing"])
    folder = await bench.hearing_folder(hearing_id)
    body = b"%PDF-1.7 an act signed after the seal"
    act = Act(
        id=new_id(), hearing_id=hearing_id, title="Қосымша шешім", file_name="sheshim.pdf", pages=1,
        original_size=len(body), original_sha256=hashlib.sha256(body).hexdigest(), signed_size=len(body),
        signed_sha256=hashlib.sha256(body).hexdigest(), signer_subject=COURT, signed_at=datetime.now(UTC),
        uploaded_by=JUDGE, created_at=datetime.now(UTC),
    )  # fmt: skip
    act.path = f"acts/{act.id}.pdf"
    (folder / "acts").mkdir()
    (folder / act.path).write_bytes(body)
    event = AddendumEvent("act_signed", JUDGE, {"act_id": act.id, "path": act.path})
    await asyncio.to_thread(seal_addendum, folder, hearing_id, bench.signer, [act.path], [event])
    async with server.app[SESSIONS]() as db, db.begin():
        db.add(act)
    browser = await launch(playwright)
    try:
        page = await (await desktop(browser, language)).new_page()
        problems: list[str] = []
        watch_console(page, problems)
        await log_in(page, server.base_url, "archivist1", language)
        await page.goto(f"{server.base_url}/archive/hearing/{hearing_id}")
        await expect(page.locator("#seal-state")).to_have_attribute("data-state", "valid")
        row = page.locator(f"#acts-body tr[data-act-id='{act.id}']")
        await expect(row).to_contain_text("Қосымша шешім")
        await expect(row).to_contain_text(COURT)
        await expect(row).to_contain_text(t(language, "archive.act_in_addendum").replace("{number}", "1"))
        addendum = page.locator("#addenda-list li[data-addendum='1']")
        await expect(addendum).to_contain_text(COURT)
        await expect(page.locator("#addenda-empty")).to_be_hidden()
        href = await row.locator("a").get_attribute("href")
        assert href is not None
        download = await page.request.get(server.base_url + href)
        assert download.status == 200 and await download.body() == body
        await page.click("#verify-now")
        await expect(page.locator("#verify-result")).to_have_attribute("data-valid", "true")
        await assert_all_text_from_catalog(page, language)
        await page.locator("#acts-title").scroll_into_view_if_needed()
        await screenshot(page, "archive", language, "acts")
        assert not problems, problems
    finally:
        await browser.close()
