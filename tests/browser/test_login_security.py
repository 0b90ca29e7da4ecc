"""The login page in Chromium: the first admin replaces the one-time password before anything else; a
hostile ``next`` never leads off the site; the page may open sockets to its own origin only (CSP)."""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from browser_harness import (
    LiveServer,
    assert_all_text_from_catalog,
    desktop,
    launch,
    screenshot,
    t,
    watch_console,
)
from playwright.async_api import Playwright, expect

from hearing_server.auth.passwords import PASSWORDS
from hearing_server.auth.redirects import safe_next_path
from hearing_server.bootstrap import FIRST_ADMIN, ensure_first_admin
from hearing_server.store.db import SESSIONS

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from test_redirects import HOSTILE_NEXT, SAFE_NEXT  # noqa: E402

OWN_PASSWORD = "my very own court password"


async def _first_admin(server: LiveServer) -> str:
    async with server.app[SESSIONS]() as db, db.begin():
        password = await ensure_first_admin(db, server.app[PASSWORDS], datetime.now(UTC), timedelta(hours=24))
    assert password is not None
    return password


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.parametrize("language", ["kk", "en"])
async def test_the_first_admin_chooses_a_password_before_anything_else(
    server: LiveServer, playwright: Playwright, language: str
) -> None:
    one_time = await _first_admin(server)
    browser = await launch(playwright)
    try:
        context = await desktop(browser, language)
        page = await context.new_page()
        problems: list[str] = []
        watch_console(page, problems)
        await page.goto(f"{server.base_url}/console/")
        await expect(page).to_have_url(re.compile(r"/login\?next="))
        await page.fill("#login-username", FIRST_ADMIN)
        await page.fill("#login-password", one_time)
        await page.click("#login-submit")

        # Logged in, but held on the change-password form; the API refuses everything else meanwhile.
        form = page.locator("#password-form")
        await expect(form).to_be_visible()
        await expect(page.locator("#login-form")).to_be_hidden()
        await expect(form.locator("h2")).to_have_text(t(language, "password_change.title"))
        await expect(page.locator("#password-current")).to_have_value(one_time)
        await assert_all_text_from_catalog(page, language)
        await screenshot(page, "password", language, "change")
        refused = await page.evaluate(
            "fetch('/api/v1/hearings').then(async (r) => [r.status, (await r.json()).error.code])"
        )
        assert refused == [403, "password_change_required"]
        # A console page opened now comes back here.
        await page.goto(f"{server.base_url}/console/")
        await expect(page.locator("#password-form")).to_be_visible()
        await expect(page.locator("#password-current")).to_have_value("")

        await page.fill("#password-current", one_time)
        await page.fill("#password-new", OWN_PASSWORD)
        await page.fill("#password-repeat", OWN_PASSWORD + "!")
        await page.click("#password-submit")
        await expect(page.locator("#password-error")).to_have_text(t(language, "password_change.mismatch"))
        await page.fill("#password-new", one_time)
        await page.fill("#password-repeat", one_time)
        await page.click("#password-submit")
        await expect(page.locator("#password-error")).to_have_text(
            t(language, "api_error.password_unchanged")
        )
        await page.fill("#password-new", OWN_PASSWORD)
        await page.fill("#password-repeat", OWN_PASSWORD)
        await page.click("#password-submit")

        await expect(page).to_have_url(f"{server.base_url}/console/")
        await expect(page.locator("#list-title")).to_have_text(t(language, "hearings.title"))
        allowed = await page.evaluate("fetch('/api/v1/hearings').then((r) => r.status)")
        assert allowed == 200
        assert problems == []
    finally:
        await browser.close()


@pytest.mark.browser
@pytest.mark.slow
async def test_a_hostile_next_never_leads_off_the_site(server: LiveServer, playwright: Playwright) -> None:
    username = await server.add_staff("secretary1")
    browser = await launch(playwright)
    try:
        context = await desktop(browser, "ru")
        page = await context.new_page()
        await page.goto(f"{server.base_url}/login")
        # The page's own check agrees with the server's on every hostile and every good value.
        verdicts = await page.evaluate(
            """async (values) => {
                const { safeNextPath } = await import('/static/shared/redirect.js');
                return values.map((value) => safeNextPath(value, null));
            }""",
            HOSTILE_NEXT + SAFE_NEXT,
        )
        assert verdicts == [safe_next_path(v) for v in HOSTILE_NEXT + SAFE_NEXT]
        assert verdicts[: len(HOSTILE_NEXT)] == [None] * len(HOSTILE_NEXT)
        # A real visit: the server drops the hostile next, and after logging in the console opens.
        await page.goto(f"{server.base_url}/login?next=%2F%5Cevil.example")
        await expect(page).to_have_url(f"{server.base_url}/login")
        await page.fill("#login-username", username)
        await page.fill("#login-password", "correct horse battery")
        await page.click("#login-submit")
        await expect(page).to_have_url(f"{server.base_url}/console/")
    finally:
        await browser.close()


@pytest.mark.browser
@pytest.mark.slow
async def test_pages_may_open_sockets_to_their_own_origin_only(
    server: LiveServer, playwright: Playwright
) -> None:
    browser = await launch(playwright)
    try:
        page = await (await desktop(browser, "en")).new_page()
        await page.goto(f"{server.base_url}/login")
        port = server.config.port
        outcome = await page.evaluate(
            """async (foreign) => {
                const violations = [];
                document.addEventListener('securitypolicyviolation', (e) => violations.push(
                    [e.effectiveDirective, e.blockedURI]));
                const attempt = (url) => new Promise((resolve) => {
                    let socket;
                    try { socket = new WebSocket(url); } catch (error) { resolve('threw'); return; }
                    socket.onopen = () => { socket.close(); resolve('open'); };
                    socket.onerror = () => resolve('error');
                });
                const own = await attempt(location.origin.replace(/^http/, 'ws') + '/ws');
                const other = await attempt(foreign);
                await new Promise((r) => setTimeout(r, 200));
                return { own, other, violations };
            }""",
            f"ws://127.0.0.2:{port}/ws",
        )
        assert outcome["own"] == "open"
        assert outcome["other"] in ("error", "threw")
        assert [v[0] for v in outcome["violations"]] == ["connect-src"], outcome
        assert "127.0.0.2" in outcome["violations"][0][1]
    finally:
        await browser.close()
