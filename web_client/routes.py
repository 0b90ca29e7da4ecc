"""Routes of the web client: pages through the route table, assets under ``/static/``."""

from __future__ import annotations

from aiohttp import web

from hearing_server.api.registry import ROUTES, endpoint
from hearing_server.auth.access import PUBLIC
from web_client import pages

TAG = "pages"
ROUTES_SERVED = (
    ("/", pages.home, "The site root: redirects to the console."),
    ("/login", pages.login_page, "The staff login page."),
    ("/console", pages.home, "Redirects to /console/."),
    ("/console/", pages.console_page, "The operator's hearings, parties and links (staff)."),
    ("/console/hearing/{hearing_id}", pages.run_hearing_page, "The courtroom console of a hearing (staff)."),
    ("/join/{token}", pages.join_page, "The party's page for an invitation link."),
    ("/archive/", pages.archive_page, "The archive browser (staff)."),
    ("/archive/hearing/{hearing_id}", pages.archive_page, "An archived hearing (staff)."),
    ("/client/settings.json", pages.client_settings, "Court name, time zone and languages for the pages."),
)


def setup(app: web.Application) -> None:
    """Serve the pages and their assets (``/static/...``) through the app's route table."""
    table = app[ROUTES]
    for path, handler, summary in ROUTES_SERVED:
        declare = endpoint("GET", path, access=PUBLIC, tag=TAG, summary=summary, raw=True, openapi=False)
        table.add(declare(handler))
    for folder in pages.ASSET_FOLDERS:
        table.add_static(f"/static/{folder}", pages.ROOT / folder)
