"""Fixtures of the browser tests: the live server on loopback and Playwright."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from browser_harness import CHROMIUM, LiveServer, free_port, start_server
from playwright.async_api import Playwright, async_playwright

from hearing_server.config import load_config

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "notify"))
from notify_peers import SmtpPeer, start_smtp  # noqa: E402


async def _live_server(
    tmp_path: Path, sqlite_template: Path, **settings: object
) -> AsyncIterator[LiveServer]:
    """The application on a free loopback port with the browser tests' settings (and ``settings``)."""
    database = tmp_path / "hearing.db"
    shutil.copy(sqlite_template, database)
    port = free_port()
    config = load_config(
        environ={},
        data_dir=tmp_path / "data",
        database_url=f"sqlite+aiosqlite:///{database}",
        host="127.0.0.1",
        port=port,
        public_url=f"http://127.0.0.1:{port}",
        plain_http=True,
        ice_host_addresses=["127.0.0.1"],
        court_name="Алматы қаласының №2 аудандық соты",
        timezone="Asia/Almaty",
        uvloop=False,
        media_workers=0,  # media in the test's process; tests/workers start worker processes
        **settings,
    )
    live = await start_server(config)
    try:
        yield live
    finally:
        await live.close()


@pytest.fixture
async def server(tmp_path: Path, sqlite_template: Path) -> AsyncIterator[LiveServer]:
    """The whole application on a free loopback port (plain HTTP: localhost is a secure context)."""
    async for live in _live_server(tmp_path, sqlite_template):
        yield live


@pytest.fixture
async def playwright() -> AsyncIterator[Playwright]:
    """Playwright driving the system Chromium."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"{CHROMIUM} is not installed")
    async with async_playwright() as driver:
        yield driver


@pytest.fixture
async def smtp() -> AsyncIterator[SmtpPeer]:
    """The court's mail server, played by aiosmtpd on 127.0.0.1."""
    peer = await start_smtp()
    yield peer
    await peer.close()


@pytest.fixture
async def mail_server(tmp_path: Path, sqlite_template: Path, smtp: SmtpPeer) -> AsyncIterator[LiveServer]:
    """The application on loopback, sending mail through the test SMTP server."""
    async for live in _live_server(
        tmp_path,
        sqlite_template,
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        smtp_security="none",
        smtp_from="hearings@court.test",
        notify_poll_s=0.1,
    ):
        yield live
