"""Hearings: schedule, list and filter, read, change and cancel."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from hearing_server.api.call import Call
from hearing_server.api.hearing_guard import hearing_staff_only
from hearing_server.api.invitations import record_queued
from hearing_server.api.present import hearing_detail_out, hearing_out
from hearing_server.api.registry import endpoint
from hearing_server.api.schemas import (
    HearingCancelIn,
    HearingCreateIn,
    HearingDetailOut,
    HearingOut,
    HearingPage,
    HearingQuery,
    HearingUpdateIn,
    StaffList,
    StaffMemberOut,
)
from hearing_server.auth.access import HEARING_MANAGERS, HEARING_READERS
from hearing_server.domain.errors import Forbidden, InvalidInput
from hearing_server.domain.events import EventType
from hearing_server.notify.worker import NOTIFICATIONS
from hearing_server.services import hearings, invitations, notifications, parties, staff
from hearing_server.store.models import Notification

TAG = "hearings"
ITEM = "/api/v1/hearings/{hearing_id}"


def _jsonable(changes: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in changes.items()}


@endpoint(
    "POST",
    "/api/v1/hearings",
    access=HEARING_MANAGERS,
    tag=TAG,
    body=HearingCreateIn,
    response=HearingOut,
    status=201,
    summary="Schedule a hearing of this server's court.",
)
async def schedule_hearing(call: Call) -> HearingOut:
    body: HearingCreateIn = call.body
    court = call.config.court_name
    if body.court is not None and body.court != court:
        raise Forbidden(f"this server schedules hearings of {court} only", code="other_court")
    now = datetime.now(UTC)
    duration = body.duration_minutes
    if body.scheduled_end is not None:
        duration = hearings.minutes_between(body.scheduled_start, body.scheduled_end)
    assert duration is not None
    async with call.request.app[SCHEDULE_LOCK], call.transaction() as db:
        assigned = await staff.resolve_staff(
            db,
            {
                "presiding_judge": body.presiding_judge,
                "presiding_judge_id": body.presiding_judge_id,
                "secretary_id": body.secretary_id,
            },
        )
        hearing = await hearings.schedule(
            db,
            court=court,
            courtroom=body.courtroom,
            case_number=body.case_number,
            title=body.title,
            scheduled_start=body.scheduled_start,
            duration_minutes=duration,
            presiding_judge=assigned["presiding_judge"],
            presiding_judge_id=assigned["presiding_judge_id"],
            secretary_id=assigned["secretary_id"],
            notice_language=body.notice_language,
            created_by=call.user.id,
            now=now,
        )
        call.record(
            hearing.id,
            EventType.HEARING_SCHEDULED,
            case_number=hearing.case_number,
            scheduled_start=hearing.scheduled_start.isoformat(),
            duration_minutes=hearing.duration_minutes,
        )
        if staff.staff_of(hearing).assigned:
            call.record(hearing.id, EventType.STAFF_ASSIGNED, **await staff.staff_names(db, hearing))
    return hearing_out(hearing)


def _day_start(day: Any, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone)


@endpoint(
    "GET",
    "/api/v1/hearings",
    access=HEARING_READERS,
    tag=TAG,
    query=HearingQuery,
    response=HearingPage,
    summary="List hearings by start time, filtered by day range, status, case number prefix and court.",
)
async def list_hearings(call: Call) -> HearingPage:
    query: HearingQuery = call.query
    if query.date_from and query.date_to and query.date_to < query.date_from:
        raise InvalidInput("date_to is before date_from", code="end_before_start")
    court = call.config.court_name
    if query.court is not None and query.court != court:
        return HearingPage(items=[], total=0, limit=query.limit, offset=query.offset)
    zone = ZoneInfo(call.config.timezone)
    async with call.reading() as db:
        items, total = await hearings.list_hearings(
            db,
            court=court,
            start_from=_day_start(query.date_from, zone) if query.date_from else None,
            start_before=_day_start(query.date_to + timedelta(days=1), zone) if query.date_to else None,
            status=query.status,
            case_prefix=query.case_number,
            limit=query.limit,
            offset=query.offset,
        )
    return HearingPage(
        items=[hearing_out(h) for h in items], total=total, limit=query.limit, offset=query.offset
    )


@endpoint(
    "GET",
    ITEM,
    access=HEARING_READERS,
    tag=TAG,
    response=HearingDetailOut,
    summary="A hearing with its parties.",
)
async def get_hearing(call: Call) -> HearingDetailOut:
    now = datetime.now(UTC)
    async with call.reading() as db:
        hearing = await hearings.get_visible(db, call.path_id("hearing_id"), call.config.court_name)
        found = await parties.list_parties(db, hearing)
        deliveries = await notifications.latest_deliveries(db, hearing.id, now)
    return hearing_detail_out(hearing, found, now, deliveries, viewer=call.user)


@endpoint(
    "GET",
    "/api/v1/staff",
    access=HEARING_READERS,
    tag=TAG,
    response=StaffList,
    summary="The judges and operators to choose a hearing's presiding judge and secretary from.",
)
async def list_staff(call: Call) -> StaffList:
    async with call.reading() as db:
        found = await staff.list_staff(db)
    return StaffList(items=[StaffMemberOut.model_validate(u) for u in found])


@endpoint(
    "PATCH",
    ITEM,
    access=HEARING_MANAGERS,
    guard=hearing_staff_only,
    tag=TAG,
    body=HearingUpdateIn,
    response=HearingOut,
    summary="Change a hearing while it is scheduled or open; links follow a new date.",
)
async def update_hearing(call: Call) -> HearingOut:
    body: HearingUpdateIn = call.body
    now = datetime.now(UTC)
    config = call.config
    planned: list[Notification] = []
    async with call.request.app[SCHEDULE_LOCK], call.transaction() as db:
        hearing = await hearings.get_visible(db, call.path_id("hearing_id"), config.court_name)
        changes = await staff.resolve_staff(db, body.changes())
        changed = await hearings.update_hearing(db, hearing, changes, now)
        if {"scheduled_start", "duration_minutes"} & set(changed):
            await invitations.follow_schedule(
                db,
                hearing,
                zone=ZoneInfo(config.timezone),
                grace_hours=config.invitation_grace_hours,
                now=now,
            )
        if "scheduled_start" in changed:
            planned = await notifications.follow_reschedule(
                db, hearing, reminder_hours=config.notify_reminder_hours, now=now
            )
        if changed:
            call.record(
                hearing.id,
                EventType.HEARING_UPDATED,
                changes=_jsonable({name: getattr(hearing, name) for name in changed}),
            )
        if set(staff.SEAT_ROLES) & set(changed):
            call.record(hearing.id, EventType.STAFF_ASSIGNED, **await staff.staff_names(db, hearing))
        record_queued(call, planned)
    if planned:
        call.request.app[NOTIFICATIONS].wake()
    return hearing_out(hearing)


@endpoint(
    "POST",
    ITEM + "/cancel",
    access=HEARING_MANAGERS,
    guard=hearing_staff_only,
    tag=TAG,
    body=HearingCancelIn,
    response=HearingOut,
    summary="Cancel a hearing that has not ended; its links stop working.",
)
async def cancel_hearing(call: Call) -> HearingOut:
    body: HearingCancelIn = call.body
    now = datetime.now(UTC)
    async with call.transaction() as db:
        hearing = await hearings.get_visible(db, call.path_id("hearing_id"), call.config.court_name)
        to_tell = await notifications.links_to_notify_of_cancellation(db, hearing, now)
        withdrawn = await hearings.cancel_hearing(db, hearing, now)
        planned = await notifications.plan_cancellation_notices(db, hearing, to_tell, now)
        call.record(hearing.id, EventType.HEARING_CANCELLED, reason=body.reason, links_withdrawn=withdrawn)
        record_queued(call, planned)
    if planned:
        call.request.app[NOTIFICATIONS].wake()
    return hearing_out(hearing)


ENDPOINTS = (schedule_hearing, list_hearings, get_hearing, update_hearing, cancel_hearing, list_staff)

SCHEDULE_LOCK = web.AppKey("schedule_lock", asyncio.Lock)
