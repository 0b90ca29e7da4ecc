"""Records hearing events: the one entry point through which every state change reaches the confirmation log.

The log file in the hearing folder is the record of truth (hash-chained, fsynced per entry); the database
holds a mirror for queries.  When the database cannot be reached the entry is already durable on disk and its
mirror is retried with the next event or by :meth:`EventRecorder.flush_mirror`.

Only a few logs are kept open (the most recently used, ``max_open_logs``): a server may hold thousands of
scheduled hearings, each with a log, and must not hold a file descriptor for each.  A log closed this way is
reopened (its chain verified and resumed) by its next event.

In a cluster (``shared``) several processes append to one hearing's log (the host, REST on any node, a
reaper): each append then takes a file lock, re-reads the chain's tail from disk instead of trusting an open
log, and writes its checkpoint before letting go of the lock.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hearing_server.domain.errors import NotFound
from hearing_server.domain.events import EventType
from hearing_server.record.checkpoints import LogCheckpoints
from hearing_server.record.folder import relative_folder, resolve_folder
from hearing_server.record.locks import HearingFileLocks, HearingLocks
from hearing_server.store.models import Hearing, HearingEvent
from recording.confirmation_log import ConfirmationLog, LogEntry

log = logging.getLogger(__name__)


DEFAULT_MAX_OPEN_LOGS = 64


class EventRecorder:
    """Appends events to each hearing's confirmation log, in order, and mirrors them in the database."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        recordings_dir: Path,
        *,
        max_open_logs: int = DEFAULT_MAX_OPEN_LOGS,
        shared: bool = False,
    ) -> None:
        self._sessions = sessions
        self._recordings_dir = recordings_dir
        self._max_open = max_open_logs
        # In a cluster several processes append to one hearing's log: see the module's docstring.
        self.file_locks = HearingFileLocks(recordings_dir) if shared else None
        # A hearing's folder never moves: once known, logging needs no database (it may be away).
        self._folders: dict[str, Path] = {}
        self._locks = HearingLocks()
        self._logs: OrderedDict[str, ConfirmationLog] = OrderedDict()  # least recently used first
        self._unmirrored: list[LogEntry] = []
        # Set once the court's key is at hand (records_context): signs checkpoints of live logs.
        self.checkpoints: LogCheckpoints | None = None
        # One flush at a time: concurrent flushes would insert the same pending entries twice.
        self._mirror_lock = asyncio.Lock()

    @property
    def open_logs(self) -> int:
        """How many log files are open now."""
        return len(self._logs)

    async def folder(self, hearing_id: str) -> Path:
        """The hearing's folder, created (and remembered on the hearing) on first use."""
        known = self._folders.get(hearing_id)
        if known is not None:
            return known
        async with self._sessions() as session:
            hearing = await session.get(Hearing, hearing_id)
            if hearing is None:
                raise NotFound("no such hearing")
            if hearing.recording_path is None:
                hearing.recording_path = relative_folder(hearing.court, hearing.scheduled_start, hearing.id)
                await session.commit()
            folder = resolve_folder(self._recordings_dir, hearing.recording_path)
        await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
        self._folders[hearing_id] = folder
        return folder

    async def confirmation_log(self, hearing_id: str) -> ConfirmationLog:
        """The open confirmation log of a hearing (its entries stay readable after it is closed)."""
        async with self._locks.hold(hearing_id):
            return await self._open(hearing_id)

    async def _open(self, hearing_id: str, folder: Path | None = None) -> ConfirmationLog:
        # The caller holds the hearing's lock: one ConfirmationLog per file, never two chains on one file.
        existing = self._logs.get(hearing_id)
        if existing is not None:
            self._logs.move_to_end(hearing_id)
            return existing
        folder = folder or await self.folder(hearing_id)
        if self.file_locks is not None:
            opened = await asyncio.to_thread(self._open_locked, folder, hearing_id)
        else:
            opened = await asyncio.to_thread(ConfirmationLog, folder, hearing_id)
        self._logs[hearing_id] = opened
        self._close_idle()
        return opened

    def _close_idle(self) -> None:
        # Least recently used first; a log whose hearing is being written to stays open (its writer holds it).
        for hearing_id in list(self._logs):
            if len(self._logs) <= self._max_open:
                return
            if not self._locks.in_use(hearing_id):
                self._logs.pop(hearing_id).close()

    async def append(
        self,
        hearing_id: str,
        event: EventType,
        *,
        actor: str,
        party_id: str | None = None,
        details: dict[str, Any] | None = None,
        folder: Path | None = None,
    ) -> LogEntry:
        """Append one event durably to the hearing's log, without mirroring it (see :meth:`mirror`).

        ``folder`` is the hearing's folder when the caller knows it (a hearing not yet committed).
        """
        if folder is not None:
            self._folders.setdefault(hearing_id, folder)
        async with self._locks.hold(hearing_id):
            if self.file_locks is not None:
                return await self._append_shared(hearing_id, event, actor, party_id, details or {}, folder)
            confirmation_log = await self._open(hearing_id, folder)
            entry = await confirmation_log.append_async(
                event.value, actor=actor, party_id=party_id, details=details or {}
            )
            if self.checkpoints is not None:
                await self.checkpoints.after_append(confirmation_log.folder, entry)
            return entry

    async def _append_shared(
        self,
        hearing_id: str,
        event: EventType,
        actor: str,
        party_id: str | None,
        details: dict[str, Any],
        folder: Path | None,
    ) -> LogEntry:
        # The caller holds the hearing's lock (in this process); the file lock keeps other processes out from
        # reading the tail to writing the checkpoint, so the chain and the checkpoints stay in order.
        folder = folder or await self.folder(hearing_id)
        assert self.file_locks is not None
        async with self.file_locks.hold(hearing_id):
            entry = await asyncio.to_thread(
                self._append_fresh, folder, hearing_id, event.value, actor, party_id, details
            )
            if self.checkpoints is not None:
                await self.checkpoints.after_append(folder, entry)
            return entry

    @staticmethod
    def _append_fresh(
        folder: Path, hearing_id: str, event: str, actor: str, party_id: str | None, details: dict[str, Any]
    ) -> LogEntry:
        # Another node may have appended since: open the chain from disk (verifying it), append, close.
        opened = ConfirmationLog(folder, hearing_id)
        try:
            return opened.append(event, actor=actor, party_id=party_id, details=details)
        finally:
            opened.close()

    def _open_locked(self, folder: Path, hearing_id: str) -> ConfirmationLog:
        # Opening may cut a torn last line: never while another node is writing one.
        assert self.file_locks is not None
        with self.file_locks.held(hearing_id):
            return ConfirmationLog(folder, hearing_id)

    async def mirror(self, entries: Iterable[LogEntry]) -> bool:
        """Queue durable entries for the database mirror and flush; False while the database is away."""
        self._unmirrored.extend(entries)
        return await self.flush_mirror()

    async def record(
        self,
        hearing_id: str,
        event: EventType,
        *,
        actor: str,
        party_id: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Append one event durably to the hearing's log, mirror it, and return the entry."""
        entry = await self.append(hearing_id, event, actor=actor, party_id=party_id, details=details)
        await self.mirror([entry])
        return entry.to_dict()

    async def flush_mirror(self) -> bool:
        """Copy durable entries not yet in the database into it; False while the database is unreachable."""
        async with self._mirror_lock:
            if not self._unmirrored:
                return True
            pending = list(self._unmirrored)
            try:
                async with self._sessions() as session:
                    session.add_all(mirror_row(entry) for entry in pending)
                    await session.commit()
            except (SQLAlchemyError, OSError) as exc:
                log.warning("event mirror deferred (%d pending): %s", len(pending), type(exc).__name__)
                return False
            del self._unmirrored[: len(pending)]
            return True

    async def entries(self, hearing_id: str, after_seq: int = 0) -> list[HearingEvent]:
        """The hearing's mirrored events in order, after ``after_seq``."""
        async with self._sessions() as session:
            rows = await session.execute(
                select(HearingEvent)
                .where(HearingEvent.hearing_id == hearing_id, HearingEvent.seq > after_seq)
                .order_by(HearingEvent.seq)
            )
            return list(rows.scalars())

    async def close_log(self, hearing_id: str) -> None:
        """Release a hearing's log file once pending appends are done; a later event reopens it."""
        async with self._locks.hold(hearing_id):
            opened = self._logs.pop(hearing_id, None)
            if opened is not None:
                await asyncio.to_thread(opened.close)

    async def close(self) -> None:
        """Flush what can be mirrored and release every log file."""
        await self.flush_mirror()
        for hearing_id in list(self._logs):
            await self.close_log(hearing_id)


def mirror_row(entry: LogEntry) -> HearingEvent:
    """The database mirror row of a log entry."""
    return HearingEvent(
        hearing_id=entry.hearing_id,
        seq=entry.seq,
        time=datetime.fromisoformat(entry.time.replace("Z", "+00:00")),
        event=entry.event,
        actor=entry.actor or "",
        party_id=entry.party_id,
        details=entry.details,
        prev_hash=entry.prev_hash,
        hash=entry.hash,
    )


EVENTS = web.AppKey("events", EventRecorder)
