"""The aiohttp application: wiring of configuration, database, API, signaling and pages."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from hearing_server.config import Config
from hearing_server.events import EventRecorder
from hearing_server.keys import CONFIG, ENGINE, EVENTS, SESSIONS
from hearing_server.store.db import create_engine, sessionmaker, upgrade


async def _database(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    await upgrade(config.effective_database_url)
    engine = create_engine(config.effective_database_url)
    app[ENGINE] = engine
    app[SESSIONS] = sessionmaker(engine)
    app[EVENTS] = EventRecorder(app[SESSIONS])
    yield
    await engine.dispose()


def create_app(config: Config) -> web.Application:
    """Build the application for ``config``; the database schema is migrated on startup."""
    app = web.Application(client_max_size=config.max_body_bytes)
    app[CONFIG] = config
    app.cleanup_ctx.append(_database)
    return app
