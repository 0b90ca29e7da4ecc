"""The browser tests' bench: the whole server on a loopback port, staff and hearings made through the
REST API, Chromium with fake devices playing a given colour and tone, and page checks shared by the flows."""

from __future__ import annotations

import json
import math
import re
import socket
import struct
import wave
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from playwright.async_api import Browser, BrowserContext, Page, Playwright

from hearing_server.auth.passwords import PASSWORDS
from hearing_server.config import Config
from hearing_server.domain.party import StaffRole
from hearing_server.record.event_log import EVENTS
from hearing_server.services.users import create_user
from hearing_server.store.db import SESSIONS
from hearing_server.store.models import HearingEvent, Invitation
from hearing_server.web.app import create_app

REPO = Path(__file__).resolve().parents[2]
WEB_CLIENT = REPO / "web_client"
SCREENSHOTS = REPO / "test-artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-sandbox",
    "--autoplay-policy=no-user-gesture-required",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
]
STAFF_PASSWORD = "correct horse battery"
LANGUAGES = ("kk", "ru", "en")
PLACEHOLDER = re.compile(r"\{\w+\}")
TIMEOUT_MS = 15_000


# --- the server ---------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    """The running application and a staff member's API session."""

    app: web.Application
    config: Config
    runner: web.AppRunner
    base_url: str
    staff: aiohttp.ClientSession | None = None
    csrf: str = ""
    usernames: list[str] = field(default_factory=list)

    async def add_staff(self, username: str = "operator1", role: StaffRole = StaffRole.OPERATOR) -> str:
        """A staff account with the shared test password; returns the username."""
        async with self.app[SESSIONS]() as db, db.begin():
            await create_user(
                db,
                self.app[PASSWORDS],
                username=username,
                role=role,
                password=STAFF_PASSWORD,
                display_name=username.title(),
                now=datetime.now(UTC),
            )
        self.usernames.append(username)
        return username

    async def api(self, method: str, path: str, body: Any = None, expect: int | None = None) -> Any:
        """Call the REST API as the logged-in operator (logs in on first use)."""
        if self.staff is None:
            if not self.usernames:
                await self.add_staff()
            self.staff = aiohttp.ClientSession(
                base_url=self.base_url, cookie_jar=aiohttp.CookieJar(unsafe=True)
            )
            async with self.staff.post(
                "/api/v1/auth/login", json={"username": self.usernames[0], "password": STAFF_PASSWORD}
            ) as response:
                assert response.status == 200, await response.text()
                self.csrf = (await response.json())["csrf_token"]
        headers = {"X-CSRF-Token": self.csrf}
        async with self.staff.request(method, path, json=body, headers=headers) as response:
            if expect is not None:
                assert response.status == expect, (
                    f"{method} {path}: {response.status} {await response.text()}"
                )
            if response.status == 204:
                return None
            return await response.json()

    async def schedule(
        self,
        *,
        start_in: timedelta = timedelta(minutes=10),
        case: str = "2-345/2026",
        notice_language: str = "ru",
    ) -> dict[str, Any]:
        """A hearing of the court, starting ``start_in`` from now."""
        start = (datetime.now(UTC) + start_in).replace(microsecond=0)
        return await self.api(
            "POST",
            "/api/v1/hearings",
            {
                "case_number": case,
                "title": "Ахметов А. v. Сәтбаев Б.",
                "courtroom": "Зал №7",
                "scheduled_start": start.isoformat(),
                "duration_minutes": 60,
                "presiding_judge": "Жұмабаева Г. Т.",
                "notice_language": notice_language,
            },
            expect=201,
        )

    async def invite(
        self, hearing_id: str, name: str, role: str = "witness", language: str | None = None
    ) -> tuple[str, str]:
        """A party with a fresh link; returns (party id, link URL)."""
        body: dict[str, Any] = {"role": role, "display_name": name}
        if language:
            body["language"] = language
        party = await self.api("POST", f"/api/v1/hearings/{hearing_id}/parties", body, expect=201)
        issued = await self.api(
            "POST", f"/api/v1/hearings/{hearing_id}/parties/{party['id']}/invitation", expect=201
        )
        return party["id"], issued["url"]

    async def revoke(self, hearing_id: str, party_id: str) -> None:
        await self.api("DELETE", f"/api/v1/hearings/{hearing_id}/parties/{party_id}/invitation", expect=204)

    async def expire_links(self, party_id: str) -> None:
        """Move the party's links into the past (an expired link cannot be made through the API)."""
        from sqlalchemy import update

        async with self.app[SESSIONS]() as db, db.begin():
            await db.execute(
                update(Invitation)
                .where(Invitation.party_id == party_id)
                .values(expires_at=datetime.now(UTC) - timedelta(hours=1))
            )

    async def events(self, hearing_id: str) -> list[HearingEvent]:
        return await self.app[EVENTS].entries(hearing_id)

    async def close(self) -> None:
        if self.staff is not None:
            await self.staff.close()
        await self.runner.cleanup()


async def start_server(config: Config) -> LiveServer:
    """Build the app as production does (``create_app`` wires signaling, recording and pages) on loopback."""
    app = create_app(config)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", config.port)
    await site.start()
    return LiveServer(app=app, config=config, runner=runner, base_url=f"http://127.0.0.1:{config.port}")


# --- fake camera and microphone -----------------------------------------------------------------


def rgb_to_yuv(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    """BT.601 limited-range YUV of an sRGB colour (what Chromium's fake capture expects)."""
    r, g, b = rgb
    y = 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255
    u = 128 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255
    v = 128 + (112.0 * r - 93.786 * g - 18.214 * b) / 255
    return round(y), round(u), round(v)


def write_y4m(
    path: Path, rgb: tuple[int, int, int], width: int = 320, height: int = 240, frames: int = 15
) -> Path:
    """A solid-colour Y4M clip (Chromium loops it as the camera)."""
    y, u, v = rgb_to_yuv(rgb)
    plane = (
        bytes([y]) * (width * height)
        + bytes([u]) * (width * height // 4)
        + bytes([v]) * (width * height // 4)
    )
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F15:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            out.write(b"FRAME\n")
            out.write(plane)
    return path


def write_wav(path: Path, frequency: float, seconds: float = 2.0, rate: int = 48000) -> Path:
    """A sine tone (Chromium loops it as the microphone)."""
    samples = int(seconds * rate)
    data = b"".join(
        struct.pack("<h", int(0.5 * 32767 * math.sin(2 * math.pi * frequency * n / rate)))
        for n in range(samples)
    )
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(data)
    return path


@dataclass(frozen=True)
class FakeMedia:
    """One participant's camera colour and microphone tone."""

    name: str
    rgb: tuple[int, int, int]
    frequency: float

    def files(self, folder: Path) -> tuple[Path, Path]:
        folder.mkdir(parents=True, exist_ok=True)
        return (
            write_y4m(folder / f"{self.name}.y4m", self.rgb),
            write_wav(folder / f"{self.name}.wav", self.frequency),
        )


async def launch(
    playwright: Playwright, media: FakeMedia | None = None, folder: Path | None = None
) -> Browser:
    """A Chromium process; with ``media`` its fake camera and microphone play that colour and tone."""
    args = list(CHROMIUM_ARGS)
    if media is not None:
        assert folder is not None
        video, audio = media.files(folder)
        args += [f"--use-file-for-fake-video-capture={video}", f"--use-file-for-fake-audio-capture={audio}"]
    return await playwright.chromium.launch(executable_path=CHROMIUM, args=args)


def pixel7(playwright: Playwright) -> dict[str, Any]:
    """Pixel 7 emulation as Playwright describes it, without the browser type."""
    device = dict(playwright.devices["Pixel 7"])
    device.pop("default_browser_type", None)
    return device


async def phone(
    browser: Browser, playwright: Playwright, language: str, viewport: dict[str, int] | None = None
) -> BrowserContext:
    """A phone (Pixel 7, or its browser on a ``viewport``-sized screen) whose browser prefers ``language``."""
    device = pixel7(playwright)
    if viewport is not None:
        device.update(viewport=viewport, screen=viewport)
    context = await browser.new_context(**device, locale=LOCALE[language], ignore_https_errors=True)
    context.set_default_timeout(TIMEOUT_MS)
    return context


async def desktop(browser: Browser, language: str) -> BrowserContext:
    """A desktop browser window preferring ``language``."""
    context = await browser.new_context(
        viewport={"width": 1366, "height": 900}, locale=LOCALE[language], ignore_https_errors=True
    )
    context.set_default_timeout(TIMEOUT_MS)
    return context


LOCALE = {"kk": "kk-KZ", "ru": "ru-RU", "en": "en-GB"}


def watch_console(page: Page, problems: list[str]) -> None:
    """Collect the page's script errors and CSP violations (a test asserts there are none)."""
    page.on("pageerror", lambda error: problems.append(f"pageerror: {error}"))
    page.on(
        "console",
        lambda message: (
            problems.append(f"console: {message.text}")
            if message.type == "error" and "Content Security Policy" in message.text
            else None
        ),
    )


# --- page checks ------------------------------------------------------------------------------


def catalog(language: str) -> dict[str, str]:
    return json.loads((WEB_CLIENT / "i18n" / f"{language}.json").read_text(encoding="utf-8"))


def allowed_texts(language: str) -> list[str]:
    """Every text the interface may show in ``language``: catalog values and the parts around placeholders."""
    allowed: set[str] = set()
    for text in catalog(language).values():
        allowed.add(" ".join(text.split()))
        for piece in PLACEHOLDER.split(text):
            piece = " ".join(piece.split())
            if piece:
                allowed.add(piece)
    return sorted(allowed)


UNTRANSLATED_TEXT_JS = """
(allowed) => {
  const ok = new Set(allowed);
  const bad = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode;
    const text = node.textContent.replace(/\\s+/g, ' ').trim();
    if (!text) continue;
    const parent = node.parentElement;
    if (!parent || parent.closest('[data-value], script, style, noscript, template, svg, option')) continue;
    if (!parent.checkVisibility({ checkOpacity: true, checkVisibilityCSS: true })) continue;
    if (!ok.has(text)) bad.push(text);
  }
  return bad;
}
"""


async def assert_all_text_from_catalog(page: Page, language: str) -> None:
    """Fail when a visible text is not a catalog text of ``language`` (data is marked ``data-value``)."""
    stray = await page.evaluate(UNTRANSLATED_TEXT_JS, allowed_texts(language))
    assert not stray, f"text not from the {language} catalog: {stray}"


async def screenshot(page: Page, flow: str, language: str, screen: str) -> Path:
    """Save the page as test-artifacts/screenshots/<flow>-<language>-<screen>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{flow}-{language}-{screen}.png"
    await page.screenshot(path=str(path), full_page=False)
    return path


async def visible_text(page: Page, selector: str) -> str:
    return " ".join((await page.locator(selector).inner_text()).split())


def t(language: str, key: str) -> str:
    """A catalog text (what the page should show)."""
    return catalog(language)[key]


# --- the operator over the signaling protocol (for flows that need no courtroom camera) ----------


class OperatorSocket:
    """The courtroom console spoken directly over ``/ws``: admits, starts, ends."""

    def __init__(self, server: LiveServer, hearing_id: str) -> None:
        self.server = server
        self.hearing_id = hearing_id
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.states: list[dict[str, Any]] = []

    async def connect(self) -> None:
        await self.server.api("GET", "/api/v1/auth/me", expect=200)  # ensures the staff session exists
        assert self.server.staff is not None
        self.ws = await self.server.staff.ws_connect("/ws", headers={"Origin": self.server.base_url})
        await self.send("join", hearing_id=self.hearing_id, **{"as": "courtroom"})
        await self.expect("hearing")

    async def send(self, message_type: str, /, **fields: Any) -> None:
        assert self.ws is not None
        await self.ws.send_str(json.dumps({"type": message_type, **fields}))

    async def expect(self, kind: str, where: Any = None, within: float = 15.0) -> dict[str, Any]:
        assert self.ws is not None
        import asyncio

        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"no {kind} message")
            frame = await self.ws.receive(timeout=remaining)
            if frame.type is not aiohttp.WSMsgType.TEXT:
                raise ConnectionError(f"operator socket closed: {frame.type}")
            message = json.loads(frame.data)
            if message["type"] == "state":
                self.states.append(message)
            if message["type"] == "error":
                raise AssertionError(f"operator got an error: {message}")
            if message["type"] == kind and (where is None or where(message)):
                return message

    async def waiting_party(self, party_id: str) -> None:
        await self.expect(
            "state",
            lambda m: any(w["id"] == party_id and w["state"] == "waiting" for w in m.get("waiting", [])),
        )

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()


def names_by_id(state: dict[str, Any]) -> dict[str, str]:
    return {p["id"]: p["name"] for p in state.get("participants", [])}


def event_types(events: Sequence[HearingEvent]) -> list[str]:
    return [e.event for e in events]
