"""Fixtures for the court-act tests: the app on each database backend, reached through the API harness."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

_TESTS = Path(__file__).resolve().parent.parent
if str(_TESTS / "api") not in sys.path:
    sys.path.insert(0, str(_TESTS / "api"))

from api_harness import Api, cheap_passwords  # noqa: E402

from hearing_server.auth.passwords import PASSWORDS  # noqa: E402
from hearing_server.config import Config  # noqa: E402
from hearing_server.web.app import create_app  # noqa: E402


@pytest.fixture
async def api(aiohttp_client: Any, config: Config) -> Api:
    """The app with a court whose name the acts are signed in."""
    app = create_app(
        config.model_copy(update={"court_name": "Алматы қалалық соты", "act_max_bytes": 200_000})
    )
    app[PASSWORDS] = cheap_passwords()
    return Api(await aiohttp_client(app, cookie_jar=aiohttp.DummyCookieJar()))
