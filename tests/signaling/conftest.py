"""Fixtures for the signaling tests: the app with ``/ws`` and a recording fake media router."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from signaling_harness import Bench, FakeRouter

from hearing_server.config import Config
from hearing_server.web import ws as signaling_ws
from hearing_server.web.app import create_app
from media.contract import FrameSink, MediaEvents, MediaSettings

MakeBench = Callable[..., Awaitable[Bench]]


@pytest.fixture
async def make_bench(aiohttp_client: Any, config: Config) -> AsyncIterator[MakeBench]:
    """Builds the app with ``/ws`` (fake media unless ``media_factory`` is given) and config overrides."""

    async def make(media_factory: Any = None, recording_factory: Any = None, **overrides: Any) -> Bench:
        cfg = config.model_copy(update=overrides) if overrides else config
        app = create_app(cfg)
        routers: list[FakeRouter] = []

        def fake_factory(settings: MediaSettings, events: MediaEvents, sink: FrameSink | None) -> FakeRouter:
            router = FakeRouter(settings, events, sink)
            routers.append(router)
            return router

        app[signaling_ws.MEDIA_FACTORY] = media_factory or fake_factory
        if recording_factory is not None:
            app[signaling_ws.RECORDING_FACTORY] = recording_factory
        client = await aiohttp_client(app)
        return Bench(client=client, app=app, routers=routers)

    yield make


@pytest.fixture
async def bench(make_bench: MakeBench) -> Bench:
    """The default bench with a scheduled hearing starting in ten minutes."""
    bench = await make_bench()
    await bench.make_hearing()
    return bench
