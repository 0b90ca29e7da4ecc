"""Scheduling, changing, listing and cancelling hearings under the court's rules on dates and duplicates."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from hearing_server.domain.errors import Conflict, InvalidInput, NotFound
from hearing_server.domain.hearing import EDITABLE, HearingStatus, check_transition
from hearing_server.domain.ids import is_valid_id
from hearing_server.store.models import Hearing, Invitation, Party

MAX_DURATION_MINUTES = 24 * 60
# Clocks of the operator's PC and the server differ a little; a hearing "starting now" is not in the past.
PAST_TOLERANCE = timedelta(minutes=5)


def scheduled_end(hearing: Hearing) -> datetime:
    """When the hearing is planned to end."""
    return hearing.scheduled_start + timedelta(minutes=hearing.duration_minutes)


def minutes_between(start: datetime, end: datetime) -> int:
    """The duration in whole minutes (rounded up) from ``start`` to ``end``; the end must be later."""
    if end <= start:
        raise InvalidInput("the hearing must end after it starts", code="end_before_start")
    minutes = math.ceil((end - start).total_seconds() / 60)
    if minutes > MAX_DURATION_MINUTES:
        raise InvalidInput(f"a hearing lasts at most {MAX_DURATION_MINUTES} minutes", code="invalid_input")
    return minutes


def check_start(start: datetime, now: datetime) -> None:
    """Raise unless ``start`` is not in the past."""
    if start < now - PAST_TOLERANCE:
        raise InvalidInput("the scheduled start is in the past", code="start_in_past")


async def check_no_overlap(
    db: AsyncSession,
    *,
    court: str,
    case_number: str,
    start: datetime,
    end: datetime,
    exclude_id: str | None = None,
) -> None:
    """Raise :class:`Conflict` if the same case already has a hearing of this court at an overlapping time."""
    rows = await db.execute(
        select(Hearing).where(
            Hearing.court == court,
            Hearing.case_number == case_number,
            Hearing.status != HearingStatus.CANCELLED.value,
            Hearing.scheduled_start < end,
        )
    )
    for other in rows.scalars():
        if other.id != exclude_id and scheduled_end(other) > start:
            raise Conflict(
                f"case {case_number} already has a hearing at an overlapping time ({other.id})",
                code="duplicate_hearing",
            )


async def schedule(
    db: AsyncSession,
    *,
    court: str,
    courtroom: str,
    case_number: str,
    title: str,
    scheduled_start: datetime,
    duration_minutes: int,
    presiding_judge: str,
    notice_language: str,
    created_by: str | None,
    now: datetime,
    presiding_judge_id: str | None = None,
    secretary_id: str | None = None,
) -> Hearing:
    """Add a scheduled hearing after checking its start and that its case has no overlapping hearing."""
    scheduled_start = scheduled_start.astimezone(UTC)
    check_start(scheduled_start, now)
    await check_no_overlap(
        db,
        court=court,
        case_number=case_number,
        start=scheduled_start,
        end=scheduled_start + timedelta(minutes=duration_minutes),
    )
    hearing = Hearing(
        court=court,
        courtroom=courtroom,
        case_number=case_number,
        title=title,
        scheduled_start=scheduled_start,
        duration_minutes=duration_minutes,
        presiding_judge=presiding_judge,
        presiding_judge_id=presiding_judge_id,
        secretary_id=secretary_id,
        notice_language=notice_language,
        status=HearingStatus.SCHEDULED.value,
        created_by=created_by,
        created_at=now,
        updated_at=now,
        legal_hold=False,
    )
    db.add(hearing)
    await db.flush()
    return hearing


async def get_visible(
    db: AsyncSession, hearing_id: str, court: str, *, with_parties: bool = False
) -> Hearing:
    """The hearing ``hearing_id`` of this server's ``court``; other courts' hearings are not visible."""
    if not is_valid_id(hearing_id):
        raise NotFound("no such hearing", code="hearing_not_found")
    statement = select(Hearing).where(Hearing.id == hearing_id)
    if with_parties:
        statement = statement.options(selectinload(Hearing.parties).selectinload(Party.invitations))
    hearing = (await db.execute(statement)).scalar_one_or_none()
    if hearing is None or hearing.court != court:
        raise NotFound("no such hearing", code="hearing_not_found")
    return hearing


async def list_hearings(
    db: AsyncSession,
    *,
    court: str,
    start_from: datetime | None,
    start_before: datetime | None,
    status: HearingStatus | None,
    case_prefix: str | None,
    limit: int,
    offset: int,
) -> tuple[list[Hearing], int]:
    """One page of the court's hearings, by start then id (a stable order), and the total count."""
    conditions: list[Any] = [Hearing.court == court]
    if start_from is not None:
        conditions.append(Hearing.scheduled_start >= start_from)
    if start_before is not None:
        conditions.append(Hearing.scheduled_start < start_before)
    if status is not None:
        conditions.append(Hearing.status == status.value)
    if case_prefix:
        # substr rather than LIKE: no wildcards to escape and the same case-sensitivity on every backend.
        conditions.append(func.substr(Hearing.case_number, 1, len(case_prefix)) == case_prefix)
    total = (await db.execute(select(func.count()).select_from(Hearing).where(*conditions))).scalar_one()
    rows = await db.execute(
        select(Hearing)
        .where(*conditions)
        .order_by(Hearing.scheduled_start, Hearing.id)
        .limit(limit)
        .offset(offset)
    )
    return list(rows.scalars()), int(total)


async def update_hearing(
    db: AsyncSession, hearing: Hearing, changes: dict[str, Any], now: datetime
) -> list[str]:
    """Apply ``changes`` to a hearing that is still scheduled or open; returns the fields that changed."""
    if HearingStatus(hearing.status) not in EDITABLE:
        raise Conflict(f"a hearing that is {hearing.status} cannot be changed", code="not_editable")
    changes = dict(changes)
    if "scheduled_start" in changes:
        changes["scheduled_start"] = changes["scheduled_start"].astimezone(UTC)
    start = changes.get("scheduled_start", hearing.scheduled_start)
    if "scheduled_start" in changes:
        check_start(start, now)
    end = changes.pop("scheduled_end", None)
    if end is not None:
        changes["duration_minutes"] = minutes_between(start, end)
    changed = [name for name, value in changes.items() if getattr(hearing, name) != value]
    if {"scheduled_start", "duration_minutes", "case_number"} & set(changed):
        await check_no_overlap(
            db,
            court=hearing.court,
            case_number=changes.get("case_number", hearing.case_number),
            start=start,
            end=start + timedelta(minutes=changes.get("duration_minutes", hearing.duration_minutes)),
            exclude_id=hearing.id,
        )
    for name in changed:
        setattr(hearing, name, changes[name])
    if changed:
        hearing.updated_at = now
    await db.flush()
    return changed


async def cancel_hearing(db: AsyncSession, hearing: Hearing, now: datetime) -> int:
    """Cancel the hearing and withdraw its active invitation links; returns how many were withdrawn."""
    check_transition(HearingStatus(hearing.status), HearingStatus.CANCELLED)
    hearing.status = HearingStatus.CANCELLED.value
    hearing.updated_at = now
    result = await db.execute(
        update(Invitation)
        .where(Invitation.hearing_id == hearing.id, Invitation.revoked_at.is_(None))
        .values(revoked_at=now, link_sealed=None)
    )
    await db.flush()
    return int(getattr(result, "rowcount", 0) or 0)
