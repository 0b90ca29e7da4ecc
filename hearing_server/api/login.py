"""Staff login, logout, the current session, and changing one's own password."""

from __future__ import annotations

import logging

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from hearing_server.api.call import Call
from hearing_server.api.present import user_out
from hearing_server.api.registry import endpoint, to_response
from hearing_server.api.schemas import LoginIn, PasswordChangeIn, SessionOut
from hearing_server.auth import staff
from hearing_server.auth.access import ANY_STAFF, PUBLIC
from hearing_server.auth.client import client_ip
from hearing_server.auth.judge_keys import WrongPassword
from hearing_server.auth.passwords import PASSWORDS, check_password_rules
from hearing_server.auth.ratelimit import LOGIN_LIMITER
from hearing_server.domain.errors import InvalidInput
from hearing_server.services import judge_keys
from hearing_server.store.models import StaffSession, User

log = logging.getLogger(__name__)

TAG = "session"


def session_out(user: User, session: StaffSession) -> SessionOut:
    """The logged-in user, the session's CSRF token, and whether a password change is due."""
    return SessionOut(
        user=user_out(user),
        csrf_token=session.csrf_token,
        expires_at=session.expires_at,
        must_change_password=user.must_change_password,
    )


@endpoint(
    "POST",
    "/api/v1/auth/login",
    access=PUBLIC,
    tag=TAG,
    body=LoginIn,
    response=SessionOut,
    no_store=True,
    summary="Log in: sets the hs_session cookie (a new session id every time) and returns the CSRF token.",
)
async def login(call: Call) -> web.StreamResponse:
    body: LoginIn = call.body
    token, session, user = await staff.login(call.request, body.username, body.password)
    response = to_response(session_out(user, session))
    staff.set_session_cookie(response, token, call.config)
    return response


@endpoint(
    "POST",
    "/api/v1/auth/logout",
    access=ANY_STAFF,
    tag=TAG,
    status=204,
    before_password_change=True,
    summary="Log out: ends the session.",
)
async def logout(call: Call) -> web.StreamResponse:
    await staff.logout(call.request)
    response = web.Response(status=204)
    staff.clear_session_cookie(response, call.config)
    return response


@endpoint(
    "GET",
    "/api/v1/auth/me",
    access=ANY_STAFF,
    tag=TAG,
    response=SessionOut,
    no_store=True,
    before_password_change=True,
    summary="The logged-in user and the session's CSRF token.",
)
async def me(call: Call) -> SessionOut:
    session = call.session
    assert session is not None  # guaranteed by the access check
    return session_out(session.user, session)


@endpoint(
    "POST",
    "/api/v1/auth/password",
    access=ANY_STAFF,
    tag=TAG,
    body=PasswordChangeIn,
    status=204,
    before_password_change=True,
    summary="Change one's own password; the user's other sessions end. Wrong current passwords count "
    "towards the login rate limit.",
)
async def change_password(call: Call) -> None:
    body: PasswordChangeIn = call.body
    passwords = call.request.app[PASSWORDS]
    limiter = call.request.app[LOGIN_LIMITER]
    check_password_rules(body.new_password)
    session = call.session
    assert session is not None
    ip = client_ip(call.request)
    # A stolen session must not become a way to guess the password without the login's limit.
    limiter.check(session.user.username, ip)
    async with call.transaction() as db:
        user = await db.get(User, session.user_id)
        if user is None or not await passwords.verify(user.password_hash, body.current_password):
            limiter.failed(session.user.username, ip)
            raise InvalidInput("the current password is wrong", code="wrong_password")
        limiter.succeeded(session.user.username, ip)
        if body.new_password == body.current_password:
            raise InvalidInput("choose a password other than the current one", code="password_unchanged")
        user.password_hash = await passwords.hash(body.new_password)
        await _rewrap_signing_key(db, user, body.current_password, body.new_password)
        user.must_change_password = False
        user.password_expires_at = None
        await staff.end_sessions(db, user.id, keep=session.id_hash)


async def _rewrap_signing_key(db: AsyncSession, user: User, old: str, new: str) -> None:
    """Keep the judge's signing key usable: re-wrap it from the old password to the new one."""
    try:
        if await judge_keys.rewrap(db, user.id, old, new):
            log.info("signing key of %s re-wrapped under the new password", user.username)
    except WrongPassword:
        # Wrapped under some other password (should not happen): nobody can open it, so it goes.
        await judge_keys.remove(db, user.id)
        log.error("signing key of %s did not open with the current password: removed", user.username)


ENDPOINTS = (login, logout, me, change_password)
