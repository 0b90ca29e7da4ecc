"""Staff accounts: creating them, changing role, password or status, keeping at least one admin."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from hearing_server.auth.passwords import Passwords, check_password_rules
from hearing_server.auth.staff import end_sessions
from hearing_server.domain.errors import Conflict, InvalidInput, NotFound
from hearing_server.domain.ids import is_valid_id
from hearing_server.domain.party import StaffRole
from hearing_server.services import judge_keys
from hearing_server.store.models import User

USERNAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{1,63}$"


def check_username(username: str) -> str:
    """The username if it is 2–64 lower-case letters, digits, dots, dashes or underscores."""
    if not re.fullmatch(USERNAME_PATTERN, username):
        raise InvalidInput(
            "usernames are 2-64 lower-case letters, digits, '.', '-' or '_', starting with a letter or digit",
            code="invalid_username",
        )
    return username


async def count_users(db: AsyncSession) -> int:
    """How many accounts exist."""
    return int((await db.execute(select(func.count()).select_from(User))).scalar_one())


async def create_user(
    db: AsyncSession,
    passwords: Passwords,
    *,
    username: str,
    role: StaffRole,
    password: str,
    display_name: str,
    now: datetime,
    must_change_password: bool = False,
    password_expires_at: datetime | None = None,
) -> User:
    """A new enabled account; :class:`Conflict` if the username is taken.

    ``must_change_password`` holds the account to changing its password at the first login;
    ``password_expires_at`` makes the password a one-time password that stops working then.
    """
    check_username(username)
    check_password_rules(password)
    if (await db.execute(select(User.id).where(User.username == username))).first() is not None:
        raise Conflict(f"the username {username} is taken", code="username_taken")
    user = User(
        username=username,
        display_name=display_name,
        role=role.value,
        password_hash=await passwords.hash(password),
        disabled=False,
        created_at=now,
        must_change_password=must_change_password,
        password_expires_at=password_expires_at,
    )
    db.add(user)
    await db.flush()
    return user


async def get_user(db: AsyncSession, user_id: str) -> User:
    """The account ``user_id``, or :class:`NotFound`."""
    user = await db.get(User, user_id) if is_valid_id(user_id) else None
    if user is None:
        raise NotFound("no such user", code="user_not_found")
    return user


async def list_users(db: AsyncSession) -> list[User]:
    """Every account, by username."""
    return list((await db.execute(select(User).order_by(User.username))).scalars())


async def _other_active_admins(db: AsyncSession, user: User) -> int:
    statement = (
        select(func.count())
        .select_from(User)
        .where(User.role == StaffRole.ADMIN.value, User.disabled.is_(False), User.id != user.id)
    )
    return int((await db.execute(statement)).scalar_one())


async def update_user(
    db: AsyncSession, passwords: Passwords, user: User, changes: dict[str, Any]
) -> list[str]:
    """Change role, display name, disabled flag or password; sessions end when access is reduced."""
    changes = {
        name: (value.value if isinstance(value, StaffRole) else value) for name, value in changes.items()
    }
    password = changes.pop("password", None)
    changed = [name for name, value in changes.items() if getattr(user, name) != value]
    loses_admin = user.role == StaffRole.ADMIN.value and (
        changes.get("role", user.role) != StaffRole.ADMIN.value or changes.get("disabled", user.disabled)
    )
    if loses_admin and not user.disabled and await _other_active_admins(db, user) == 0:
        raise Conflict("the last enabled admin cannot be demoted or disabled", code="last_admin")
    for name in changed:
        setattr(user, name, changes[name])
    if password is not None:
        check_password_rules(password)
        user.password_hash = await passwords.hash(password)
        changed.append("password")
        # The judge's signing key is wrapped under the old password, which whoever resets it does not know:
        # it can never be opened again, so it is dropped and the judge uploads it anew.
        if await judge_keys.remove(db, user.id):
            changed.append("signing key removed")
    no_longer_judge = "role" in changed and user.role != StaffRole.JUDGE.value
    if no_longer_judge and "signing key removed" not in changed and await judge_keys.remove(db, user.id):
        changed.append("signing key removed")  # only judges hold signing keys
    if {"password", "disabled", "role"} & set(changed):
        await end_sessions(db, user.id)
    await db.flush()
    return changed
