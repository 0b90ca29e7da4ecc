"""The background task that works the delivery queue: sends due messages, retries with back-off,
keeps the per-hearing and per-recipient rate limits, and writes every attempt to the confirmation log.

Each attempt is logged before its outcome is written to the queue row.  A server stopped cleanly finishes
the attempt in progress; a server killed in the middle of one finds the row marked ``sending`` on start:
if the log already holds its ``notification_sent`` entry the row is completed, otherwise it is tried again
(a message accepted by the peer in the instant before the kill may then arrive twice: at least once, never
lost).  Once the hearing is sealed its log cannot grow: each outcome is then sealed as an addendum of its own,
chained to the seal (``recording/addendum.py``), so deliveries after the seal are evidence as well.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hearing_server.config import CONFIG, Config
from hearing_server.domain.events import EventType
from hearing_server.domain.hearing import HearingStatus
from hearing_server.domain.notification import Channel, DeliveryStatus, NotificationKind
from hearing_server.notify.link_vault import LinkVault, LinkVaultError
from hearing_server.notify.messages import HearingFacts, render
from hearing_server.notify.notifier import DeliveryFailed, Notifier, OutgoingMessage, Receipt
from hearing_server.notify.sms_gateway import SmsGatewayNotifier
from hearing_server.notify.smtp import SmtpNotifier
from hearing_server.record.context import SEALER
from hearing_server.services import notifications as queue
from hearing_server.store.db import SESSIONS
from hearing_server.store.models import Act, Hearing, HearingEvent, Invitation, Notification, Party

log = logging.getLogger(__name__)

ACTOR = "system"

EventSink = Callable[[str, EventType, str, str | None, dict[str, Any]], Awaitable[object]]
"""Records (hearing id, event, actor, party id, details): in the hearing's log, or sealed as an addendum
once the hearing is sealed (:meth:`Sealer.record_or_seal`)."""
OVER = frozenset({HearingStatus.ENDED.value, HearingStatus.SEALED.value, HearingStatus.CANCELLED.value})


@dataclass(frozen=True)
class DeliveryPolicy:
    """How hard and how fast the worker tries (all from the configuration)."""

    max_attempts: int = 6
    retry_base_s: float = 60.0
    retry_max_s: float = 3600.0
    poll_s: float = 5.0
    hearing_per_minute: int = 60
    recipient_per_hour: int = 10
    send_timeout_s: float = 60.0
    time_zone: str = "Asia/Almaty"
    act_link_days: float = 30.0
    batch: int = 50

    @classmethod
    def from_config(cls, config: Config) -> DeliveryPolicy:
        """The policy the configuration asks for; an attempt is cut off a little after the peer's timeout."""
        return cls(
            max_attempts=config.notify_max_attempts,
            retry_base_s=config.notify_retry_base_s,
            retry_max_s=config.notify_retry_max_s,
            poll_s=config.notify_poll_s,
            hearing_per_minute=config.notify_hearing_per_minute,
            recipient_per_hour=config.notify_recipient_per_hour,
            send_timeout_s=max(config.smtp_timeout_s, config.sms_timeout_s) + 5.0,
            time_zone=config.timezone,
            act_link_days=config.act_link_days,
        )

    def retry_delay(self, attempt: int) -> timedelta:
        """The wait after failed attempt ``attempt`` (1-based): base, 2×base, 4×base, … up to the cap."""
        return timedelta(seconds=min(self.retry_base_s * 2 ** (attempt - 1), self.retry_max_s))


def notifiers_from_config(config: Config) -> dict[Channel, Notifier]:
    """The channels the configuration enables: e-mail when an SMTP host is set, SMS when a gateway URL is."""
    found: dict[Channel, Notifier] = {}
    if config.smtp_host:
        found[Channel.EMAIL] = SmtpNotifier(
            host=config.smtp_host,
            port=config.smtp_port,
            security=config.smtp_security,
            sender=config.smtp_from or f"hearings@{config.smtp_host}",
            court=config.court_name,
            username=config.smtp_username,
            password=config.smtp_password,
            ca_file=config.smtp_ca_file,
            timeout_s=config.smtp_timeout_s,
        )
    if config.sms_url:
        found[Channel.SMS] = SmsGatewayNotifier(
            url=config.sms_url,
            auth_header=config.sms_auth_header,
            body_template=config.sms_body_template,
            timeout_s=config.sms_timeout_s,
        )
    return found


def _withdraw_reason(
    row: Notification, hearing: Hearing, invitation: Invitation | None, now: datetime, act_link_days: float
) -> str:
    kind = NotificationKind(row.kind)
    if kind is NotificationKind.CANCELLED:
        return "" if hearing.status == HearingStatus.CANCELLED.value else "the hearing is not cancelled"
    if kind is NotificationKind.ACT:
        # Acts are announced also after the hearing, as long as the link still opens them.
        if hearing.status == HearingStatus.CANCELLED.value:
            return "the hearing is cancelled"
    elif hearing.status in OVER:
        return f"the hearing is {hearing.status}"
    if invitation is None or invitation.revoked_at is not None or invitation.link_sealed is None:
        return "the link was withdrawn"
    grace = timedelta(days=act_link_days) if kind is NotificationKind.ACT else timedelta(0)
    if invitation.expires_at + grace <= now:
        return "the link expired"
    return ""


class NotificationWorker:
    """Sends what the queue holds, one message at a time, until stopped."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        record: EventSink,
        notifiers: Mapping[Channel, Notifier],
        vault: LinkVault,
        policy: DeliveryPolicy,
    ) -> None:
        self._sessions = sessions
        self._record = record
        self._notifiers = dict(notifiers)
        self._vault = vault
        self.policy = policy
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    @property
    def channels(self) -> frozenset[Channel]:
        """The channels this server can send by."""
        return frozenset(self._notifiers)

    def wake(self) -> None:
        """Look at the queue now (something was just queued)."""
        self._wake.set()

    def start(self) -> None:
        """Start working the queue in the background."""
        self._task = asyncio.create_task(self._run(), name="notification-worker")

    async def stop(self) -> None:
        """Stop taking messages, let the attempt in progress finish (bounded), close the channels."""
        self._stopping = True
        self._wake.set()
        if self._task is not None and not self._task.done():
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout=self.policy.send_timeout_s + 5)
            except TimeoutError:
                log.warning("notification worker did not stop in time; an attempt is left for the next start")
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
        for notifier in self._notifiers.values():
            await notifier.close()

    async def _run(self) -> None:
        try:
            await self.recover()
        except Exception:
            log.exception("notification recovery failed; rows left as being sent stay so")
        while not self._stopping:
            try:
                await self.run_once()
            except (SQLAlchemyError, OSError) as exc:  # the database is away: messages wait in the queue
                log.warning("notification queue pass deferred (database unreachable: %s)", type(exc).__name__)
            except Exception:
                log.exception("notification queue pass failed; trying again in %.1f s", self.policy.poll_s)
            if self._stopping:
                break
            try:
                idle = await self._idle_time()
            except (SQLAlchemyError, OSError):
                idle = self.policy.poll_s  # reported by the pass above; this loop must outlive the outage
            # asyncio.timeout waits in this task; wait_for would start a task per pass
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(idle):
                    await self._wake.wait()
            self._wake.clear()

    async def _idle_time(self) -> float:
        async with self._sessions() as db:
            next_due = await queue.next_due_at(db)
        if next_due is None:
            return self.policy.poll_s
        ahead = (next_due - datetime.now(UTC)).total_seconds()
        return min(self.policy.poll_s, max(ahead, 0.05))

    async def recover(self) -> int:
        """Settle rows a killed server left as being sent; returns how many."""
        async with self._sessions() as db:
            stuck = await queue.in_flight(db)
            if not stuck:
                return 0
            logged = await db.execute(
                select(HearingEvent.details).where(
                    HearingEvent.hearing_id.in_({row.hearing_id for row in stuck}),
                    HearingEvent.event == EventType.NOTIFICATION_SENT.value,
                )
            )
            sent_ids = {details.get("notification_id") for details in logged.scalars() if details}
        now = datetime.now(UTC)
        for row in stuck:
            was_sent = row.id in sent_ids
            await self._log(
                row,
                EventType.NOTIFICATION_RECOVERED,
                {
                    "notification_id": row.id,
                    "attempt": row.attempts,
                    "outcome": "sent" if was_sent else "tried again",
                    "reason": "the server stopped during the attempt",
                },
            )
            async with self._sessions() as db, db.begin():
                values: dict[str, Any] = {"updated_at": now}
                if was_sent:
                    values |= {"status": DeliveryStatus.SENT.value, "sent_at": row.updated_at}
                else:
                    values |= {"status": DeliveryStatus.PENDING.value, "next_attempt_at": now}
                await db.execute(
                    update(Notification)
                    .where(Notification.id == row.id, Notification.status == DeliveryStatus.SENDING.value)
                    .values(**values)
                )
            log.warning(
                "notification %s interrupted by a stop: %s", row.id, "sent" if was_sent else "requeued"
            )
        return len(stuck)

    async def run_once(self) -> int:
        """One pass over the due messages; returns how many were attempted."""
        async with self._sessions() as db:
            rows = await queue.due(db, datetime.now(UTC), self.policy.batch)
        attempted = 0
        for row in rows:
            if self._stopping:
                break
            attempted += await self._deliver(row)
        return attempted

    async def _set(self, row_id: str, expect: DeliveryStatus, **values: Any) -> None:
        async with self._sessions() as db, db.begin():
            await db.execute(
                update(Notification)
                .where(Notification.id == row_id, Notification.status == expect.value)
                .values(updated_at=datetime.now(UTC), **values)
            )

    async def _limited_until(self, db: AsyncSession, row: Notification, now: datetime) -> datetime | None:
        """When ``row`` may go without breaking a rate limit (None: now)."""
        later: list[datetime] = []
        for window, most, scope in (
            (timedelta(minutes=1), self.policy.hearing_per_minute, {"hearing_id": row.hearing_id}),
            (timedelta(hours=1), self.policy.recipient_per_hour, {"recipient": row.recipient}),
        ):
            sent = await queue.sent_since(db, now - window, **scope)
            if len(sent) >= most:
                later.append(sent[len(sent) - most] + window)
        return max(later) if later else None

    async def _deliver(self, row: Notification) -> int:
        now = datetime.now(UTC)
        async with self._sessions() as db:
            hearing = await db.get(Hearing, row.hearing_id)
            party = await db.get(Party, row.party_id)
            invitation = await db.get(Invitation, row.invitation_id) if row.invitation_id else None
            if hearing is None or party is None:
                return 0
            reason = _withdraw_reason(row, hearing, invitation, now, self.policy.act_link_days)
            act_title = ""
            if row.act_id is not None:
                act = await db.get(Act, row.act_id)
                act_title = act.title if act is not None else ""
                reason = reason or ("" if act is not None else "the act is gone")
            if reason:
                await self._set(
                    row.id, DeliveryStatus.PENDING, status=DeliveryStatus.CANCELLED.value, last_error=reason
                )
                log.info("notification %s withdrawn: %s", row.id, reason)
                return 0
            limited = await self._limited_until(db, row, now)
        if limited is not None:
            await self._set(row.id, DeliveryStatus.PENDING, next_attempt_at=limited)
            log.info("notification %s waits for the rate limit until %s", row.id, limited.isoformat())
            return 0
        async with self._sessions() as db, db.begin():
            if not await queue.claim(db, row.id, now):
                return 0
        attempt = row.attempts + 1
        try:
            message = self._message(row, hearing, party, invitation, act_title)
        except LinkVaultError as exc:
            await self._failed(row, attempt, str(exc), sha256=None, final=True)
            return 1
        digest = hashlib.sha256(message.text.encode("utf-8")).hexdigest()
        notifier = self._notifiers.get(Channel(row.channel))
        if notifier is None:
            reason = f"no {row.channel} channel is configured"
            await self._failed(row, attempt, reason, sha256=digest, final=True, language=message.language)
            return 1
        try:
            receipt = await asyncio.wait_for(notifier.send(message), timeout=self.policy.send_timeout_s)
        except DeliveryFailed as exc:
            await self._failed(row, attempt, exc.reason, sha256=digest, language=message.language)
        except TimeoutError:
            await self._failed(
                row,
                attempt,
                f"no answer in {self.policy.send_timeout_s:g} s",
                sha256=digest,
                language=message.language,
            )
        except Exception as exc:
            log.exception("notification %s: unexpected error from the %s channel", row.id, row.channel)
            await self._failed(
                row, attempt, f"{type(exc).__name__}: {exc}", sha256=digest, language=message.language
            )
        else:
            await self._sent(row, attempt, message, digest, receipt)
        return 1

    def _message(
        self,
        row: Notification,
        hearing: Hearing,
        party: Party,
        invitation: Invitation | None,
        act_title: str = "",
    ) -> OutgoingMessage:
        kind = NotificationKind(row.kind)
        link = ""
        if kind.carries_link and invitation is not None and invitation.link_sealed is not None:
            link = self._vault.open(invitation.link_sealed, invitation.id)
        facts = HearingFacts(
            court=hearing.court,
            case_number=hearing.case_number,
            title=hearing.title,
            courtroom=hearing.courtroom,
            start=hearing.scheduled_start,
            zone=self.policy.time_zone,
            party_name=party.display_name,
            link=link,
            act_title=act_title,
        )
        # The party's language now (the operator may have changed it since the message was queued).
        language = queue.party_language(hearing, party)
        subject, text = render(kind, Channel(row.channel), language, facts)
        return OutgoingMessage(
            notification_id=row.id, recipient=row.recipient, language=language, subject=subject, text=text
        )

    async def _log(self, row: Notification, event: EventType, details: dict[str, Any]) -> None:
        """Write ``event`` to the hearing's confirmation log, or seal it as an addendum once the hearing is
        sealed (a sealed log cannot grow)."""
        await self._record(row.hearing_id, event, ACTOR, row.party_id, details)

    def _details(self, row: Notification, attempt: int, sha256: str | None) -> dict[str, Any]:
        return {
            "notification_id": row.id,
            "kind": row.kind,
            "channel": row.channel,
            "recipient": row.recipient,
            "language": row.language,
            "attempt": attempt,
            "message_sha256": sha256,
        }

    async def _sent(
        self, row: Notification, attempt: int, message: OutgoingMessage, digest: str, receipt: Receipt
    ) -> None:
        details = self._details(row, attempt, digest) | {
            "language": message.language,
            "reply": receipt.reply[:300],
            "message_id": receipt.message_id,
        }
        if row.channel == Channel.EMAIL.value:
            details["subject"] = message.subject
        await self._log(row, EventType.NOTIFICATION_SENT, details)
        await self._set(
            row.id,
            DeliveryStatus.SENDING,
            status=DeliveryStatus.SENT.value,
            sent_at=datetime.now(UTC),
            message_sha256=digest,
            language=message.language,
            last_error="",
        )
        log.info("notification %s (%s, %s) accepted: %s", row.id, row.kind, row.channel, receipt.reply[:120])

    async def _failed(
        self,
        row: Notification,
        attempt: int,
        reason: str,
        *,
        sha256: str | None,
        final: bool = False,
        language: str | None = None,
    ) -> None:
        final = final or attempt >= self.policy.max_attempts
        retry_at = None if final else datetime.now(UTC) + self.policy.retry_delay(attempt)
        details = self._details(row, attempt, sha256) | {
            "language": language or row.language,
            "reason": reason[:500],
            "retry_at": retry_at.isoformat() if retry_at else None,
            "gave_up": final,
        }
        await self._log(row, EventType.NOTIFICATION_FAILED, details)
        values: dict[str, Any] = {"last_error": reason[:2000], "message_sha256": sha256}
        if final:
            values["status"] = DeliveryStatus.FAILED.value
        else:
            values |= {"status": DeliveryStatus.PENDING.value, "next_attempt_at": retry_at}
        await self._set(row.id, DeliveryStatus.SENDING, **values)
        log.warning(
            "notification %s (%s to %s) attempt %d failed%s: %s",
            row.id,
            row.channel,
            row.recipient,
            attempt,
            "; giving up" if final else f"; retry at {retry_at.isoformat() if retry_at else ''}",
            reason,
        )


async def notifications_context(app: web.Application) -> AsyncIterator[None]:
    """The delivery worker's lifetime: started after the database, stopped (attempt finished) before it."""
    config = app[CONFIG]
    vault = await asyncio.to_thread(LinkVault.from_file, config.link_key_path)

    async def record(
        hearing_id: str, event: EventType, actor: str, party_id: str | None, details: dict[str, Any]
    ) -> object:
        return await app[SEALER].record_or_seal(
            hearing_id, event, actor=actor, party_id=party_id, details=details
        )

    worker = NotificationWorker(
        app[SESSIONS], record, notifiers_from_config(config), vault, DeliveryPolicy.from_config(config)
    )
    app[NOTIFICATIONS] = worker
    app[LINK_VAULT] = vault
    worker.start()
    yield
    await worker.stop()


NOTIFICATIONS = web.AppKey("notifications", NotificationWorker)
LINK_VAULT = web.AppKey("link_vault", LinkVault)
