"""The ``hearing-server`` command: config show, db upgrade, user add, archive verify, and a real ``serve``."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import re
import signal
import socket
import ssl
import stat
import sys
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography import x509

from hearing_server.bootstrap import first_start
from hearing_server.cli import main
from hearing_server.config import Config, ConfigError, load_config
from hearing_server.logs import JsonFormatter, redact
from hearing_server.tls import certificate_hosts, ensure_self_signed, server_ssl_context
from hearing_server.web.app import create_app

PASSWORD = "a long enough password"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No HEARING_* variable of the machine leaks into a test."""
    for name in list(os.environ):
        if name.startswith("HEARING_") and name != "HEARING_TEST_DATABASE_URL":
            monkeypatch.delenv(name)


def test_config_show_prints_effective_values_with_environment_overrides(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HEARING_COURT_NAME", "Almaty City Court")
    monkeypatch.setenv("HEARING_PORT", "9443")
    assert main(["config", "show", "--format", "json", "--data-dir", str(tmp_path)]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["court_name"] == "Almaty City Court" and shown["port"] == 9443
    assert shown["database_url"] == f"sqlite+aiosqlite:///{(tmp_path / 'hearing.db').resolve()}"
    assert shown["public_url"] == "https://localhost:9443"
    assert shown["tls_cert"] == str(tmp_path / "tls" / "cert.pem")

    monkeypatch.setenv("HEARING_DATABASE_URL", "postgresql+asyncpg://court:s3cret-pw@db.local/hearings")
    assert main(["config", "show", "--data-dir", str(tmp_path)]) == 0
    toml_text = capsys.readouterr().out
    assert "s3cret-pw" not in toml_text
    values = tomllib.loads(toml_text)
    assert values["database_url"] == "postgresql+asyncpg://court:***@db.local/hearings"
    # What is printed is a usable configuration file.
    file = tmp_path / "shown.toml"
    file.write_text(toml_text.replace("court:***@", "court@"))
    reloaded = load_config(file, environ={})
    assert reloaded.court_name == "Almaty City Court" and reloaded.port == 9443


def test_config_errors_exit_with_status_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HEARING_PORT", "eighty")
    assert main(["config", "show"]) == 2
    assert "port" in capsys.readouterr().err


def test_db_upgrade_creates_the_schema(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "upgrade", "--data-dir", str(tmp_path)]) == 0
    assert (tmp_path / "hearing.db").exists()
    assert "up to date" in capsys.readouterr().out


async def test_user_add_from_stdin_then_login(
    config: Config, aiohttp_client: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HEARING_DATABASE_URL", config.effective_database_url)
    monkeypatch.setenv("HEARING_DATA_DIR", str(config.data_dir))
    monkeypatch.setattr(sys, "stdin", io.StringIO(PASSWORD + "\n"))
    argv = ["user", "add", "clerk", "--role", "operator", "--password-stdin"]
    assert await asyncio.to_thread(main, argv) == 0
    assert "created the operator account clerk" in capsys.readouterr().out

    monkeypatch.setattr(sys, "stdin", io.StringIO(PASSWORD + "\n"))
    assert await asyncio.to_thread(main, argv) == 1  # the name is taken
    assert "taken" in capsys.readouterr().err
    monkeypatch.setattr(sys, "stdin", io.StringIO("short\n"))
    assert await asyncio.to_thread(main, ["user", "add", "other", "--role", "judge", "--password-stdin"]) == 1
    assert "at least" in capsys.readouterr().err
    # a display name that would lie on screen (a right-to-left override) is refused like over the API
    name = ["--display-name", "Clerk \u202eevil"]
    assert await asyncio.to_thread(main, ["user", "add", "other", "--role", "judge", *name]) == 1
    assert "U+202E" in capsys.readouterr().err

    client = await aiohttp_client(create_app(config), cookie_jar=aiohttp.DummyCookieJar())
    response = await client.post("/api/v1/auth/login", json={"username": "clerk", "password": PASSWORD})
    assert response.status == 200
    assert (await response.json())["user"]["role"] == "operator"


async def test_first_start_creates_admin_only_once(config: Config) -> None:
    password = await first_start(config)
    assert password is not None and len(password) >= 16
    assert await first_start(config) is None


def test_archive_verify_names_a_missing_package(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "no-such-package.zip"
    assert main(["archive", "verify", str(missing)]) != 0
    captured = capsys.readouterr()
    assert "no-such-package.zip" in captured.out + captured.err


def test_self_signed_certificate_covers_the_public_host_and_is_renewed(tmp_path: Path) -> None:
    config = load_config(
        environ={}, data_dir=tmp_path, public_url="https://court.example.kz:8443", host="10.1.2.3"
    )
    hosts = certificate_hosts(config)
    assert hosts == ["localhost", "127.0.0.1", "::1", "court.example.kz", "10.1.2.3"]
    cert, key = tmp_path / "tls" / "cert.pem", tmp_path / "tls" / "key.pem"
    assert ensure_self_signed(cert, key, hosts) is True
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    names = x509.load_pem_x509_certificate(cert.read_bytes()).extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    )
    assert "court.example.kz" in names.value.get_values_for_type(x509.DNSName)
    assert ensure_self_signed(cert, key, hosts) is False  # kept while it covers the hosts
    assert ensure_self_signed(cert, key, [*hosts, "new.example.kz"]) is True
    assert (
        ensure_self_signed(cert, key, hosts, now=datetime.now(UTC) + timedelta(days=380)) is True
    )  # near expiry

    # A configured certificate and key are used as they are; half a pair is refused.
    own = load_config(environ={}, data_dir=tmp_path / "other", tls_cert=cert, tls_key=key)
    assert isinstance(server_ssl_context(own), ssl.SSLContext)
    assert not (tmp_path / "other" / "tls").exists()
    with pytest.raises(ConfigError, match="both"):
        server_ssl_context(load_config(environ={}, data_dir=tmp_path, tls_cert=cert))
    assert server_ssl_context(load_config(environ={}, data_dir=tmp_path, plain_http=True)) is None


def test_logs_never_carry_tokens_cookies_or_passwords() -> None:
    line = redact(
        'GET /join/Zm9vYmFyYmF6cXV4cXV1eA 200 Cookie: hs_session=abcDEF123; {"password": "hunter2 x", '
        '"csrf_token": "tok"} ws?token=secret&x=1'
    )
    for secret in ("Zm9vYmFyYmF6cXV4cXV1eA", "abcDEF123", "hunter2", 'tok"', "secret"):
        assert secret not in line
    assert "/join/[redacted]" in line and "x=1" in line
    record = logging.makeLogRecord(
        {"msg": "opened /join/%s", "args": ("T0KEN_value-123",), "levelname": "INFO"}
    )
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "opened /join/[redacted]" and entry["level"] == "INFO"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _read_until(stream: asyncio.StreamReader, pattern: str, seen: list[str], within_s: float) -> str:
    async with asyncio.timeout(within_s):
        while line := (await stream.readline()).decode():
            seen.append(line)
            if re.search(pattern, line):
                return line
    raise AssertionError(f"no line matching {pattern!r}; output: {seen}")


async def _drain(stream: asyncio.StreamReader, sink: list[str]) -> None:
    while line := await stream.readline():
        sink.append(line.decode())


async def test_serve_starts_over_https_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    port = _free_port()
    data_dir = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEARING_")}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "hearing_server",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    assert process.stdout is not None and process.stderr is not None
    stdout: list[str] = []
    stderr: list[str] = []
    draining = asyncio.create_task(_drain(process.stderr, stderr))
    try:
        password_line = await _read_until(process.stdout, r"one-time password", stdout, 30)
        password = password_line.rsplit(": ", 1)[1].strip()
        await _read_until(process.stdout, r"Operator console: https://localhost:\d+/console/", stdout, 30)

        token = "NotARealTokenButShapedLikeOne_12345"
        async with aiohttp.ClientSession() as http:
            base = f"https://127.0.0.1:{port}"
            async with http.get(f"{base}/healthz", ssl=False) as response:
                assert response.status == 200
                assert await response.json() == {"status": "ok"}
                assert response.headers["Strict-Transport-Security"] == "max-age=31536000"
            async with http.post(
                f"{base}/api/v1/auth/login", json={"username": "admin", "password": password}, ssl=False
            ) as response:
                assert response.status == 200
                assert "Secure" in response.headers["Set-Cookie"]
            async with http.get(f"{base}/join/{token}", ssl=False) as response:
                assert response.status == 200  # the join page; the token must not reach the access log
        # The certificate is the generated self-signed one, valid for localhost and loopback.
        cert = x509.load_pem_x509_certificate((data_dir / "tls" / "cert.pem").read_bytes())
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert "localhost" in san.get_values_for_type(x509.DNSName)
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            assert await process.wait() == 0
        await draining
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        draining.cancel()
    logs = "".join(stderr)
    assert "/join/[redacted]" in logs  # the access log saw the request...
    assert token not in logs and password not in logs  # ...but no secret reached the log
    assert (data_dir / "hearing.db").exists() and (data_dir / "recordings").is_dir()


def test_the_start_says_when_media_is_sent_from_python(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without media/_sender.c built the server still forwards, and the operator is told why it costs more."""
    from hearing_server import cli
    from media import sender

    config = Config(ice_host_addresses=["192.0.2.10"])
    assert not any("sent from Python" in line for line in cli._addresses(config))  # built by the install
    monkeypatch.setattr(sender, "NativeSender", None)
    assert any("media/_sender.c was not built" in line for line in cli._addresses(config))
