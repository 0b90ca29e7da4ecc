"""Security gaps not covered by tests/api and tests/signaling: Origin variants on ``/ws``, the security
headers on every page, file and refusal (and HSTS over HTTPS), and no secret in any log record.

Already covered elsewhere (not repeated): the role × endpoint access matrix and CSRF (tests/api/
test_api_access.py), session fixation and login rate limit (tests/api/test_api_auth.py), missing, foreign
and ``null`` Origin (tests/signaling/test_signaling_guards.py), security headers on API responses
(tests/api/test_api_operations.py).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from api_harness import PASSWORD, Api, cheap_passwords
from reliability_harness import MakeApi, MakeBench
from signaling_harness import Bench

from hearing_server.api.registry import ROUTES
from hearing_server.api.security import SECURITY_HEADERS
from hearing_server.auth.passwords import PASSWORDS
from hearing_server.auth.staff import CSRF_HEADER, SESSION_COOKIE
from hearing_server.config import Config
from hearing_server.domain.party import StaffRole
from hearing_server.logs import AccessLogger, JsonFormatter, TextFormatter, setup_logging
from hearing_server.tls import server_ssl_context
from hearing_server.web.app import create_app


def _origin_variants(origin: str) -> list[str]:
    scheme, rest = origin.split("://", 1)
    host, port = rest.rsplit(":", 1)
    other_scheme = "https" if scheme == "http" else "http"
    return [
        f"{other_scheme}://{rest}",  # same host, other scheme
        f"{scheme}://{host}:{int(port) + 1}",  # same host, other port
        f"{scheme}://{host}",  # default port
        f"{scheme}://{host}.evil.example:{port}",  # the host as a prefix of another
        f"{scheme}://{rest}@evil.example",  # the host as userinfo
        f"{scheme}://evil.example/{rest}",  # the host in the path
        f"{scheme}://evil.example#{rest}",
        "NULL",
        " null",
        "",
        "file://",
        "chrome-extension://abcdefghijklmnop",
        f"{origin}, https://evil.example",  # two origins in one header
    ]


async def test_websocket_origin_variants_are_refused(make_bench: MakeBench) -> None:
    bench: Bench = await make_bench()
    refused = []
    for origin in _origin_variants(bench.origin):
        try:
            ws = await bench.client.ws_connect("/ws", headers={"Origin": origin})
        except aiohttp.WSServerHandshakeError as exc:
            assert exc.status == 403, (origin, exc.status)
            refused.append(origin)
        else:
            await ws.close()
    assert refused == _origin_variants(bench.origin)
    peer = await bench.connect()  # the server's own origin still works
    await peer.send("ping")
    await peer.expect("pong")


def _page_urls(app: web.Application) -> list[str]:
    """One URL for every page route and one real file in every static folder."""
    urls = []
    for ep in app[ROUTES].endpoints:
        if ep.method == "GET" and not ep.openapi and ep.path != "/ws":
            urls.append(ep.path.replace("{token}", "A" * 43).replace("{hearing_id}", "01" + "A" * 24))
    for folder in app[ROUTES].static_folders:
        files = sorted(p for p in Path(folder.directory).rglob("*") if p.is_file())
        assert files, folder
        urls.append(f"{folder.prefix}/{files[0].relative_to(folder.directory).as_posix()}")
        urls.append(f"{folder.prefix}/no-such-file.js")
    return urls


def _check_headers(url: str, status: int, headers: Any) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert headers.get(name) == value, (url, status, name, headers.get(name))
    csp = headers["Content-Security-Policy"]
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp, csp
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp, csp
    directives = {part.split()[0]: part.split()[1:] for part in csp.split(";") if part.strip()}
    # sockets and fetches only to this origin: no ``wss:``/``ws:`` wildcard that reaches any host
    assert directives["connect-src"] == ["'self'"], csp
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"


async def test_security_headers_on_every_page_file_and_refusal(make_api: MakeApi) -> None:
    api: Api = await make_api()
    urls = _page_urls(api.app)
    assert any(u.startswith("/join/") for u in urls) and any(u.startswith("/static/") for u in urls)
    for url in urls:
        async with api.client.get(url) as response:
            assert response.status < 500, url
            _check_headers(url, response.status, response.headers)
            assert "Strict-Transport-Security" not in response.headers  # plain HTTP here
    async with api.client.get("/ws", headers={"Origin": "https://evil.example"}) as refused:
        assert refused.status == 403
        _check_headers("/ws", refused.status, refused.headers)


async def test_hsts_over_https_on_pages_files_and_api(config: Config, tmp_path: Path) -> None:
    app = create_app(config)
    app[PASSWORDS] = cheap_passwords()
    server = TestServer(app, scheme="https")
    await server.start_server(ssl=server_ssl_context(config))
    async with TestClient(server, connector=aiohttp.TCPConnector(ssl=False)) as client:
        for url in ["/healthz", "/api/v1/hearings", f"/join/{'A' * 43}", *_page_urls(app)[-4:]]:
            async with client.get(url) as response:
                assert response.headers.get("Strict-Transport-Security") == "max-age=31536000", url
                _check_headers(url, response.status, response.headers)


class _Everything(logging.Handler):
    """Keeps every record of every logger."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def test_no_secret_or_token_appears_in_any_log(config: Config) -> None:
    root = logging.getLogger()
    old_handlers, old_level = list(root.handlers), root.level
    setup_logging("DEBUG")  # the server's own logging at its most talkative
    handler = _Everything()
    root.addHandler(handler)
    try:
        secrets = await _a_day_with_secrets(config)
    finally:
        for current in list(root.handlers):
            root.removeHandler(current)
        for old in old_handlers:
            root.addHandler(old)
        root.setLevel(old_level)

    access = [r for r in handler.records if r.name == "aiohttp.access"]
    assert len(access) >= 8, "the access log was not captured: the scan would prove nothing"
    assert any("/join/" in r.getMessage() for r in access)
    formatters = [TextFormatter(), JsonFormatter()]
    for record in handler.records:
        raw = " ".join(
            [record.getMessage(), repr(record.args), str(record.exc_text or ""), repr(vars(record))]
        )
        written = [f.format(record) for f in formatters]
        for name, secret in secrets.items():
            for text in written:
                assert secret not in text, f"{name} written by {record.name}: {text[:300]}"
            # not even relying on the scrubber: the record itself holds no secret
            assert secret not in raw, f"{name} in a {record.name} record: {raw[:300]}"


async def _a_day_with_secrets(config: Config) -> dict[str, str]:
    """Log in (also wrongly), schedule, invite, open the link, join by token and as staff, log out."""
    app = create_app(config)
    app[PASSWORDS] = cheap_passwords()
    server = TestServer(app)
    await server.start_server(access_log_class=AccessLogger)  # as `serve` runs it (hearing_server/cli.py)
    async with TestClient(server, cookie_jar=aiohttp.DummyCookieJar()) as client:
        return await _the_day(client)


async def _the_day(client: TestClient[Any, Any]) -> dict[str, str]:
    api = Api(client)
    user = await api.user(StaffRole.OPERATOR, username="clerk")
    wrong_password = "Tr0ub4dor&3-wrong"
    bad = await api.call("POST", "/api/v1/auth/login", json={"username": "clerk", "password": wrong_password})
    assert bad.status == 401
    async with client.post("/api/v1/auth/login", json={"username": user.username, "password": PASSWORD}) as r:
        assert r.status == 200, await r.text()
        cookie = r.cookies[SESSION_COOKIE].value
        csrf = (await r.json())["csrf_token"]
    headers = {"Cookie": f"{SESSION_COOKIE}={cookie}", CSRF_HEADER: csrf}
    async with client.post("/api/v1/hearings", json=api.hearing_body(), headers=headers) as r:
        hearing = await r.json()
    async with client.post(
        f"/api/v1/hearings/{hearing['id']}/parties",
        json={"role": "witness", "display_name": "W"},
        headers=headers,
    ) as r:
        party = await r.json()
    async with client.post(
        f"/api/v1/hearings/{hearing['id']}/parties/{party['id']}/invitation", headers=headers
    ) as r:
        token = (await r.json())["url"].rsplit("/", 1)[-1]
    async with client.get(
        f"/join/{token}?token={token}", headers={"Referer": f"https://x/join/{token}"}
    ) as r:
        assert r.status == 200
    origin = str(client.make_url("/")).rstrip("/")
    async with client.ws_connect("/ws", headers={"Origin": origin}) as ws:
        await ws.send_str(json.dumps({"type": "join", "token": token}))
        assert json.loads((await ws.receive(timeout=5)).data)["type"] in {"hearing", "error"}
    async with client.ws_connect("/ws", headers={"Origin": origin, "Cookie": headers["Cookie"]}) as ws:
        await ws.send_str(json.dumps({"type": "join", "hearing_id": hearing["id"], "as": "courtroom"}))
        assert json.loads((await ws.receive(timeout=5)).data)["type"] == "hearing"
        await ws.send_str(json.dumps({"type": "join", "token": token}))  # a token inside an error path
        await ws.receive(timeout=5)
    async with client.post(
        "/api/v1/auth/password",
        json={"current_password": PASSWORD, "new_password": PASSWORD + "!2"},
        headers=headers,
    ) as r:
        assert r.status < 500
    async with client.get("/no/such/page", headers=headers):
        pass
    async with client.post("/api/v1/auth/logout", headers=headers) as r:
        assert r.status in (204, 401)
    return {
        "password": PASSWORD,
        "new password": PASSWORD + "!2",
        "wrong password": wrong_password,
        "session cookie": cookie,
        "CSRF token": csrf,
        "invitation token": token,
    }
