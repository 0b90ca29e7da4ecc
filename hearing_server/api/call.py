"""One API call as a handler sees it: the caller, the validated body and query, and a transaction.

No state change without its log entry: a transaction's events are appended to the confirmation log *before*
the database commits (as the live hearing does), and their database mirror rows commit with the change.
If the log cannot be written, nothing is committed (503 ``event_log_unavailable``). If the commit fails after
the entries were written, a ``change_rolled_back`` entry naming them follows in the log, so the log never
claims a change that did not happen (docs/reliability.md, "No state change without its log entry").
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from hearing_server.auth.client import client_ip, user_agent
from hearing_server.config import CONFIG, Config
from hearing_server.domain.errors import EventLogUnavailable, NotAuthenticated, NotFound
from hearing_server.domain.events import EventType
from hearing_server.domain.ids import is_valid_id
from hearing_server.record.event_log import EVENTS, EventRecorder, mirror_row
from hearing_server.record.folder import relative_folder, resolve_folder
from hearing_server.store.db import SESSIONS
from hearing_server.store.models import Hearing, StaffSession, User
from recording.confirmation_log import LogEntry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PendingEvent:
    """A hearing event to record once the transaction that caused it has committed."""

    hearing_id: str
    event: EventType
    party_id: str | None
    details: dict[str, Any]


@dataclass
class Call:
    """The context of one API call."""

    request: web.Request
    session: StaffSession | None
    body: Any = None
    query: Any = None
    _events: list[PendingEvent] = field(default_factory=list)

    @property
    def config(self) -> Config:
        """The server's configuration."""
        return self.request.app[CONFIG]

    @property
    def user(self) -> User:
        """The logged-in caller (endpoints that are not public always have one)."""
        if self.session is None:
            raise NotAuthenticated("log in first", code="not_authenticated")
        return self.session.user

    def path_id(self, name: str) -> str:
        """The identifier in the path segment ``name``; :class:`NotFound` if it cannot be one of ours."""
        value = self.request.match_info.get(name, "")
        if not is_valid_id(value):
            raise NotFound(
                f"no such {name.removesuffix('_id')}", code=f"{name.removesuffix('_id')}_not_found"
            )
        return value

    def record(
        self, hearing_id: str, event: EventType, *, party_id: str | None = None, **details: Any
    ) -> None:
        """Record ``event`` (with the caller's address and user agent) if the transaction commits."""
        self._events.append(PendingEvent(hearing_id, event, party_id, details))

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A database transaction, all or nothing; its events are logged before it commits."""
        self._events.clear()
        written: list[tuple[LogEntry, bool]] = []  # (entry, whether its hearing is created by this call)
        recorder = self.request.app[EVENTS]
        try:
            async with self.request.app[SESSIONS]() as db:
                async with db.begin():
                    yield db
                    events, self._events = self._events, []
                    if events:
                        await self._log_first(db, recorder, events, written)
                # committed: the mirror rows went in with the change
        except BaseException as exc:
            self._events.clear()
            if written:
                await self._roll_back_entries(recorder, written, exc)
            raise

    async def _log_first(
        self,
        db: AsyncSession,
        recorder: EventRecorder,
        events: list[PendingEvent],
        written: list[tuple[LogEntry, bool]],
    ) -> None:
        folders: dict[str, tuple[Path, bool]] = {}
        for pending in events:
            if pending.hearing_id not in folders:
                folders[pending.hearing_id] = await self._folder(db, pending.hearing_id)
        # Constraint violations surface here, before anything is logged.
        await db.flush()
        for pending in events:
            folder, created = folders[pending.hearing_id]
            try:
                entry = await recorder.append(
                    pending.hearing_id,
                    pending.event,
                    actor=self.user.username,
                    party_id=pending.party_id,
                    details={
                        "ip": client_ip(self.request),
                        "user_agent": user_agent(self.request),
                        **pending.details,
                    },
                    folder=folder,
                )
            except (OSError, ValueError) as exc:
                log.error("log of hearing %s not written (%s): change refused", pending.hearing_id, exc)
                raise EventLogUnavailable(
                    "the hearing's confirmation log cannot be written; nothing was changed"
                ) from exc
            written.append((entry, created))
            db.add(mirror_row(entry))

    async def _folder(self, db: AsyncSession, hearing_id: str) -> tuple[Path, bool]:
        """The hearing's folder (fixed in this transaction if new) and whether the hearing is new in it."""
        hearing = await db.get(Hearing, hearing_id)
        if hearing is None:
            raise NotFound("no such hearing", code="hearing_not_found")
        if hearing.recording_path is None:
            hearing.recording_path = relative_folder(hearing.court, hearing.scheduled_start, hearing.id)
        folder = resolve_folder(self.config.recordings_dir, hearing.recording_path)
        return folder, hearing in db.new

    async def _roll_back_entries(
        self, recorder: EventRecorder, written: list[tuple[LogEntry, bool]], cause: BaseException
    ) -> None:
        """The commit failed after the log was written: say so in each log, so it claims nothing false."""
        by_hearing: dict[str, list[tuple[LogEntry, bool]]] = {}
        for entry, created in written:
            by_hearing.setdefault(entry.hearing_id, []).append((entry, created))
        for hearing_id, entries in by_hearing.items():
            try:
                compensation = await recorder.append(
                    hearing_id,
                    EventType.CHANGE_ROLLED_BACK,
                    actor="system",
                    details={
                        "seqs": [entry.seq for entry, _ in entries],
                        "events": [entry.event for entry, _ in entries],
                        "reason": f"database commit failed: {type(cause).__name__}",
                    },
                )
            except (OSError, ValueError):
                log.exception("hearing %s: its log names a change the database refused", hearing_id)
                continue
            # A hearing created by this call is not in the database: its entries have nothing to hang on.
            if not any(created for _, created in entries):
                await recorder.mirror([*(entry for entry, _ in entries), compensation])

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncSession]:
        """A read-only database session."""
        async with self.request.app[SESSIONS]() as db:
            yield db
