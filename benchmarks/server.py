"""The server under test as a separate process, and its CPU and memory from ``/proc``."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OPERATOR_USER = "bench-operator"
OPERATOR_PASSWORD = "bench-operator-password-1"  # noqa: S105 - a throw-away account in a temporary data dir
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Usage:
    """A process's accumulated CPU time (user + system, all threads) and resident memory."""

    cpu_s: float
    rss_mb: float
    at: float  # time.monotonic()
    wait_s: float = 0.0  # time its threads were runnable but waited for a CPU (all threads alive now)


def run_queue_wait_s(pid: int) -> float:
    """Seconds the threads of ``pid`` spent runnable but waiting for a CPU (/proc/PID/task/*/schedstat)."""
    total = 0
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError, ValueError, IndexError):
                total += int((task / "schedstat").read_text().split()[1])
    return total / 1e9


def children(pid: int) -> list[int]:
    """The live child processes of ``pid`` (media workers of the server under test)."""
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError, ValueError):
                found += [int(child) for child in (task / "children").read_text().split()]
    return found


def usage(pid: int) -> Usage:
    """The server's CPU, RSS and run-queue wait, its live children (media workers) included."""
    own = _usage(pid)
    for child in children(pid):
        with contextlib.suppress(OSError):
            part = _usage(child)
            own = Usage(own.cpu_s + part.cpu_s, own.rss_mb + part.rss_mb, own.at, own.wait_s + part.wait_s)
    return own


def _usage(pid: int) -> Usage:
    """Read ``/proc/PID/stat`` (utime + stime), ``/proc/PID/status`` (VmRSS) and the run-queue wait."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime (fields 14, 15)
    rss_kb = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss_kb = int(line.split()[1])
    return Usage(cpu, rss_kb / 1024, time.monotonic(), run_queue_wait_s(pid))


def udp_drops_by_socket(pids: list[int]) -> dict[int, dict[str, int]]:
    """Datagrams dropped so far (full receive buffers) on each process's UDP sockets, by socket inode."""
    drops_by_inode: dict[str, int] = {}
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                drops_by_inode[fields[9]] = int(fields[-1])
    sockets: dict[int, dict[str, int]] = {}
    for pid in pids:
        own = sockets[pid] = {}
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    target = os.readlink(fd)
                    inode = target[8:-1]
                    if target.startswith("socket:[") and inode in drops_by_inode:
                        own[inode] = drops_by_inode[inode]
    return sockets


def udp_receive_buffer_drops() -> int:
    """Datagrams the kernel dropped for full socket buffers (of this network namespace)."""
    lines = [
        line.split() for line in Path("/proc/net/snmp").read_text().splitlines() if line.startswith("Udp:")
    ]
    return int(lines[1][lines[0].index("RcvbufErrors")])


def drops_between(before: dict[str, int], after: dict[str, int]) -> int:
    """Drops in between on the sockets open at the end (sockets closed meanwhile are not counted)."""
    return sum(count - before.get(inode, 0) for inode, count in after.items())


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """One server process in its own process group (killed with all its children on stop)."""

    def __init__(self, command: list[str], env: dict[str, str], port: int, log: Path) -> None:
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        self._log = log.open("ab")
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            command, env=env, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_ready(self, path: str, timeout_s: float = 60.0) -> None:
        """Poll ``path`` until it answers 200; raises if the process dies or time runs out."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}; see {self._log.name}")
            try:
                with urllib.request.urlopen(self.base_url + path, timeout=2) as response:  # noqa: S310
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"server not ready within {timeout_s:.0f} s; see {self._log.name}")

    def usage(self) -> Usage:
        return usage(self.pid)

    def stop(self, grace_s: float = 8.0) -> None:
        """SIGTERM the process group, then SIGKILL whatever is left."""
        if self.process.poll() is None:
            try:
                os.killpg(self.pid, signal.SIGTERM)
                self.process.wait(grace_s)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if self.process.poll() is None:
            self.process.wait(5)
        self._log.close()


def hearing_server_env(data_dir: Path, port: int, uvloop: bool, media_workers: int = 0) -> dict[str, str]:
    """Environment of the real server: loopback ICE only, quiet logs, data in ``data_dir``."""
    env = dict(os.environ)
    env.update(
        HEARING_DATA_DIR=str(data_dir),
        HEARING_ICE_HOST_ADDRESSES="127.0.0.1",
        HEARING_ICE_SERVERS="[]",
        HEARING_PUBLIC_URL=f"http://127.0.0.1:{port}",
        HEARING_LOG_LEVEL="WARNING",
        HEARING_UVLOOP="true" if uvloop else "false",
        HEARING_MIN_FREE_DISK_MB="256",
        HEARING_MEDIA_WORKERS=str(media_workers),  # 0: media in the server process
        HEARING_WORKER_MAX_HEARINGS="1000",  # the search finds the limit, not the configured cap
        # every synthetic participant connects from 127.0.0.1: the per-address caps are for the internet
        HEARING_WS_PER_ADDRESS="100000",
        HEARING_WS_UNJOINED_PER_ADDRESS="100000",
    )
    env.pop("HEARING_CONFIG", None)
    return env


def add_operator(env: dict[str, str]) -> None:
    """Create the benchmark's operator account in the database ``env`` names."""
    subprocess.run(  # noqa: S603
        [sys.executable, "-m", "hearing_server", "user", "add", OPERATOR_USER, "--role", "operator"]
        + ["--password-stdin"],
        input=OPERATOR_PASSWORD + "\n",
        text=True,
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=60,
    )


def start_hearing_server(
    data_dir: Path,
    *,
    recording: bool,
    uvloop: bool,
    log: Path,
    pin: list[str] | None = None,
    media_workers: int = 0,
) -> ServerProcess:
    """Create the operator account, then ``python -m hearing_server serve --plain-http`` on a free port.

    Without recording the same server runs through :mod:`benchmarks.unrecorded_server`, which
    only leaves the recorder out of the application.  ``pin`` prefixes the serve command
    (``taskset -c 0``).
    """
    port = free_port()
    env = hearing_server_env(data_dir, port, uvloop, media_workers)
    add_operator(env)
    module = "hearing_server" if recording else "benchmarks.unrecorded_server"
    command = [
        *(pin or []),
        sys.executable,
        "-m",
        module,
        "serve",
        "--plain-http",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    server = ServerProcess(command, env, port, log)
    try:
        server.wait_ready("/healthz")
    except BaseException:
        server.stop()
        raise
    return server


def start_relay_server(participants: int, log: Path, pin: list[str] | None = None) -> ServerProcess:
    """The decode/re-encode relay (:mod:`benchmarks.relay_server`) on a free port."""
    port = free_port()
    command = [
        *(pin or []),
        sys.executable,
        "-m",
        "benchmarks.relay_server",
        "--port",
        str(port),
        "--participants",
        str(participants),
    ]
    server = ServerProcess(command, dict(os.environ), port, log)
    try:
        server.wait_ready("/healthz")
    except BaseException:
        server.stop()
        raise
    return server
