"""Records hearing events: the one entry point through which every state change reaches the confirmation log.

The log file in the hearing folder is the record of truth (hash-chained, fsynced per entry); the database
holds a mirror for queries.  When the database cannot be reached the entry is already durable on disk and its
mirror is retried with the next event or by :meth:`EventRecorder.flush_mirror`.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
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
from hearing_server.store.models import Hearing, HearingEvent
from recording.confirmation_log import ConfirmationLog, LogEntry

log = logging.getLogger(__name__)


class EventRecorder:
    """Appends events to each hearing's confirmation log, in order, and mirrors them in the database."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], recordings_dir: Path) -> None:
        self._sessions = sessions
        self._recordings_dir = recordings_dir
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._logs: dict[str, ConfirmationLog] = {}
        self._unmirrored: list[LogEntry] = []
        # Set once the court's key is at hand (records_context): signs checkpoints of live logs.
        self.checkpoints: LogCheckpoints | None = None
        # One flush at a time: concurrent flushes would insert the same pending entries twice.
        self._mirror_lock = asyncio.Lock()

    async def folder(self, hearing_id: str) -> Path:
        """The hearing's folder, created (and remembered on the hearing) on first use."""
        async with self._sessions() as session:
            hearing = await session.get(Hearing, hearing_id)
            if hearing is None:
                raise NotFound("no such hearing")
            if hearing.recording_path is None:
                hearing.recording_path = relative_folder(hearing.court, hearing.scheduled_start, hearing.id)
                await session.commit()
            folder = resolve_folder(self._recordings_dir, hearing.recording_path)
        await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
        return folder

    async def confirmation_log(self, hearing_id: str) -> ConfirmationLog:
        """The open confirmation log of a hearing."""
        existing = self._logs.get(hearing_id)
        if existing is not None:
            return existing
        folder = await self.folder(hearing_id)
        opened = await asyncio.to_thread(ConfirmationLog, folder, hearing_id)
        self._logs[hearing_id] = opened
        return opened

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
        async with self._locks[hearing_id]:
            confirmation_log = await self.confirmation_log(hearing_id)
            entry = await confirmation_log.append_async(
                event.value, actor=actor, party_id=party_id, details=details or {}
            )
            if self.checkpoints is not None:
                await self.checkpoints.after_append(confirmation_log.folder, entry)
        self._unmirrored.append(entry)
        await self.flush_mirror()
        return entry.to_dict()

    async def flush_mirror(self) -> bool:
        """Copy durable entries not yet in the database into it; False while the database is unreachable."""
        async with self._mirror_lock:
            if not self._unmirrored:
                return True
            pending = list(self._unmirrored)
            try:
                async with self._sessions() as session:
                    session.add_all(_mirror_row(entry) for entry in pending)
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
        """Release a hearing's log file (after sealing); a later event reopens it."""
        opened = self._logs.pop(hearing_id, None)
        if opened is not None:
            await asyncio.to_thread(opened.close)

    async def close(self) -> None:
        """Flush what can be mirrored and release every log file."""
        await self.flush_mirror()
        for hearing_id in list(self._logs):
            await self.close_log(hearing_id)


def _mirror_row(entry: LogEntry) -> HearingEvent:
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
