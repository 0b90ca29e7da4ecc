"""Staff accounts (admins only): list, create, change role, status or password."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from hearing_server.api.call import Call
from hearing_server.api.present import user_out
from hearing_server.api.registry import endpoint
from hearing_server.api.schemas import UserCreateIn, UserList, UserOut, UserUpdateIn
from hearing_server.auth.access import ADMINS
from hearing_server.auth.passwords import PASSWORDS
from hearing_server.services import users

TAG = "users"
log = logging.getLogger(__name__)


@endpoint("GET", "/api/v1/users", access=ADMINS, tag=TAG, response=UserList, summary="Every staff account.")
async def list_users(call: Call) -> UserList:
    async with call.reading() as db:
        found = await users.list_users(db)
    return UserList(items=[user_out(u) for u in found])


@endpoint(
    "POST",
    "/api/v1/users",
    access=ADMINS,
    tag=TAG,
    body=UserCreateIn,
    response=UserOut,
    status=201,
    summary="Create a staff account.",
)
async def create_user(call: Call) -> UserOut:
    body: UserCreateIn = call.body
    async with call.transaction() as db:
        user = await users.create_user(
            db,
            call.request.app[PASSWORDS],
            username=body.username,
            role=body.role,
            password=body.password,
            display_name=body.display_name,
            now=datetime.now(UTC),
        )
    log.info("account %s (%s) created by %s", user.username, user.role, call.user.username)
    return user_out(user)


@endpoint(
    "PATCH",
    "/api/v1/users/{user_id}",
    access=ADMINS,
    tag=TAG,
    body=UserUpdateIn,
    response=UserOut,
    summary="Change an account's role, name, disabled flag or password (its sessions end).",
)
async def update_user(call: Call) -> UserOut:
    body: UserUpdateIn = call.body
    async with call.transaction() as db:
        user = await users.get_user(db, call.path_id("user_id"))
        changed = await users.update_user(db, call.request.app[PASSWORDS], user, body.changes())
    log.info(
        "account %s changed by %s: %s", user.username, call.user.username, ", ".join(changed) or "nothing"
    )
    return user_out(user)


ENDPOINTS = (list_users, create_user, update_user)
