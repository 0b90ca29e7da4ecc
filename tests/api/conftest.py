"""Fixtures for the REST API tests: the app on each database backend, with cheap password hashing."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from api_harness import Api, MakeApi, cheap_passwords

from hearing_server.auth.passwords import PASSWORDS
from hearing_server.config import Config
from hearing_server.web.app import create_app


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
async def api(make_api: MakeApi) -> Api:
    """The app with the test configuration."""
    return await make_api()
