"""The pages of the web client: each a static HTML file, served with headers that keep links private."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aiohttp import web
from yarl import URL

from hearing_server.auth.redirects import safe_next_path
from hearing_server.auth.staff import current_session
from hearing_server.config import CONFIG

ROOT = Path(__file__).resolve().parent
ASSET_FOLDERS = ("shared", "join", "console", "archive", "i18n", "styles")
LANGUAGES = ("kk", "ru", "en")
NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


@dataclass(frozen=True)
class Page:
    """One HTML page: its file and whether only logged-in staff may open it."""

    file: Path
    staff_only: bool = False


JOIN = Page(ROOT / "join" / "index.html")
LOGIN = Page(ROOT / "console" / "login.html")
CONSOLE = Page(ROOT / "console" / "index.html", staff_only=True)
RUN_HEARING = Page(ROOT / "console" / "hearing.html", staff_only=True)
ARCHIVE = Page(ROOT / "archive" / "index.html", staff_only=True)


def page_response(page: Page) -> web.FileResponse:
    """The page's HTML; never cached (a join link must not linger in caches) and never sent as a referrer."""
    response = web.FileResponse(page.file, headers=NO_STORE)
    response.content_type = "text/html"
    response.charset = "utf-8"
    return response


async def serve(request: web.Request, page: Page) -> web.StreamResponse:
    """``page``, or a redirect to the login page when it is for staff and nobody is logged in."""
    if page.staff_only and await current_session(request) is None:
        raise web.HTTPFound(URL("/login").with_query(next=request.path_qs))
    return page_response(page)


async def join_page(request: web.Request) -> web.StreamResponse:
    """The party's page; the same HTML for every token (the script reads it from the address)."""
    return await serve(request, JOIN)


async def login_page(request: web.Request) -> web.StreamResponse:
    """The staff login form; a ``next`` that could lead off the site is dropped (redirect to ``/login``)."""
    nexts = request.query.getall("next", [])
    if nexts and (len(nexts) > 1 or safe_next_path(nexts[0]) is None):
        raise web.HTTPFound("/login")
    return await serve(request, LOGIN)


async def console_page(request: web.Request) -> web.StreamResponse:
    """The operator's hearings: list, schedule, parties and links."""
    return await serve(request, CONSOLE)


async def run_hearing_page(request: web.Request) -> web.StreamResponse:
    """The courtroom console of one hearing."""
    return await serve(request, RUN_HEARING)


async def archive_page(request: web.Request) -> web.StreamResponse:
    """The archive browser (a placeholder until the archive API exists)."""
    return await serve(request, ARCHIVE)


async def home(request: web.Request) -> web.StreamResponse:
    """The site root leads to the console."""
    raise web.HTTPFound("/console/")


async def client_settings(request: web.Request) -> web.StreamResponse:
    """What every page needs first: the court's name, time zone, languages and how links can be sent."""
    config = request.app[CONFIG]
    channels = ["handover"] + (["email"] if config.smtp_host else []) + (["sms"] if config.sms_url else [])
    body = {
        "court_name": config.court_name,
        "timezone": config.timezone,
        "languages": list(LANGUAGES),
        "channels": channels,
    }
    return web.json_response(body, headers={"Cache-Control": "no-cache"})
