"""The aiohttp application: wiring of configuration, database, API, signaling and pages."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aiohttp import web

from hearing_server import api
from hearing_server.api import security
from hearing_server.api.errors import error_middleware
from hearing_server.api.metrics import Metrics, metrics_middleware
from hearing_server.auth.passwords import Passwords
from hearing_server.auth.ratelimit import LoginLimiter
from hearing_server.config import Config
from hearing_server.events import EventRecorder
from hearing_server.keys import (
    CONFIG,
    ENGINE,
    EVENTS,
    LOGIN_LIMITER,
    METRICS,
    PASSWORDS,
    SCHEDULE_LOCK,
    SESSIONS,
)
from hearing_server.store.db import create_engine, sessionmaker, upgrade


async def _database(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    await upgrade(config.effective_database_url)
    engine = create_engine(config.effective_database_url)
    app[ENGINE] = engine
    app[SESSIONS] = sessionmaker(engine)
    app[EVENTS] = EventRecorder(app[SESSIONS], config.recordings_dir)
    yield
    await app[EVENTS].close()
    await engine.dispose()


def create_app(config: Config) -> web.Application:
    """Build the application for ``config``; the database schema is migrated on startup."""
    # Middlewares run outermost first: metrics see the final status of every request, errors become JSON.
    app = web.Application(
        client_max_size=config.max_body_bytes, middlewares=[metrics_middleware, error_middleware]
    )
    app[CONFIG] = config
    app[PASSWORDS] = Passwords()
    app[LOGIN_LIMITER] = LoginLimiter(config.login_attempts, config.login_window_s)
    app[METRICS] = Metrics()
    app[SCHEDULE_LOCK] = asyncio.Lock()
    security.setup(app)
    app.cleanup_ctx.append(_database)
    api.setup(app)

    # ---- LEAD: live hearing, pages and recording are wired here ---------------------------------
    # Every route goes through app[ROUTES] so that it has a declared access (the access-matrix test
    # fails for routes added to app.router directly):
    #   signaling.ws.setup(app)   -> app[ROUTES].add(endpoint("GET", "/ws", access=PUBLIC, raw=True,
    #                                openapi=False, ...)(handler))  (the WebSocket authenticates itself)
    #   web_client pages/static   -> app[ROUTES].add(..., raw=True, openapi=False), app[ROUTES].add_static()
    #   recording                 -> app.cleanup_ctx.append(...) after _database
    #   live gauges               -> app[METRICS].live_hearings / .live_participants (set or set_function)
    # ----------------------------------------------------------------------------------------------
    return app
