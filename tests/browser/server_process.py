"""The real server as a process of its own, for browser tests that kill it: ``python -m hearing_server
serve`` on a loopback port over one data directory, started, SIGKILLed and started again."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

START_TIMEOUT_S = 60.0


class ServerProcess:
    """One server process at a time on ``port`` over ``data_dir`` (plain HTTP on 127.0.0.1)."""

    def __init__(self, data_dir: Path, port: int, **settings: str) -> None:
        self.data_dir = data_dir
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        self.output: list[str] = []
        self._settings = settings
        self._process: asyncio.subprocess.Process | None = None
        self._readers: list[asyncio.Task[None]] = []

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HEARING_")}
        env.update(
            HEARING_ICE_HOST_ADDRESSES="127.0.0.1",
            HEARING_PUBLIC_URL=self.base_url,
            HEARING_DATA_DIR=str(self.data_dir),
            HEARING_UVLOOP="false",
        )
        env.update({f"HEARING_{name.upper()}": value for name, value in self._settings.items()})
        return env

    async def add_staff(self, username: str, password: str, role: str = "operator") -> None:
        """A staff account made with the command line (before the first start)."""
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "hearing_server", "user", "add", username, "--role", role,
            "--display-name", username.title(), "--password-stdin",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            env=self._env(),
        )  # fmt: skip
        out, _ = await process.communicate(f"{password}\n".encode())
        assert process.returncode == 0, out.decode(errors="replace")

    async def start(self) -> None:
        """Start and wait until it listens."""
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "hearing_server", "serve", "--plain-http", "--host", "127.0.0.1",
            "--port", str(self.port),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=self._env(),
        )  # fmt: skip
        self._process = process
        assert process.stdout is not None and process.stderr is not None
        self._readers.append(asyncio.ensure_future(self._drain(process.stderr)))
        async with asyncio.timeout(START_TIMEOUT_S):
            while line := (await process.stdout.readline()).decode(errors="replace"):
                self.output.append(line)
                if "listening on" in line:
                    break
            else:
                raise AssertionError("the server exited:\n" + "".join(self.output))
        self._readers.append(asyncio.ensure_future(self._drain(process.stdout)))

    async def _drain(self, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            self.output.append(line.decode(errors="replace"))

    async def kill(self) -> None:
        """SIGKILL: as far as the server can tell, a power cut."""
        assert self._process is not None
        self._process.send_signal(signal.SIGKILL)
        await self._process.wait()

    async def stop(self) -> None:
        """SIGTERM and wait (SIGKILL if it does not stop)."""
        process = self._process
        if process is not None and process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(30):
                    await process.wait()
            except TimeoutError:
                process.kill()
                await process.wait()
        for reader in self._readers:
            reader.cancel()
        self._readers.clear()


class StaffApi:
    """The REST API as a logged-in staff member calls it."""

    def __init__(self, base_url: str) -> None:
        self.http = aiohttp.ClientSession(base_url=base_url, cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.csrf = ""

    async def login(self, username: str, password: str) -> None:
        async with self.http.post(
            "/api/v1/auth/login", json={"username": username, "password": password}
        ) as response:
            assert response.status == 200, await response.text()
            self.csrf = (await response.json())["csrf_token"]

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        async with self.http.request(
            method, f"/api/v1{path}", json=body, headers={"X-CSRF-Token": self.csrf}
        ) as response:
            assert response.status < 300, f"{method} {path}: {response.status} {await response.text()}"
            return None if response.status == 204 else await response.json()

    async def schedule(self, case: str) -> dict[str, Any]:
        """A hearing starting in ten minutes."""
        start = (datetime.now(UTC) + timedelta(minutes=10)).replace(microsecond=0)
        body = {
            "case_number": case,
            "title": "Ахметов А. v. Сәтбаев Б.",
            "courtroom": "Зал №7",
            "scheduled_start": start.isoformat(),
            "duration_minutes": 60,
            "presiding_judge": "Жұмабаева Г. Т.",
            "notice_language": "kk",
        }
        result: dict[str, Any] = await self.call("POST", "/hearings", body)
        return result

    async def invite(self, hearing_id: str, name: str, role: str, language: str) -> tuple[str, str]:
        """A party with a fresh link; returns (party id, link URL)."""
        body = {"role": role, "display_name": name, "language": language}
        party = await self.call("POST", f"/hearings/{hearing_id}/parties", body)
        issued = await self.call("POST", f"/hearings/{hearing_id}/parties/{party['id']}/invitation")
        return party["id"], issued["url"]

    async def events(self, hearing_id: str) -> list[dict[str, Any]]:
        page = await self.call("GET", f"/hearings/{hearing_id}/events")
        return list(page["items"])

    async def close(self) -> None:
        await self.http.close()
