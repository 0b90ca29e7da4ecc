"""Janus 1.1.2 (Debian's ``janus``) as the reference SFU: set-up, its own process, its HTTP API.

:func:`ensure_janus` installs the package when it is missing (``apt-get install -y janus``,
as root) and makes sure no system service runs it; :func:`build_shim` compiles the
``LD_PRELOAD`` shim of ``benchmarks/janus/loopback_shim.c`` into ``benchmarks/.cache/``;
:func:`start_janus` writes the configuration of ``benchmarks/janus/`` into a temporary folder
(HTTP API on 127.0.0.1, VideoRoom with one recorded room per hearing, ICE on ``lo`` only, no
STUN/TURN) and starts ``janus`` pinned like our server.  :class:`JanusApi` is the small part of
the Janus HTTP API the benchmark needs.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks.media import CACHE_DIR
from benchmarks.server import ServerProcess, free_port

JANUS_DIR = Path(__file__).resolve().parent / "janus"
SHIM_SOURCE = JANUS_DIR / "loopback_shim.c"
SHIM_LIBRARY = CACHE_DIR / "janus-loopback-shim.so"
ROOM_TEMPLATE = """room-{room}: {{
	description = "bench {room}"
	publishers = 16
	bitrate = 0
	fir_freq = 0
	audiocodec = "opus"
	videocodec = "vp8"
	record = true
	rec_dir = "{rec_dir}"
}}
"""


def ensure_janus() -> str:
    """The path of the ``janus`` binary; installs Debian's package first when it is missing."""
    found = shutil.which("janus")
    if found is None:
        if os.geteuid() != 0:
            raise RuntimeError(
                "janus is not installed and installing it needs root: apt-get install -y janus"
            )
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "install", "-y", "janus"], check=True, env=env, timeout=600)  # noqa: S607
        found = shutil.which("janus")
        if found is None:
            raise RuntimeError("apt-get install janus did not provide a janus binary")
    if shutil.which("systemctl") is not None:  # never as a service: the package may have enabled one
        subprocess.run(  # noqa: S603
            ["systemctl", "disable", "--now", "janus"],  # noqa: S607
            capture_output=True,
            timeout=60,
            check=False,
        )
    return found


def build_shim() -> Path:
    """Compile the getifaddrs() shim (once; again when its source changes)."""
    if SHIM_LIBRARY.exists() and SHIM_LIBRARY.stat().st_mtime >= SHIM_SOURCE.stat().st_mtime:
        return SHIM_LIBRARY
    SHIM_LIBRARY.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(  # noqa: S603
        ["cc", "-shared", "-fPIC", "-O2", "-o", str(SHIM_LIBRARY), str(SHIM_SOURCE), "-ldl"],  # noqa: S607
        check=True,
        capture_output=True,
        timeout=120,
    )
    return SHIM_LIBRARY


def write_config(folder: Path, port: int, rooms: int, rec_root: Path) -> Path:
    """The run's configuration from ``benchmarks/janus/*.jcfg``; returns the main file."""
    room_text = "".join(
        ROOM_TEMPLATE.format(room=room, rec_dir=rec_root / f"room-{room}") for room in range(1, rooms + 1)
    )
    for room in range(1, rooms + 1):
        (rec_root / f"room-{room}").mkdir(parents=True, exist_ok=True)
    for template in JANUS_DIR.glob("*.jcfg"):
        text = template.read_text()
        text = (
            text.replace("@CONFIGS@", str(folder)).replace("@PORT@", str(port)).replace("@ROOMS@", room_text)
        )
        (folder / template.name).write_text(text)
    return folder / "janus.jcfg"


class JanusProcess(ServerProcess):
    """A Janus process with its temporary configuration and recordings (removed on stop)."""

    def __init__(self, command: list[str], env: dict[str, str], port: int, log: Path, folder: Path) -> None:
        super().__init__(command, env, port, log)
        self.base_url = f"http://127.0.0.1:{port}/janus"
        self.folder = folder

    def recorded_bytes(self) -> int:
        """Bytes of .mjr recordings written so far."""
        return sum(path.stat().st_size for path in (self.folder / "recordings").rglob("*.mjr"))

    def stop(self, grace_s: float = 8.0) -> None:
        """Stop Janus and remove its configuration and recordings."""
        try:
            super().stop(grace_s)
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


def start_janus(rooms: int, log: Path, pin: list[str]) -> JanusProcess:
    """Start Janus with ``rooms`` recorded VideoRoom rooms (ids 1…rooms); ``pin`` prefixes the command."""
    binary = ensure_janus()
    shim = build_shim()
    folder = Path(tempfile.mkdtemp(prefix="hearing-bench-janus-"))
    port = free_port()
    config = write_config(folder, port, rooms, folder / "recordings")
    env = dict(os.environ, LD_PRELOAD=str(shim))
    command = [*pin, binary, "-C", str(config), "-F", str(folder), "-o", "-N", "-L", str(log)]
    server = JanusProcess(command, env, port, log.with_suffix(".stdout.log"), folder)
    try:
        server.wait_ready("/info")
    except BaseException:
        server.stop()
        raise
    return server


class JanusError(RuntimeError):
    """Janus answered a request with an error."""


class JanusApi:
    """One Janus session over the HTTP API: requests, plugin handles, long-polled events."""

    _transactions = itertools.count(1)

    def __init__(self, base_url: str, http: aiohttp.ClientSession) -> None:
        self.base_url = base_url
        self.http = http
        self.session_id: int | None = None

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        body = {**body, "transaction": f"t{next(self._transactions)}"}
        async with self.http.post(self.base_url + path, json=body) as response:
            reply: dict[str, Any] = await response.json(content_type=None)
        if reply.get("janus") == "error":
            raise JanusError(f"{body.get('janus')}: {reply.get('error')}")
        return reply

    async def create(self) -> int:
        """Create the session."""
        reply = await self._post("", {"janus": "create"})
        self.session_id = int(reply["data"]["id"])
        return self.session_id

    async def attach(self, plugin: str = "janus.plugin.videoroom") -> int:
        """Attach a handle to ``plugin``."""
        reply = await self._post(f"/{self.session_id}", {"janus": "attach", "plugin": plugin})
        return int(reply["data"]["id"])

    async def message(
        self, handle: int, body: dict[str, Any], jsep: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Send a plugin message (the answer of a synchronous request, or an ack)."""
        request: dict[str, Any] = {"janus": "message", "body": body}
        if jsep is not None:
            request["jsep"] = jsep
        reply = await self._post(f"/{self.session_id}/{handle}", request)
        data = reply.get("plugindata", {}).get("data", {})
        if "error" in data:
            raise JanusError(f"{body.get('request')}: {data['error']}")
        return reply

    async def events(self, max_events: int = 10) -> list[dict[str, Any]]:
        """Long-poll the session's events (at most 30 s)."""
        url = f"{self.base_url}/{self.session_id}?maxev={max_events}"
        async with self.http.get(url, timeout=aiohttp.ClientTimeout(total=40)) as response:
            reply = await response.json(content_type=None)
        return reply if isinstance(reply, list) else [reply]

    async def destroy(self) -> None:
        """Destroy the session (its handles hang up)."""
        if self.session_id is not None:
            await self._post(f"/{self.session_id}", {"janus": "destroy"})
            self.session_id = None
