"""One API call as a handler sees it: the caller, the validated body and query, and a transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from hearing_server.auth.client import client_ip, user_agent
from hearing_server.config import CONFIG, Config
from hearing_server.domain.errors import NotAuthenticated, NotFound
from hearing_server.domain.events import EventType
from hearing_server.domain.ids import is_valid_id
from hearing_server.record.event_log import EVENTS
from hearing_server.store.db import SESSIONS
from hearing_server.store.models import StaffSession, User


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
        """A database transaction: all of it is written or none; its events are recorded after commit."""
        self._events.clear()
        try:
            async with self.request.app[SESSIONS]() as db, db.begin():
                yield db
        except BaseException:
            self._events.clear()
            raise
        # EventRecorder appends in its own transaction (it owns the hash chain), so it runs after commit.
        events, self._events = self._events, []
        recorder = self.request.app[EVENTS]
        for pending in events:
            await recorder.record(
                pending.hearing_id,
                pending.event,
                actor=self.user.username,
                party_id=pending.party_id,
                details={
                    "ip": client_ip(self.request),
                    "user_agent": user_agent(self.request),
                    **pending.details,
                },
            )

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncSession]:
        """A read-only database session."""
        async with self.request.app[SESSIONS]() as db:
            yield db
