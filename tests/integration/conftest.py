"""Fixtures of the end-to-end tests: the harnesses of the other test folders, clips and a live server.

Run inside a loopback-only namespace:
    unshare -n sh -c 'ip link set lo up && .venv/bin/python -m pytest tests/integration'
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

_TESTS = Path(__file__).resolve().parent.parent
for _folder in ("signaling", "media", "recording"):
    if str(_TESTS / _folder) not in sys.path:
        sys.path.append(str(_TESTS / _folder))  # their harness modules, imported by name as there

from aiohttp.test_utils import TestServer  # noqa: E402
from integration_harness import Clip, LiveServer, ServerApi, make_clip, stop_renders  # noqa: E402

from hearing_server.bootstrap import FIRST_ADMIN, first_start  # noqa: E402
from hearing_server.config import Config  # noqa: E402
from hearing_server.web.app import create_app  # noqa: E402
from media.aiortc_adapter import install_host_addresses, uninstall_host_addresses  # noqa: E402
from media.contract import MediaSettings  # noqa: E402


@pytest.fixture(scope="session")
def clips() -> list[Clip]:
    """Courtroom (red, 440 Hz) and two parties (green 660 Hz, blue 880 Hz), encoded once per session."""
    return [make_clip(index) for index in range(3)]


@pytest.fixture
async def make_live_server(aiohttp_server: Any, config: Config) -> AsyncIterator[Any]:
    """Starts the whole app in this process (real media plane, recorder, sealer) with config overrides."""
    servers: list[tuple[TestServer, ServerApi]] = []
    # The test's own aiortc peers gather candidates before the server's router exists.
    install_host_addresses(MediaSettings(host_addresses=["127.0.0.1"]))

    async def make(**overrides: Any) -> LiveServer:
        cfg = config.model_copy(update=overrides) if overrides else config
        password = await first_start(cfg)
        assert password is not None
        server: TestServer = await aiohttp_server(create_app(cfg))
        api = ServerApi(str(server.make_url("/")))
        servers.append((server, api))
        await api.login(FIRST_ADMIN, password)
        await api.staff_operator()
        assert server.app is not None
        return LiveServer(server.app, cfg, api)

    try:
        yield make
    finally:
        for server, api in servers:
            await api.close()
            await server.close()
        stop_renders(config.data_dir)
        uninstall_host_addresses()


@pytest.fixture
def loopback_ice() -> Iterator[None]:
    """This process's aiortc peers gather host candidates on loopback (aioice skips it by itself)."""
    install_host_addresses(MediaSettings(host_addresses=["127.0.0.1"]))
    yield
    uninstall_host_addresses()
