"""Fixtures for the media-plane tests: pre-encoded clips, a router with recording sink, clients."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from media_harness import Clip, Hearing, RecordingSink, Room, make_clip

from media.aiortc_adapter import uninstall_host_addresses
from media.contract import MediaSettings
from media.router import Router


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "media: moves real media over loopback; run inside `unshare -n` (loopback-only namespace)",
    )


@pytest.fixture(scope="session")
def clips() -> list[Clip]:
    """Five participants' media, encoded once per test session."""
    return [make_clip(index) for index in range(5)]


@pytest.fixture
async def room(clips: list[Clip]) -> AsyncIterator[Room]:
    """A hearing's router (VP8, loopback ICE) with a recording sink; everything closed afterwards."""
    hearing = Hearing()
    sink = RecordingSink()
    router = Router(MediaSettings(host_addresses=["127.0.0.1"]), hearing, sink)
    room = Room(router, hearing, sink, clips)
    try:
        yield room
    finally:
        await router.close()
        for client in hearing.clients.values():
            await client.drop()
        uninstall_host_addresses()
