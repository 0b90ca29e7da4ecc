"""Fixtures of the media-worker tests: a bare worker process on a channel the test speaks directly."""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

_TESTS = Path(__file__).resolve().parent.parent
for _folder in ("signaling", "media", "recording", "integration"):
    if str(_TESTS / _folder) not in sys.path:
        sys.path.append(str(_TESTS / _folder))  # their harness modules, imported by name as there

from worker_harness import BareWorker  # noqa: E402

from media_worker.channel import Channel  # noqa: E402


@pytest.fixture
async def bare_worker() -> AsyncIterator[BareWorker]:
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "media_worker", "--fd", str(child.fileno()), pass_fds=[child.fileno()]
    )
    child.close()
    worker = BareWorker(process, await Channel.open(parent))
    try:
        ready = await worker.next_message(30)
        assert ready["type"] == "ready" and ready["pid"] == process.pid
        yield worker
    finally:
        await worker.channel.close()
        try:
            async with asyncio.timeout(10):
                await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()


@pytest.fixture(scope="session")
def clips() -> list[Any]:
    """Two hearings' courtrooms and parties: four participants' media, encoded once per session."""
    from integration_harness import make_clip

    return [make_clip(index) for index in range(4)]


@pytest.fixture
def loopback_ice() -> Any:
    """This process's aiortc peers gather host candidates on loopback (aioice skips it by itself)."""
    from media.aiortc_adapter import install_host_addresses, uninstall_host_addresses
    from media.contract import MediaSettings

    install_host_addresses(MediaSettings(host_addresses=["127.0.0.1"]))
    yield
    uninstall_host_addresses()
