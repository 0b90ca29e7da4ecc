"""Helpers of the cluster tests."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from integration_harness import ServerProcess
from netlab import IP, PREFIX, Host, Netlab, netns_supported, sh
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hearing_server.store.models import Hearing

CLUSTER_SECRET = "the cluster secret of the tests"


async def add_hearings(
    sessions: async_sessionmaker[AsyncSession], count: int, status: str = "open"
) -> list[str]:
    """Insert ``count`` hearings with ``status``; return their ids."""
    now = datetime.now(UTC)
    hearings = [
        Hearing(
            court="Development Court",
            courtroom="1",
            case_number=f"2-{i}/2026",
            title=f"Hearing {i}",
            scheduled_start=now,
            duration_minutes=40,
            presiding_judge="Judge",
            notice_language="kk",
            status=status,
            created_at=now,
            updated_at=now,
            legal_hold=False,
        )
        for i in range(count)
    ]
    async with sessions.begin() as session:
        session.add_all(hearings)
    return [h.id for h in hearings]


@dataclass(frozen=True)
class NodeNet:
    """Where the nodes of a test live: each its address (and test host), the test process its own."""

    client: str  # this process's address: its aiortc peers' host candidate
    nodes: list[tuple[str, str | None]]  # (address, network namespace or None for this one) per node


@contextlib.contextmanager
def node_network(count: int) -> Iterator[NodeNet]:
    """``count`` node hosts on one switch with this process as another host of it (netlab, 198.18.40.0/24);
    loopback for every node where namespaces cannot be made."""
    if netns_supported() is not None:
        yield NodeNet("127.0.0.1", [("127.0.0.1", None)] * count)
        return
    with Netlab() as lab:
        switch = lab.bridge("lan")
        # This very process joins the lab under a name of its own, outside lab.hosts: closing the lab
        # kills what runs in its hosts, and this process must survive it.
        own = f"{PREFIX}-{lab.tag}-tester"
        sh([IP, "netns", "attach", own, str(os.getpid())])
        try:
            lab.attach(Host(lab, "tester", own), switch, "198.18.40.1/24")
            nodes: list[tuple[str, str | None]] = []
            for number in range(count):
                host = lab.host(f"node{number}")
                lab.attach(host, switch, f"198.18.40.{11 + number}/24")
                nodes.append((host.address(), host.netns))
            yield NodeNet("198.18.40.1", nodes)
        finally:
            sh([IP, "netns", "del", own], check=False)  # only the name: this namespace lives on


class NodeProcess(ServerProcess):
    """One cluster node: ``hearing-server serve`` with ``HEARING_NODE_ID`` and a shared PostgreSQL, on
    ``address`` inside network namespace ``netns`` (a netlab host) or in this one."""

    def __init__(
        self,
        data_dir: Path,
        port: int,
        node_id: str,
        database_url: str,
        where: tuple[str, str | None] = ("127.0.0.1", None),
        **options: str,
    ) -> None:
        super().__init__(data_dir, port)
        self.node_id = node_id
        self.address, self.netns = where
        self.base = f"http://{self.address}:{port}"
        self.env = {
            "HEARING_NODE_ID": node_id,
            "HEARING_DATABASE_URL": database_url,
            "HEARING_CLUSTER_SECRET": CLUSTER_SECRET,
            "HEARING_ICE_HOST_ADDRESSES": self.address,
            "HEARING_CLUSTER_INTERNAL_URL": self.base,
            "HEARING_MEDIA_WORKERS": "0",  # media in the node process, as in ServerProcess (options override)
            **{f"HEARING_{k.upper()}": v for k, v in options.items()},
        }

    async def start(self) -> str | None:
        """Start and wait until it listens; returns the first-start admin password if one was made."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("HEARING_")} | self.env
        inside = ["ip", "netns", "exec", self.netns] if self.netns else []
        self.process = await asyncio.create_subprocess_exec(
            *inside, sys.executable, "-m", "hearing_server", "serve", "--plain-http", "--host", self.address,
            "--port", str(self.port), "--data-dir", str(self.data_dir),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
        )  # fmt: skip
        assert self.process.stdout is not None and self.process.stderr is not None
        self._readers.append(asyncio.ensure_future(self._drain(self.process.stderr)))
        password = None
        async with asyncio.timeout(60):
            while line := (await self.process.stdout.readline()).decode():
                self.output.append(line)
                if "one-time password" in line:
                    password = line.rsplit(": ", 1)[1].strip()
                if "listening on" in line:
                    break
            else:
                raise AssertionError("the node exited:\n" + "".join(self.output))
        self._readers.append(asyncio.ensure_future(self._drain(self.process.stdout)))
        return password


class DatabaseLink:
    """A unix-socket relay in front of PostgreSQL that the test can cut (every connection dropped, new
    ones refused) and restore: the database "unreachable" for the nodes that use it, and only for them."""

    def __init__(self, folder: Path, target: str = "/var/run/postgresql/.s.PGSQL.5432") -> None:
        self.folder = folder
        self._target = target
        self._server: asyncio.AbstractServer | None = None
        self._pipes: set[asyncio.Task[None]] = set()

    def url(self, database_url: str) -> str:
        """``database_url`` pointed at this relay instead of the server's own socket."""
        base = database_url.split("?", 1)[0]
        return f"{base}?host={self.folder}"

    async def start(self) -> None:
        """Accept connections (again)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self._server = await asyncio.start_unix_server(self._serve, path=str(self.folder / ".s.PGSQL.5432"))

    async def cut(self) -> None:
        """Drop every relayed connection and refuse new ones."""
        assert self._server is not None
        self._server.close()
        for pipe in list(self._pipes):
            pipe.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)
        with contextlib.suppress(FileNotFoundError):
            (self.folder / ".s.PGSQL.5432").unlink()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._pipes.add(task)
        try:
            up_reader, up_writer = await asyncio.open_unix_connection(self._target)
            try:
                await asyncio.gather(_copy(reader, up_writer), _copy(up_reader, writer))
            finally:
                up_writer.close()
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            writer.close()
            self._pipes.discard(task)


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()
