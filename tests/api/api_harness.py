"""Helpers for the REST API tests: staff sessions made directly in the database, and terse API calls."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient
from argon2 import PasswordHasher
from multidict import CIMultiDictProxy
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from hearing_server.auth.passwords import PASSWORDS, Passwords
from hearing_server.auth.staff import CSRF_HEADER, SESSION_COOKIE, new_session
from hearing_server.domain.party import StaffRole
from hearing_server.services.users import create_user
from hearing_server.store.db import SESSIONS
from hearing_server.store.models import Hearing, HearingEvent, Invitation, Party, StaffSession, User

PASSWORD = "correct horse battery staple"
MakeApi = Callable[..., Awaitable["Api"]]
TABLES = {
    "users": User,
    "staff_sessions": StaffSession,
    "hearings": Hearing,
    "parties": Party,
    "invitations": Invitation,
    "hearing_events": HearingEvent,
}


def cheap_passwords() -> Passwords:
    """argon2id with tiny costs: the same code path, milliseconds instead of 150 ms per hash."""
    return Passwords(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@dataclass(frozen=True)
class Who:
    """A logged-in staff member: the cookie token and CSRF token a browser would hold."""

    user_id: str
    username: str
    role: StaffRole
    token: str
    csrf: str

    def headers(self, *, csrf: bool = True) -> dict[str, str]:
        """The Cookie header, and the CSRF header unless ``csrf`` is False."""
        headers = {"Cookie": f"{SESSION_COOKIE}={self.token}"}
        if csrf:
            headers[CSRF_HEADER] = self.csrf
        return headers


@dataclass(frozen=True)
class Result:
    """One response: status, parsed JSON body (or None) and headers."""

    status: int
    json: Any
    headers: CIMultiDictProxy[str]
    body: bytes

    @property
    def code(self) -> str | None:
        """The error code of an error response."""
        if isinstance(self.json, dict) and isinstance(self.json.get("error"), dict):
            return str(self.json["error"]["code"])
        return None


def future_start(days: int = 1, hour: int = 10) -> datetime:
    """A start ``days`` from now at ``hour``:00 UTC (never in the past)."""
    day = datetime.now(UTC).date() + timedelta(days=days)
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


class Api:
    """The app under test and shortcuts for calling it."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        assert client.app is not None
        self.app: web.Application = client.app
        self._numbers = itertools.count(1)

    @asynccontextmanager
    async def db(self) -> AsyncIterator[AsyncSession]:
        """A database session on the app's database."""
        async with self.app[SESSIONS]() as session:
            yield session

    async def user(self, role: StaffRole, username: str | None = None, password: str = PASSWORD) -> User:
        """A new enabled account."""
        async with self.db() as db, db.begin():
            return await create_user(
                db,
                self.app[PASSWORDS],
                username=username or f"{role.value}{next(self._numbers)}",
                role=role,
                password=password,
                display_name="",
                now=datetime.now(UTC),
            )

    async def get_user(self, user_id: str) -> User:
        """The stored account ``user_id``."""
        async with self.db() as db:
            found = await db.get(User, user_id)
        assert found is not None
        return found

    async def session_for(self, user: User, *, lifetime: timedelta = timedelta(hours=1)) -> Who:
        """A fresh session of ``user`` as if they had logged in."""
        async with self.db() as db, db.begin():
            token, row = new_session(
                user, ip="127.0.0.1", user_agent="tests", now=datetime.now(UTC), lifetime=lifetime
            )
            db.add(row)
        return Who(user.id, user.username, StaffRole(user.role), token, row.csrf_token)

    async def who(self, role: StaffRole) -> Who:
        """A new account of ``role`` with a session."""
        return await self.session_for(await self.user(role))

    async def call(
        self,
        method: str,
        path: str,
        who: Who | None = None,
        *,
        json: Any = None,
        data: bytes | str | None = None,
        csrf: bool = True,
        headers: dict[str, str] | None = None,
    ) -> Result:
        """Make one request as ``who`` (anonymous when None)."""
        all_headers = dict(who.headers(csrf=csrf)) if who else {}
        all_headers.update(headers or {})
        async with self.client.request(method, path, json=json, data=data, headers=all_headers) as response:
            body = await response.read()
            parsed = None
            if response.content_type == "application/json" and body:
                parsed = await response.json()
            return Result(response.status, parsed, response.headers, body)

    def hearing_body(self, **overrides: Any) -> dict[str, Any]:
        """A valid body for scheduling a hearing (a new case number each time)."""
        body: dict[str, Any] = {
            "case_number": f"2-{next(self._numbers)}/2026",
            "title": "Ivanov v. Petrov",
            "courtroom": "Room 4",
            "scheduled_start": future_start().isoformat(),
            "duration_minutes": 60,
            "presiding_judge": "Judge Akhmetova",
            "notice_language": "ru",
        }
        body.update(overrides)
        return body

    async def schedule(self, who: Who, **overrides: Any) -> dict[str, Any]:
        """Schedule a hearing; returns its JSON."""
        result = await self.call("POST", "/api/v1/hearings", who, json=self.hearing_body(**overrides))
        assert result.status == 201, result.json
        return dict(result.json)

    async def add_party(self, who: Who, hearing_id: str, **overrides: Any) -> dict[str, Any]:
        """Add a party; returns its JSON."""
        body = {"role": "witness", "display_name": "Serik Nurlanovich"} | overrides
        result = await self.call("POST", f"/api/v1/hearings/{hearing_id}/parties", who, json=body)
        assert result.status == 201, result.json
        return dict(result.json)

    async def issue(self, who: Who, hearing_id: str, party_id: str) -> dict[str, Any]:
        """Issue an invitation link; returns the JSON with url and QR codes."""
        result = await self.call("POST", f"/api/v1/hearings/{hearing_id}/parties/{party_id}/invitation", who)
        assert result.status == 201, result.json
        return dict(result.json)

    async def counts(self) -> dict[str, int]:
        """Rows per table: to show that a refused request wrote nothing."""
        async with self.db() as db:
            return {
                name: int((await db.execute(select(func.count()).select_from(model))).scalar_one())
                for name, model in TABLES.items()
            }
