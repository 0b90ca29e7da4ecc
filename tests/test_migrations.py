"""The schema comes from Alembic migrations: from empty to head and back, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, make_url

from hearing_server.store.db import alembic_config, create_engine, upgrade_sync
from hearing_server.store.models import Base

PG_URL_ENV = "HEARING_TEST_DATABASE_URL"
TABLES = {"users", "staff_sessions", "hearings", "parties", "invitations", "hearing_events"}
TABLES |= {"notifications", "acts"}


def _admin(base: str, statement: str) -> None:
    async def run() -> None:
        engine = create_engine(base).execution_options(isolation_level="AUTOCOMMIT")
        async with engine.connect() as conn:
            await conn.execute(text(statement))
        await engine.dispose()

    asyncio.run(run())


@pytest.fixture(params=["sqlite", "postgres"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with nothing in it: a new SQLite file, or a new PostgreSQL database dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
        return
    base = os.environ.get(PG_URL_ENV)
    if not base:
        pytest.skip(f"{PG_URL_ENV} not set")
    name = f"hearing_migrations_{os.getpid()}"
    _admin(base, f'DROP DATABASE IF EXISTS "{name}"')
    _admin(base, f'CREATE DATABASE "{name}"')
    yield make_url(base).set(database=name).render_as_string(hide_password=False)
    _admin(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _inspect(url: str) -> dict[str, Any]:
    def look(connection: Connection) -> dict[str, Any]:
        inspector = inspect(connection)
        tables = set(inspector.get_table_names())
        version = None
        if "alembic_version" in tables:
            version = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
        diffs = None
        if TABLES <= tables:
            found = compare_metadata(MigrationContext.configure(connection), Base.metadata)
            flat = [d for item in found for d in (item if isinstance(item, list) else [item])]
            # Tables and indexes the models do not declare (other modules' tables, extra indexes) are fine;
            # everything the models declare must exist as declared.
            diffs = [d for d in flat if not d[0].startswith("remove_")]
        return {"tables": tables, "version": version, "diffs": diffs}

    async def run() -> dict[str, Any]:
        engine = create_engine(url)
        async with engine.connect() as conn:
            found = await conn.run_sync(look)
        await engine.dispose()
        return found

    return asyncio.run(run())


def _head() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head


def test_upgrade_from_empty_then_downgrade_to_base(empty_database: str) -> None:
    assert _inspect(empty_database)["tables"] - {"alembic_version"} == set()

    upgrade_sync(empty_database)
    migrated = _inspect(empty_database)
    assert TABLES <= migrated["tables"]
    assert migrated["version"] == _head()
    # Every table, column and index the models declare was created by the migrations, with its type.
    assert migrated["diffs"] == []

    upgrade_sync(empty_database)  # a second upgrade is a no-op
    assert _inspect(empty_database)["version"] == _head()

    command.downgrade(alembic_config(empty_database), "base")
    emptied = _inspect(empty_database)
    assert emptied["tables"] & TABLES == set()
    assert emptied["version"] is None

    upgrade_sync(empty_database)  # and up again from base
    assert TABLES <= _inspect(empty_database)["tables"]


def test_hearing_staff_migration_keeps_existing_hearings(empty_database: str) -> None:
    """0007 adds the staff accounts as empty columns: older hearings keep their judge's name."""
    config = alembic_config(empty_database)
    command.upgrade(config, "0006_acts")

    async def run(statement: str) -> list[Any]:
        engine = create_engine(empty_database)
        async with engine.begin() as conn:
            result = await conn.execute(text(statement))
            rows = list(result) if result.returns_rows else []
        await engine.dispose()
        return rows

    asyncio.run(
        run(
            "INSERT INTO hearings (id, court, courtroom, case_number, title, scheduled_start,"
            " duration_minutes, presiding_judge, notice_language, status, created_at, updated_at, legal_hold)"
            " VALUES"
            " ('h1', 'C', 'R', '2-1/2026', 'T', '2099-01-01 10:00:00+00', 60, 'Judge Old', 'ru', 'scheduled',"
            " '2026-01-01 10:00:00+00', '2026-01-01 10:00:00+00', false)"
        )
    )
    command.upgrade(config, "0007_hearing_staff")
    rows = asyncio.run(run("SELECT presiding_judge, presiding_judge_id, secretary_id FROM hearings"))
    assert [tuple(r) for r in rows] == [("Judge Old", None, None)]
    command.downgrade(config, "0006_acts")
    kept = asyncio.run(run("SELECT id, presiding_judge FROM hearings"))
    assert [tuple(r) for r in kept] == [("h1", "Judge Old")]
