"""Fixtures for the reliability suite: the app for REST calls, the live-hearing bench, and knobs for size."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

# The harnesses of the API, signaling and media suites are reused as they are, not copied.
_TESTS = Path(__file__).resolve().parent.parent
for _folder in ("api", "signaling", "media", "integration"):
    if str(_TESTS / _folder) not in sys.path:
        sys.path.insert(0, str(_TESTS / _folder))

from api_harness import Api, cheap_passwords  # noqa: E402
from reliability_harness import MakeApi  # noqa: E402
from signaling_harness import Bench, FakeRouter  # noqa: E402

from hearing_server.auth.passwords import PASSWORDS  # noqa: E402
from hearing_server.config import Config  # noqa: E402
from hearing_server.record.playback import PlaybackJobs  # noqa: E402
from hearing_server.web import ws as signaling_ws  # noqa: E402
from hearing_server.web.app import create_app  # noqa: E402
from media.aiortc_adapter import install_host_addresses, uninstall_host_addresses  # noqa: E402
from media.contract import FrameSink, MediaEvents, MediaSettings  # noqa: E402
from signaling.live import default_media_factory  # noqa: E402


@pytest.fixture
def make_api(aiohttp_client: Any, config: Config) -> MakeApi:
    """Starts the app with optional configuration overrides; cookies only travel in explicit headers."""

    async def make(**overrides: Any) -> Api:
        app = create_app(config.model_copy(update=overrides) if overrides else config)
        app[PASSWORDS] = cheap_passwords()
        client = await aiohttp_client(app, cookie_jar=aiohttp.DummyCookieJar())
        return Api(client)

    return make


@pytest.fixture
def make_bench(aiohttp_client: Any, config: Config) -> Any:
    """The app with ``/ws`` (fake media unless ``media_factory`` is given) and configuration overrides."""

    async def make(media_factory: Any = None, **overrides: Any) -> Bench:
        cfg = config.model_copy(update=overrides) if overrides else config
        app = create_app(cfg)
        app[PASSWORDS] = cheap_passwords()
        routers: list[FakeRouter] = []

        def fake_factory(settings: MediaSettings, events: MediaEvents, sink: FrameSink | None) -> FakeRouter:
            router = FakeRouter(settings, events, sink)
            routers.append(router)
            return router

        app[signaling_ws.MEDIA_FACTORY] = media_factory or fake_factory
        client = await aiohttp_client(app)
        return Bench(client=client, app=app, routers=routers)

    return make


@pytest.fixture
async def media_bench(make_bench: Any, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Bench]:
    """The app with the real media plane and recorder; playback rendering is left out (no stray processes)."""
    monkeypatch.setattr(PlaybackJobs, "enqueue", lambda self, folder, **kwargs: None)
    bench = await make_bench(media_factory=default_media_factory)
    await bench.make_hearing()
    install_host_addresses(MediaSettings(host_addresses=["127.0.0.1"]))
    try:
        yield bench
    finally:
        uninstall_host_addresses()
