"""SMS through an HTTP gateway: a JSON body built from a template, posted with an auth header."""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from hearing_server.domain.notification import Channel
from hearing_server.notify.notifier import DeliveryFailed, OutgoingMessage, Receipt

# How much of a gateway's answer is kept as the reason of a failure or the receipt.
REPLY_LIMIT = 300


def fill_template(template: Any, values: dict[str, str]) -> Any:
    """``template`` (parsed JSON) with ``{name}`` in every string replaced by ``values[name]``."""
    if isinstance(template, str):
        for name, value in values.items():
            template = template.replace("{" + name + "}", value)
        return template
    if isinstance(template, list):
        return [fill_template(item, values) for item in template]
    if isinstance(template, dict):
        return {key: fill_template(item, values) for key, item in template.items()}
    return template


def parse_template(raw: str) -> Any:
    """The body template as JSON, or ValueError saying why it is not usable."""
    try:
        parsed = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"sms_body_template is not JSON: {exc}") from exc
    if "{text}" not in raw or "{to}" not in raw:
        raise ValueError("sms_body_template must contain {to} and {text}")
    return parsed


def parse_auth_header(raw: str) -> dict[str, str]:
    """'Name: value' as a header dict (empty for an empty string), or ValueError."""
    if not raw.strip():
        return {}
    name, sep, value = raw.partition(":")
    if not sep or not name.strip() or any(ch in raw for ch in "\r\n"):
        raise ValueError("sms_auth_header must look like 'Name: value'")
    return {name.strip(): value.strip()}


class SmsGatewayNotifier:
    """Posts each SMS to the gateway; a 2xx answer with a JSON body means accepted."""

    channel = Channel.SMS

    def __init__(self, *, url: str, auth_header: str, body_template: str, timeout_s: float = 15.0) -> None:
        self._url = url
        self._headers = parse_auth_header(auth_header)
        self._template = parse_template(body_template)
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._timeout_s = timeout_s
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # trust_env=False: a proxy from the environment must never see the links.
            self._session = aiohttp.ClientSession(timeout=self._timeout, trust_env=False)
        return self._session

    async def send(self, message: OutgoingMessage) -> Receipt:
        """Post the SMS; the gateway's answer when it accepted it."""
        body = fill_template(self._template, {"to": message.recipient, "text": message.text})
        try:
            async with self._client().post(self._url, json=body, headers=self._headers) as response:
                raw = await response.read()
                status = response.status
        except TimeoutError as exc:
            raise DeliveryFailed(f"SMS gateway did not answer in {self._timeout_s:g} s") from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise DeliveryFailed(f"SMS gateway unreachable: {type(exc).__name__}: {exc}") from exc
        text = raw.decode("utf-8", errors="replace")[:REPLY_LIMIT]
        if not 200 <= status < 300:
            raise DeliveryFailed(f"SMS gateway answered HTTP {status}: {text}")
        try:
            answer = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise DeliveryFailed(f"SMS gateway answered HTTP {status} but not JSON: {text!r}") from exc
        if not isinstance(answer, dict):
            raise DeliveryFailed(f"SMS gateway answered HTTP {status} with unexpected JSON: {text!r}")
        message_id = answer.get("id") or answer.get("message_id") or ""
        return Receipt(reply=f"HTTP {status} {text}", message_id=str(message_id))

    async def close(self) -> None:
        """Close the gateway connection pool."""
        if self._session is not None:
            await self._session.close()
