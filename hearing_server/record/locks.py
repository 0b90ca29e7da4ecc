"""Per-hearing locks: in this process (asyncio) and, in a cluster, across every process on the shared
recordings folder (``flock`` on ``recordings/.locks/<hearing id>.lock``).

The file lock is taken before the in-process locks of checkpoints, never after (appends take it with the
recorder's own lock held, then the checkpoint writer's): one order, so no two holders wait on each other.
"""

from __future__ import annotations

import asyncio
import fcntl
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO


@dataclass
class _Held:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


class HearingLocks:
    """One lock per hearing, kept only while someone holds or awaits it (not one per hearing ever seen)."""

    def __init__(self) -> None:
        self._held: dict[str, _Held] = {}

    @asynccontextmanager
    async def hold(self, hearing_id: str) -> AsyncIterator[None]:
        """Hold the hearing's lock for the block."""
        held = self._held.setdefault(hearing_id, _Held())
        held.users += 1
        try:
            async with held.lock:
                yield
        finally:
            held.users -= 1
            if held.users == 0:
                del self._held[hearing_id]

    def in_use(self, hearing_id: str) -> bool:
        """Whether someone holds or awaits the hearing's lock."""
        return hearing_id in self._held

    def __len__(self) -> int:
        return len(self._held)


class HearingFileLocks:
    """Exclusive locks per hearing shared by every process that writes the recordings folder ``folder``.

    A lock conflicts with every other holder, also one in this very process: never take it twice at once.
    """

    def __init__(self, recordings_dir: Path) -> None:
        self._folder = recordings_dir / ".locks"

    def acquire(self, hearing_id: str) -> IO[str]:
        """Block until the hearing's lock is ours; closing the returned file releases it."""
        self._folder.mkdir(parents=True, exist_ok=True)
        lock_file = open(self._folder / f"{hearing_id}.lock", "a")  # noqa: SIM115 - closed by the caller
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
        except BaseException:
            lock_file.close()
            raise
        return lock_file

    @contextmanager
    def held(self, hearing_id: str) -> Iterator[None]:
        """Hold the hearing's lock for the block (blocking: call from a worker thread)."""
        with self.acquire(hearing_id):
            yield

    @asynccontextmanager
    async def hold(self, hearing_id: str) -> AsyncIterator[None]:
        """Hold the hearing's lock for the block, waiting for it in a worker thread."""
        waiting = asyncio.ensure_future(asyncio.to_thread(self.acquire, hearing_id))
        try:
            lock_file = await asyncio.shield(waiting)
        except asyncio.CancelledError:
            waiting.add_done_callback(_release_when_acquired)  # the thread may still get it: let go then
            raise
        try:
            yield
        finally:
            await asyncio.to_thread(lock_file.close)


def _release_when_acquired(waiting: asyncio.Future[IO[str]]) -> None:
    if not waiting.cancelled() and waiting.exception() is None:
        waiting.result().close()
