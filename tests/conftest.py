"""Fixtures shared by the suite: configuration and databases (SQLite always, PostgreSQL when configured)."""

from __future__ import annotations

import gc
import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from hearing_server.config import Config, load_config
from hearing_server.store.db import create_engine, upgrade_sync

PG_URL_ENV = "HEARING_TEST_DATABASE_URL"
BACKENDS = ["sqlite", "postgres"]
COLLECT_EVERY_TESTS = 50


class _Collector:
    """Counts tests between the suite's full garbage collections."""

    def __init__(self) -> None:
        self.tests = 0


@pytest.fixture(scope="session")
def _collector() -> _Collector:
    return _Collector()


@pytest.fixture(autouse=True)
def _short_collector_pauses(_collector: _Collector) -> None:
    """Objects from before a test are frozen (the collector skips them), every 50 tests after one collection.

    The whole suite runs in one process that grows past a million objects; an automatic full collection then
    stops the test's server and peers (one event loop) for over a second — measured 0.45 s at 660,000 objects
    — which a test of media timing reads as a stall of the server.
    """
    if _collector.tests % COLLECT_EVERY_TESTS == 0:
        gc.unfreeze()
        gc.collect()
    gc.freeze()
    _collector.tests += 1


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite file migrated once; each test gets a copy."""
    path = tmp_path_factory.mktemp("db-template") / "template.db"
    upgrade_sync(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str | None]:
    """A PostgreSQL database of this run's own (created beside HEARING_TEST_DATABASE_URL's, migrated
    from empty, dropped at the end), so that concurrent runs never share tables; None when not configured."""
    base = os.environ.get(PG_URL_ENV)
    if not base:
        yield None
        return
    import asyncio

    from sqlalchemy.engine import make_url

    name = f"hearing_test_{os.getpid()}"
    url = make_url(base).set(database=name).render_as_string(hide_password=False)

    async def admin(statement: str) -> None:
        engine = create_engine(base).execution_options(isolation_level="AUTOCOMMIT")
        async with engine.connect() as conn:
            await conn.execute(text(statement))
        await engine.dispose()

    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}"'))
    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    upgrade_sync(url)
    yield url
    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _truncate_postgres(url: str) -> None:
    engine = create_engine(url)
    async with engine.begin() as conn:
        tables = (
            await conn.execute(
                text(
                    "SELECT tablename FROM pg_tables"
                    " WHERE schemaname='public' AND tablename <> 'alembic_version'"
                )
            )
        ).scalars()
        names = ", ".join(f'"{t}"' for t in tables)
        if names:
            # A connection an earlier test left in a transaction would block this for ever: fail fast.
            await conn.execute(text("SET LOCAL lock_timeout = '15s'"))
            try:
                await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
            except DBAPIError as error:
                held = await _others(url)
                raise RuntimeError(f"an earlier test left a transaction open: {held}") from error
    await engine.dispose()


async def _others(url: str) -> list[tuple[str, str]]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                text(
                    "SELECT state, query FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
            return [(row.state, row.query) for row in rows]
    finally:
        await engine.dispose()


@pytest.fixture(params=BACKENDS)
async def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path, postgres_url: str | None
) -> AsyncIterator[str]:
    """A migrated, empty database: SQLite always, PostgreSQL when HEARING_TEST_DATABASE_URL is set."""
    if request.param == "sqlite":
        path = tmp_path / "hearing.db"
        shutil.copy(sqlite_template, path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    if postgres_url is None:
        pytest.skip(f"{PG_URL_ENV} not set")
    if request.node.get_closest_marker("media") is not None:
        # Media tests exercise WebRTC, not the database layer: they run once, on SQLite, to keep CI short.
        pytest.skip("media tests run on SQLite only")
    await _truncate_postgres(postgres_url)
    yield postgres_url


@pytest.fixture
def config(tmp_path: Path, database_url: str) -> Iterator[Config]:
    """A server configuration on a fresh data directory and database, loopback-only ICE."""
    yield load_config(
        environ={},
        data_dir=tmp_path / "data",
        database_url=database_url,
        ice_host_addresses=["127.0.0.1"],
        uvloop=False,
        media_workers=0,  # media in the test's process; tests/workers start worker processes
    )
