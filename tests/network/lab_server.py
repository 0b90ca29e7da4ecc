"""The real server (``python -m hearing_server serve``, HTTPS with its self-signed certificate) as a process
of a lab host, configured through ``HEARING_*`` variables; and its REST API called from inside the lab."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from netlab import Host, NetlabError

PORT = 8443


@dataclass
class LabServer:
    """A running server process in a lab host."""

    host: Host
    data_dir: Path
    base_url: str
    admin_password: str
    log_path: Path
    process: subprocess.Popen[bytes]
    env: dict[str, str] = field(default_factory=dict)

    def log(self) -> str:
        """What the server printed so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def start_server(host: Host, data_dir: Path, **options: str) -> LabServer:
    """Start the server on ``host``'s address, port 8443, with ``options`` as ``HEARING_<NAME>`` variables;
    wait until it listens. The database is SQLite under ``data_dir`` (a file: reachable from any host)."""
    address = host.address()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEARING_")}
    env.update(
        HEARING_HOST=address,
        HEARING_PORT=str(PORT),
        HEARING_DATA_DIR=str(data_dir),
        HEARING_PUBLIC_URL=f"https://{address}:{PORT}",
        HEARING_ICE_HOST_ADDRESSES=address,
        HEARING_UVLOOP="false",
        HEARING_MIN_FREE_DISK_MB="0",
        HEARING_MEDIA_WORKERS="0",  # media in the server process, as the other harnesses run it
    )
    env.update({f"HEARING_{name.upper()}": value for name, value in options.items()})
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir.parent / "server.log"
    output = log_path.open("wb")
    process = host.popen(
        [sys.executable, "-m", "hearing_server", "serve"], stdout=output, stderr=output, env=env
    )
    deadline = time.monotonic() + 60
    password = ""
    while True:
        text = log_path.read_text(errors="replace")
        for line in text.splitlines():
            if "one-time password" in line:
                password = line.rsplit(": ", 1)[1].strip()
        if "listening on" in text:
            break
        if process.poll() is not None or time.monotonic() > deadline:
            raise NetlabError(f"the server did not start:\n{text}")
        time.sleep(0.1)
    return LabServer(host, data_dir, f"https://{address}:{PORT}", password, log_path, process, env)


def insecure_session() -> aiohttp.ClientSession:
    """An HTTP client that accepts the lab server's self-signed certificate (call it on a host's loop)."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=False), cookie_jar=aiohttp.DummyCookieJar()
    )
