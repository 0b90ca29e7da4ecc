"""Mounting the REST API: every endpoint module's declarations go into the app's one route table."""

from __future__ import annotations

from aiohttp import web

from hearing_server.api import (
    acts,
    cluster,
    health,
    hearings,
    invitations,
    login,
    openapi,
    parties,
    records,
    signing_keys,
    users,
)
from hearing_server.api.registry import ROUTES, RouteTable

API_MODULES = (
    health,
    openapi,
    login,
    hearings,
    parties,
    invitations,
    users,
    signing_keys,
    records,
    cluster,
    acts,
)


def setup(app: web.Application) -> RouteTable:
    """Create the app's route table (``app[ROUTES]``) and serve every API endpoint through it."""
    table = RouteTable(app.router)
    app[ROUTES] = table
    for module in API_MODULES:
        table.add(*module.ENDPOINTS)
    return table
