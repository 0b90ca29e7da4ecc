"""Assigning a hearing's presiding judge and secretary from the court's staff accounts."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hearing_server.domain.errors import InvalidInput
from hearing_server.domain.ids import is_valid_id
from hearing_server.domain.party import StaffRole
from hearing_server.domain.staff import HearingStaff
from hearing_server.store.models import Hearing, User

# Which account role fills which seat of a hearing.
SEAT_ROLES = {"presiding_judge_id": StaffRole.JUDGE, "secretary_id": StaffRole.OPERATOR}


def staff_of(hearing: Hearing) -> HearingStaff:
    """The hearing's assigned staff accounts."""
    return HearingStaff(presiding_judge_id=hearing.presiding_judge_id, secretary_id=hearing.secretary_id)


def display_name(user: User) -> str:
    """How an account is named to parties: its display name, else its username."""
    return user.display_name or user.username


async def list_staff(db: AsyncSession) -> list[User]:
    """The enabled accounts that can be assigned to hearings (judges and operators), by name."""
    rows = await db.execute(
        select(User)
        .where(User.role.in_([r.value for r in SEAT_ROLES.values()]), User.disabled.is_(False))
        .order_by(User.role, User.display_name, User.username)
    )
    return list(rows.scalars())


async def check_assignee(db: AsyncSession, field: str, user_id: str) -> User:
    """The enabled account ``user_id`` if its role fits ``field``; else 400 ``invalid_staff``."""
    role = SEAT_ROLES[field]
    user = await db.get(User, user_id) if is_valid_id(user_id) else None
    if user is None or user.disabled:
        raise InvalidInput(f"{field}: no such enabled staff account", code="invalid_staff")
    if user.role != role.value:
        raise InvalidInput(f"{field}: the account is a {user.role}, not a {role.value}", code="invalid_staff")
    return user


async def resolve_staff(db: AsyncSession, changes: dict[str, Any]) -> dict[str, Any]:
    """``changes`` with the staff ids checked, and the judge's name taken from an assigned judge's account."""
    resolved = dict(changes)
    for field in SEAT_ROLES:
        user_id = resolved.get(field)
        if user_id is None:
            continue
        user = await check_assignee(db, field, user_id)
        if field == "presiding_judge_id":
            resolved["presiding_judge"] = display_name(user)
    return resolved


async def staff_names(db: AsyncSession, hearing: Hearing) -> dict[str, Any]:
    """The assigned staff for the confirmation log: ids and names (None where nobody is assigned)."""
    found: dict[str, Any] = {}
    for field in SEAT_ROLES:
        user_id = getattr(hearing, field)
        user = await db.get(User, user_id) if user_id else None
        found[field] = user_id
        found[field.removesuffix("_id")] = display_name(user) if user is not None else None
    return found
