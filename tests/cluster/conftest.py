"""Fixtures of the cluster tests: an empty PostgreSQL database of this run (clusters need PostgreSQL)."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

_TESTS = Path(__file__).resolve().parent.parent
for _folder in ("integration", "signaling", "media", "recording", "network", "browser"):
    if str(_TESTS / _folder) not in sys.path:
        sys.path.append(str(_TESTS / _folder))  # their harness modules, imported by name as there

from cluster_harness import NodeNet, node_network  # noqa: E402
from integration_harness import Clip, make_clip  # noqa: E402

from hearing_server.store.db import create_engine, sessionmaker  # noqa: E402
from media.aiortc_adapter import install_host_addresses, uninstall_host_addresses  # noqa: E402
from media.contract import MediaSettings  # noqa: E402


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


@pytest.fixture(scope="session")
def clips() -> list[Clip]:
    """Courtroom (red, 440 Hz) and two parties (green 660 Hz, blue 880 Hz), encoded once per session."""
    return [make_clip(index) for index in range(3)]


@pytest.fixture
def loopback_ice() -> Iterator[None]:
    """This process's aiortc peers gather host candidates on loopback (aioice skips it by itself)."""
    install_host_addresses(MediaSettings(host_addresses=["127.0.0.1"]))
    yield
    uninstall_host_addresses()


@pytest.fixture
def cluster_net() -> Iterator[NodeNet]:
    """Two node hosts and this process on a lab switch (loopback where namespaces cannot be made); this
    process's aiortc peers offer its lab address."""
    with node_network(2) as net:
        install_host_addresses(MediaSettings(host_addresses=[net.client]))
        try:
            yield net
        finally:
            uninstall_host_addresses()
