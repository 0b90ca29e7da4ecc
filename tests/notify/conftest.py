"""Fixtures for the notification tests: the app wired to a test SMTP server and SMS gateway on loopback."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

_TESTS = Path(__file__).resolve().parent.parent
if str(_TESTS / "api") not in sys.path:
    sys.path.insert(0, str(_TESTS / "api"))

from api_harness import Api, cheap_passwords  # noqa: E402
from notify_harness import StartApi  # noqa: E402
from notify_peers import SmsGateway, SmtpPeer, start_gateway, start_smtp  # noqa: E402

from hearing_server.auth.passwords import PASSWORDS  # noqa: E402
from hearing_server.config import Config  # noqa: E402
from hearing_server.web.app import create_app  # noqa: E402


@pytest.fixture
async def smtp() -> AsyncIterator[SmtpPeer]:
    """A test SMTP server on 127.0.0.1."""
    peer = await start_smtp()
    yield peer
    await peer.close()


@pytest.fixture
async def gateway() -> AsyncIterator[SmsGateway]:
    """A test SMS gateway on 127.0.0.1."""
    found = await start_gateway()
    yield found
    assert found.server is not None
    await found.server.close()


@pytest.fixture
def notify_config(config: Config, smtp: SmtpPeer, gateway: SmsGateway) -> Config:
    """The test configuration with both channels pointing at the test peers, and fast retries."""
    return config.model_copy(
        update={
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp.port,
            "smtp_security": "none",
            "smtp_from": "hearings@court.test",
            "smtp_timeout_s": 2.0,
            "sms_url": gateway.url,
            "sms_auth_header": "Authorization: Bearer test-key",
            "sms_body_template": '{"to": "{to}", "text": "{text}", "sender": "SUD"}',
            "sms_timeout_s": 1.0,
            "notify_poll_s": 0.05,
            "notify_retry_base_s": 0.2,
            "notify_retry_max_s": 1.0,
            "notify_reminder_hours": [],
            "court_name": "Алматы қаласының мамандандырылған ауданаралық экономикалық соты",
        }
    )


@pytest.fixture
async def start_api(notify_config: Config) -> AsyncIterator[StartApi]:
    """Starts the app (with configuration overrides); every app started is stopped at the end."""
    clients: list[TestClient[Any, Any]] = []

    async def start(**overrides: Any) -> Api:
        app = create_app(notify_config.model_copy(update=overrides) if overrides else notify_config)
        app[PASSWORDS] = cheap_passwords()
        client: TestClient[Any, Any] = TestClient(
            TestServer(app, host="127.0.0.1"), cookie_jar=aiohttp.DummyCookieJar()
        )
        await client.start_server()
        clients.append(client)
        return Api(client)

    yield start
    for client in clients:
        await client.close()
