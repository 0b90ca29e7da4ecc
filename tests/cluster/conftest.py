"""Fixtures of the cluster tests: an empty PostgreSQL database of this run (clusters need PostgreSQL)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hearing_server.store.db import create_engine, sessionmaker


async def _empty(url: str) -> None:
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
        await conn.execute(text(f"TRUNCATE {names} CASCADE"))
    await engine.dispose()


@pytest.fixture
async def cluster_url(postgres_url: str | None) -> AsyncIterator[str]:
    """This run's PostgreSQL database, emptied."""
    if postgres_url is None:
        pytest.skip("HEARING_TEST_DATABASE_URL not set: a cluster needs PostgreSQL")
    await _empty(postgres_url)
    yield postgres_url


@pytest.fixture
async def sessions(cluster_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on the cluster database."""
    engine = create_engine(cluster_url)
    yield sessionmaker(engine)
    await engine.dispose()
