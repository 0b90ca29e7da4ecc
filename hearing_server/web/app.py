"""The aiohttp application: wiring of configuration, database, API, signaling and pages."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator

from aiohttp import web

from archive import routes as archive_routes
from hearing_server.api import routes as api_routes
from hearing_server.api import security
from hearing_server.api.errors import error_middleware
from hearing_server.api.hearings import SCHEDULE_LOCK
from hearing_server.api.metrics import METRICS, Metrics, metrics_middleware
from hearing_server.auth.passwords import PASSWORDS, Passwords
from hearing_server.auth.ratelimit import LOGIN_LIMITER, LoginLimiter
from hearing_server.config import CONFIG, Config
from hearing_server.notify.worker import notifications_context
from hearing_server.record import context as records
from hearing_server.record.event_log import EVENTS, EventRecorder
from hearing_server.store.db import ENGINE, SESSIONS, create_engine, sessionmaker, upgrade
from hearing_server.web import ws as signaling_ws
from web_client import routes as web_client_routes


async def _database(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    await upgrade(config.effective_database_url)
    engine = create_engine(config.effective_database_url)
    app[ENGINE] = engine
    app[SESSIONS] = sessionmaker(engine)
    app[EVENTS] = EventRecorder(app[SESSIONS], config.recordings_dir, max_open_logs=config.max_open_logs)
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
    # After the database: cleanup runs in reverse, so the worker finishes its attempt before the engine goes.
    app.cleanup_ctx.append(notifications_context)
    api_routes.setup(app)

    app.cleanup_ctx.append(records.records_context)
    signaling_ws.setup(
        app,
        recording_factory=records.recording_factory(app),
        on_ended=functools.partial(records.seal_when_ended, app),
    )
    archive_routes.setup(app)
    web_client_routes.setup(app)
    return app
