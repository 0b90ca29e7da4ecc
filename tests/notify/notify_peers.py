"""Real protocol peers for the notification tests: an SMTP server (aiosmtpd) and an SMS gateway (aiohttp),
both listening on 127.0.0.1 in the test's event loop, each with switchable faults."""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.header import decode_header, make_header
from email.message import EmailMessage
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session


@dataclass
class ReceivedMail:
    """One mail the test SMTP server accepted: the envelope and the parsed message."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    raw: bytes

    def raw_header(self, name: str) -> str:
        """A header as it came over the wire (still encoded)."""
        value = message_from_bytes(self.raw)[name]
        assert value is not None, name
        return str(value)

    @property
    def text(self) -> str:
        """The decoded plain-text body."""
        return str(self.message.get_content())


@dataclass
class MailDrop:
    """The SMTP server's handler: accepts (optionally slowly), refuses with 550, or hangs in DATA."""

    mode: str = "accept"
    delay_s: float = 0.0
    mails: list[ReceivedMail] = field(default_factory=list)
    refused: int = 0
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        if self.mode == "refuse":
            self.refused += 1
            return "550 5.7.1 Message rejected by test policy"
        if self.mode == "hang":
            await asyncio.sleep(3600)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        raw = envelope.original_content or envelope.content
        assert isinstance(raw, bytes)
        message = message_from_bytes(raw, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.mails.append(ReceivedMail(str(envelope.mail_from), list(envelope.rcpt_tos), message, raw))
        self.arrived.set()
        return f"250 2.0.0 Ok: queued as Q{len(self.mails)}"

    async def wait_for(self, count: int, within_s: float = 15.0) -> list[ReceivedMail]:
        """Wait until ``count`` mails have arrived; all of them."""
        async with asyncio.timeout(within_s):
            while len(self.mails) < count:
                self.arrived.clear()
                await self.arrived.wait()
        return self.mails


@dataclass
class SmtpPeer:
    """A running test SMTP server."""

    drop: MailDrop
    server: asyncio.Server
    port: int

    async def close(self) -> None:
        """Stop listening."""
        self.server.close()


@dataclass
class Accounts:
    """The SMTP server's logins: who may send, and who tried."""

    users: dict[str, str] = field(default_factory=dict)
    tried: list[tuple[str, str]] = field(default_factory=list)

    def __call__(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        login, password = data.login.decode(), data.password.decode()
        self.tried.append((mechanism, login))
        if self.users.get(login) == password:
            return AuthResult(success=True, auth_data=data)
        return AuthResult(success=False, handled=False)  # aiosmtpd answers 535


async def start_smtp(
    *,
    starttls: ssl.SSLContext | None = None,
    implicit_tls: ssl.SSLContext | None = None,
    accounts: Accounts | None = None,
) -> SmtpPeer:
    """An SMTP server on 127.0.0.1 (a free port) in this event loop: plain, STARTTLS (required) or implicit
    TLS, with logins required when ``accounts`` is given."""
    drop = MailDrop()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(
            drop,
            hostname="mail.court.test",
            tls_context=starttls,
            require_starttls=starttls is not None,
            authenticator=accounts,
            auth_required=accounts is not None,
            # aiosmtpd does not see a TLS socket it did not upgrade itself; the socket is TLS anyway.
            auth_require_tls=implicit_tls is None,
            loop=loop,
        ),
        "127.0.0.1",
        0,
        ssl=implicit_tls,
    )
    port = server.sockets[0].getsockname()[1]
    return SmtpPeer(drop, server, port)


async def start_silent_server() -> tuple[asyncio.Server, int]:
    """A TCP server on 127.0.0.1 that accepts connections and never says a word (a hanging SMTP server)."""

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(3600)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


@dataclass
class SmsGateway:
    """An HTTP SMS gateway: answers per ``modes`` (one per request, then ``default``)."""

    modes: list[str] = field(default_factory=list)
    default: str = "ok"
    requests: list[dict[str, Any]] = field(default_factory=list)
    accepted: list[dict[str, Any]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    server: TestServer | None = None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Take one SMS request."""
        body = await request.json()
        self.requests.append({"headers": dict(request.headers), "body": body})
        mode = self.modes.pop(0) if self.modes else self.default
        if mode == "500":
            return web.Response(status=500, text="internal error")
        if mode == "garbage":
            return web.Response(status=200, text="<html>gateway maintenance</html>", content_type="text/html")
        if mode == "slow":
            await asyncio.sleep(30)
        if request.headers.get("Authorization") != "Bearer test-key":
            return web.json_response({"error": "unauthorized"}, status=401)
        self.accepted.append(body)
        self.arrived.set()
        return web.json_response({"id": f"sms-{len(self.accepted)}", "status": "queued"})

    @property
    def url(self) -> str:
        """Where the gateway takes messages."""
        assert self.server is not None
        return str(self.server.make_url("/send"))

    async def wait_for(self, count: int, within_s: float = 15.0) -> list[dict[str, Any]]:
        """Wait until ``count`` messages were accepted."""
        async with asyncio.timeout(within_s):
            while len(self.accepted) < count:
                self.arrived.clear()
                await self.arrived.wait()
        return self.accepted


async def start_gateway() -> SmsGateway:
    """The SMS gateway on 127.0.0.1."""
    gateway = SmsGateway()
    app = web.Application()
    app.router.add_post("/send", gateway.handle)
    gateway.server = TestServer(app, host="127.0.0.1")
    await gateway.server.start_server()
    return gateway


def rfc2047(raw: str) -> str:
    """A header decoded as RFC 2047 says (whitespace between encoded words ignored)."""
    return str(make_header(decode_header(raw)))
