"""Staff sessions: login and logout, the ``hs_session`` cookie, and the CSRF token bound to each session.

The cookie holds a random token; the database keeps only its SHA-256 (``staff_sessions.id_hash``).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from aiohttp import web
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from hearing_server.auth.client import client_ip, user_agent
from hearing_server.auth.passwords import PASSWORDS
from hearing_server.auth.ratelimit import LOGIN_LIMITER
from hearing_server.auth.tokens import hash_token, new_token, plausible_token
from hearing_server.config import CONFIG, Config
from hearing_server.domain.errors import Forbidden, NotAuthenticated
from hearing_server.store.db import SESSIONS
from hearing_server.store.models import StaffSession, User

SESSION_COOKIE = "hs_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class _Lookup:
    """The staff session found for one request (looked up once per request)."""

    session: StaffSession | None


_LOOKUP = web.RequestKey("staff_session", _Lookup)


async def current_session(request: web.Request) -> StaffSession | None:
    """The caller's live staff session (with its user loaded), or ``None``."""
    cached = request.get(_LOOKUP)
    if cached is not None:
        return cached.session
    found: StaffSession | None = None
    token = request.cookies.get(SESSION_COOKIE, "")
    if token and plausible_token(token):
        async with request.app[SESSIONS]() as db:
            row = (
                await db.execute(select(StaffSession).where(StaffSession.id_hash == hash_token(token)))
            ).scalar_one_or_none()
        if row is not None and row.expires_at > datetime.now(UTC) and not row.user.disabled:
            found = row
    request[_LOOKUP] = _Lookup(found)
    return found


async def session_user(request: web.Request) -> User | None:
    """The logged-in staff user of ``request`` (cookie present, session unexpired, account enabled)."""
    session = await current_session(request)
    return session.user if session is not None else None


def new_session(
    user: User, *, ip: str, user_agent: str, now: datetime, lifetime: timedelta
) -> tuple[str, StaffSession]:
    """A new session row for ``user`` and the token for its cookie (returned only here)."""
    token = new_token()
    row = StaffSession(
        id_hash=hash_token(token),
        user_id=user.id,
        csrf_token=new_token(),
        created_at=now,
        expires_at=now + lifetime,
        ip=ip,
        user_agent=user_agent,
    )
    return token, row


async def login(request: web.Request, username: str, password: str) -> tuple[str, StaffSession, User]:
    """Check the credentials and open a fresh session (any session the caller presented is ended)."""
    app = request.app
    ip = client_ip(request)
    username = username.strip().lower()
    limiter = app[LOGIN_LIMITER]
    limiter.check(username, ip)
    async with app[SESSIONS]() as db:
        user = (await db.execute(select(User).where(User.username == username))).scalar_one_or_none()
    account = user if user is not None and not user.disabled else None
    matches = await app[PASSWORDS].verify(account.password_hash if account else None, password)
    if account is None or not matches:
        limiter.failed(username, ip)
        raise NotAuthenticated("wrong username or password", code="invalid_credentials")
    limiter.succeeded(username, ip)
    now = datetime.now(UTC)
    if account.password_expires_at is not None and account.password_expires_at <= now:
        # Said only to someone who knows the password: no hint for guessers.
        raise NotAuthenticated("this one-time password has expired", code="password_expired")
    async with app[SESSIONS]() as db, db.begin():
        # A new session id at every login: whatever session the browser held is gone (no fixation).
        presented = request.cookies.get(SESSION_COOKIE, "")
        if presented:
            await db.execute(delete(StaffSession).where(StaffSession.id_hash == hash_token(presented)))
        await db.execute(delete(StaffSession).where(StaffSession.expires_at < now))
        token, row = new_session(
            account,
            ip=ip,
            user_agent=user_agent(request),
            now=now,
            lifetime=timedelta(hours=app[CONFIG].session_hours),
        )
        db.add(row)
    return token, row, account


async def logout(request: web.Request) -> None:
    """End the caller's session, if any."""
    token = request.cookies.get(SESSION_COOKIE, "")
    if token:
        async with request.app[SESSIONS]() as db, db.begin():
            await db.execute(delete(StaffSession).where(StaffSession.id_hash == hash_token(token)))
    request[_LOOKUP] = _Lookup(None)


async def end_sessions(db: AsyncSession, user_id: str, *, keep: str | None = None) -> None:
    """End every session of one user (after a password reset, a role change or disabling), except ``keep``."""
    statement = delete(StaffSession).where(StaffSession.user_id == user_id)
    if keep is not None:
        statement = statement.where(StaffSession.id_hash != keep)
    await db.execute(statement)


def check_password_changed(session: StaffSession) -> None:
    """Raise :class:`Forbidden` while the session's user still has to replace a password chosen for them."""
    if session.user.must_change_password:
        raise Forbidden("choose your own password first", code="password_change_required")


def check_csrf(request: web.Request, session: StaffSession) -> None:
    """Raise :class:`Forbidden` when a cookie-authenticated write lacks the session's CSRF token."""
    if request.method in SAFE_METHODS:
        return
    sent = request.headers.get(CSRF_HEADER, "")
    if not hmac.compare_digest(sent.encode("utf-8"), session.csrf_token.encode("utf-8")):
        raise Forbidden(f"missing or wrong {CSRF_HEADER} header", code="csrf_failed")


def require_user(session: StaffSession | None) -> User:
    """The session's user, or :class:`NotAuthenticated`."""
    if session is None:
        raise NotAuthenticated("log in first", code="not_authenticated")
    return session.user


def set_session_cookie(response: web.StreamResponse, token: str, config: Config) -> None:
    """Put the session token in an HttpOnly, SameSite=Strict cookie (Secure unless serving plain HTTP)."""
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        secure=not config.plain_http,
        samesite="Strict",
        path="/",
        max_age=int(config.session_hours * 3600),
    )


def clear_session_cookie(response: web.StreamResponse, config: Config) -> None:
    """Tell the browser to forget the session cookie."""
    response.del_cookie(
        SESSION_COOKIE, path="/", secure=not config.plain_http, httponly=True, samesite="Strict"
    )
