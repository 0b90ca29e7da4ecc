"""The delivery queue in the database: what is sent to whom and when, so that a restart loses nothing.

Rows are planned here (with the invitation, when a hearing moves or is cancelled) and worked by
:class:`hearing_server.notify.worker.NotificationWorker`.  A row is claimed with a compare-and-set on its
status, so two server processes never send the same message.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from hearing_server.domain.notification import Channel, DeliveryStatus, NotificationKind
from hearing_server.store.models import Hearing, Invitation, Notification, Party

SENT_BY_SERVER = frozenset({Channel.EMAIL.value, Channel.SMS.value})


def party_language(hearing: Hearing, party: Party) -> str:
    """The language the party is written to in: their own, else the hearing's notice language."""
    return party.language or hearing.notice_language


def _row(
    hearing: Hearing,
    party: Party,
    invitation: Invitation,
    kind: NotificationKind,
    due_at: datetime,
    now: datetime,
) -> Notification:
    return Notification(
        hearing_id=hearing.id,
        party_id=party.id,
        invitation_id=invitation.id,
        kind=kind.value,
        channel=invitation.channel,
        recipient=invitation.recipient,
        language=party_language(hearing, party),
        status=DeliveryStatus.PENDING.value,
        attempts=0,
        created_at=now,
        updated_at=now,
        next_attempt_at=due_at,
        last_error="",
    )


def reminder_times(hearing: Hearing, reminder_hours: Iterable[float], now: datetime) -> list[datetime]:
    """When reminders are due: the configured hours before the start that are still ahead, earliest first."""
    times = {hearing.scheduled_start - timedelta(hours=hours) for hours in reminder_hours if hours > 0}
    return sorted(t for t in times if t > now)


async def plan_for_link(
    db: AsyncSession,
    hearing: Hearing,
    party: Party,
    invitation: Invitation,
    *,
    first: NotificationKind,
    reminder_hours: Iterable[float],
    now: datetime,
) -> list[Notification]:
    """Queue ``first`` (now) and the reminders for a link the server sends; returns the new rows."""
    rows = [_row(hearing, party, invitation, first, now, now)]
    rows += [
        _row(hearing, party, invitation, NotificationKind.REMINDER, due, now)
        for due in reminder_times(hearing, reminder_hours, now)
    ]
    db.add_all(rows)
    await db.flush()
    return rows


async def cancel_pending(
    db: AsyncSession, *, hearing_id: str, party_id: str | None = None, reason: str, now: datetime
) -> int:
    """Withdraw the messages of a hearing (or of one party) not yet handed over; returns how many."""
    conditions = [
        Notification.hearing_id == hearing_id,
        Notification.status == DeliveryStatus.PENDING.value,
    ]
    if party_id is not None:
        conditions.append(Notification.party_id == party_id)
    result = await db.execute(
        update(Notification)
        .where(*conditions)
        .values(status=DeliveryStatus.CANCELLED.value, last_error=reason, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def _delivered_links(
    db: AsyncSession, hearing: Hearing, now: datetime
) -> list[tuple[Party, Invitation]]:
    rows = await db.execute(
        select(Party, Invitation)
        .join(Invitation, Invitation.party_id == Party.id)
        .where(
            Invitation.hearing_id == hearing.id,
            Invitation.revoked_at.is_(None),
            Invitation.expires_at > now,
            Invitation.channel.in_(SENT_BY_SERVER),
        )
        .order_by(Party.created_at, Party.id)
    )
    return [(row[0], row[1]) for row in rows]


async def follow_reschedule(
    db: AsyncSession, hearing: Hearing, *, reminder_hours: Iterable[float], now: datetime
) -> list[Notification]:
    """The hearing moved: tell every party whose link the server sent, and plan their reminders anew."""
    planned: list[Notification] = []
    for party, invitation in await _delivered_links(db, hearing, now):
        await cancel_pending(db, hearing_id=hearing.id, party_id=party.id, reason="rescheduled", now=now)
        planned += await plan_for_link(
            db,
            hearing,
            party,
            invitation,
            first=NotificationKind.RESCHEDULED,
            reminder_hours=reminder_hours,
            now=now,
        )
    return planned


async def links_to_notify_of_cancellation(
    db: AsyncSession, hearing: Hearing, now: datetime
) -> list[tuple[Party, Invitation]]:
    """The parties (with their links) to tell that the hearing is cancelled: call before withdrawing links."""
    return await _delivered_links(db, hearing, now)


async def plan_cancellation_notices(
    db: AsyncSession, hearing: Hearing, links: list[tuple[Party, Invitation]], now: datetime
) -> list[Notification]:
    """Withdraw the hearing's pending messages and queue a cancellation notice to each of ``links``."""
    await cancel_pending(db, hearing_id=hearing.id, reason="hearing cancelled", now=now)
    rows = [
        _row(hearing, party, invitation, NotificationKind.CANCELLED, now, now) for party, invitation in links
    ]
    db.add_all(rows)
    await db.flush()
    return rows


async def plan_act_notices(
    db: AsyncSession, hearing: Hearing, act_id: str, *, keep_days: float, now: datetime
) -> list[Notification]:
    """Queue a notice of a new court act to every party whose link the server sent and that still opens
    the hearing's acts (not withdrawn; expired less than ``keep_days`` ago)."""
    rows = await db.execute(
        select(Party, Invitation)
        .join(Invitation, Invitation.party_id == Party.id)
        .where(
            Invitation.hearing_id == hearing.id,
            Invitation.revoked_at.is_(None),
            Invitation.link_sealed.is_not(None),
            Invitation.expires_at > now - timedelta(days=keep_days),
            Invitation.channel.in_(SENT_BY_SERVER),
        )
        .order_by(Party.created_at, Party.id)
    )
    planned = []
    for row in rows:
        notice = _row(hearing, row[0], row[1], NotificationKind.ACT, now, now)
        notice.act_id = act_id
        planned.append(notice)
    db.add_all(planned)
    await db.flush()
    return planned


async def due(db: AsyncSession, now: datetime, limit: int) -> list[Notification]:
    """Pending messages whose time has come, oldest due first."""
    rows = await db.execute(
        select(Notification)
        .where(Notification.status == DeliveryStatus.PENDING.value, Notification.next_attempt_at <= now)
        .order_by(Notification.next_attempt_at, Notification.created_at, Notification.id)
        .limit(limit)
    )
    return list(rows.scalars())


async def next_due_at(db: AsyncSession) -> datetime | None:
    """When the earliest pending message is due (None when nothing waits)."""
    found = await db.execute(
        select(func.min(Notification.next_attempt_at)).where(
            Notification.status == DeliveryStatus.PENDING.value
        )
    )
    return found.scalar_one_or_none()


async def claim(db: AsyncSession, notification_id: str, now: datetime) -> bool:
    """Mark a pending message as being sent (one more attempt); False if someone else took it first."""
    result = await db.execute(
        update(Notification)
        .where(Notification.id == notification_id, Notification.status == DeliveryStatus.PENDING.value)
        .values(status=DeliveryStatus.SENDING.value, attempts=Notification.attempts + 1, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0) == 1


async def sent_since(
    db: AsyncSession, since: datetime, *, hearing_id: str | None = None, recipient: str | None = None
) -> list[datetime]:
    """When messages of a hearing, or to a recipient, were accepted since ``since``, oldest first."""
    query = select(Notification.sent_at).where(
        Notification.status == DeliveryStatus.SENT.value, Notification.sent_at >= since
    )
    if hearing_id is not None:
        query = query.where(Notification.hearing_id == hearing_id)
    if recipient is not None:
        query = query.where(Notification.recipient == recipient)
    rows = await db.execute(query.order_by(Notification.sent_at))
    return [t for t in rows.scalars() if t is not None]


async def in_flight(db: AsyncSession) -> list[Notification]:
    """Messages left marked as being sent (the server stopped in the middle of an attempt)."""
    rows = await db.execute(select(Notification).where(Notification.status == DeliveryStatus.SENDING.value))
    return list(rows.scalars())


async def latest_deliveries(db: AsyncSession, hearing_id: str, now: datetime) -> dict[str, Notification]:
    """Per party, the message saying most about delivery now: the newest tried or due, not withdrawn."""
    rows = await db.execute(
        select(Notification)
        .where(Notification.hearing_id == hearing_id, Notification.status != DeliveryStatus.CANCELLED.value)
        .order_by(Notification.created_at, Notification.id)
    )
    latest: dict[str, Notification] = {}
    for row in rows.scalars():
        if row.attempts > 0 or row.next_attempt_at <= now:
            latest[row.party_id] = row
    return latest
