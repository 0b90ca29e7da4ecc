"""Reminders before the hearing, a notice when it moves and when it is cancelled; rate limits hold back
messages instead of dropping them."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from notify_harness import StartApi, issue_by, log_entries, rows, time_zone, wait_rows
from notify_peers import SmtpPeer

from hearing_server.domain.party import StaffRole

# A reminder "2 hours minus 2 seconds" before a hearing 2 hours away falls due 2 seconds from now.
SOON_REMINDER_HOURS = 2 - 2 / 3600


async def test_reminder_reschedule_and_cancellation_reach_the_party(
    start_api: StartApi, smtp: SmtpPeer
) -> None:
    api = await start_api(notify_reminder_hours=[24.0, SOON_REMINDER_HOURS])
    zone = ZoneInfo(time_zone(api))
    operator = await api.who(StaffRole.OPERATOR)
    start = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0)
    hearing = await api.schedule(operator, case_number="2-300/2026", scheduled_start=start.isoformat())
    party = await api.add_party(operator, hearing["id"], language="ru", contact="ivanov@example.kz")
    issued = await issue_by(api, operator, hearing["id"], party["id"], "email")
    # The 24-hour reminder is already past: only the invitation and the near reminder are queued.
    assert [r.kind for r in await rows(api)] == ["invitation", "reminder"]

    invitation, reminder = await smtp.drop.wait_for(2)
    when = start.astimezone(zone).strftime("%d.%m.%Y %H:%M")
    assert invitation.message["Subject"].endswith(f"судебное заседание по делу № 2-300/2026, {when}")
    assert reminder.message["Subject"] == f"Напоминание: судебное заседание по делу № 2-300/2026, {when}"
    assert issued["url"] in reminder.text

    moved = start + timedelta(days=2)
    result = await api.call(
        "PATCH", f"/api/v1/hearings/{hearing['id']}", operator, json={"scheduled_start": moved.isoformat()}
    )
    assert result.status == 200, result.json
    [*_, rescheduled] = await smtp.drop.wait_for(3)
    new_when = moved.astimezone(zone).strftime("%d.%m.%Y %H:%M")
    assert rescheduled.message["Subject"].endswith(f"заседание по делу № 2-300/2026 перенесено на {new_when}")
    assert f"Новые дата и время: {new_when} ({time_zone(api)})" in rescheduled.text
    assert issued["url"] in rescheduled.text  # the same link keeps working
    pending = [r for r in await rows(api) if r.status == "pending"]
    assert sorted(r.next_attempt_at for r in pending) == [
        moved - timedelta(hours=24),
        moved - timedelta(hours=SOON_REMINDER_HOURS),
    ]

    result = await api.call("POST", f"/api/v1/hearings/{hearing['id']}/cancel", operator, json={})
    assert result.status == 200, result.json
    [*_, cancelled] = await smtp.drop.wait_for(4)
    assert cancelled.message["Subject"].endswith(f"заседание по делу № 2-300/2026 ({new_when}) отменено")
    assert "/join/" not in cancelled.text and "больше не действует" in cancelled.text
    final = await wait_rows(api, lambda found: all(r.status in {"sent", "cancelled"} for r in found))
    assert sorted((r.kind, r.status) for r in final) == [
        ("cancelled", "sent"),
        ("invitation", "sent"),
        ("reminder", "cancelled"),
        ("reminder", "cancelled"),
        ("reminder", "sent"),
        ("rescheduled", "sent"),
    ]
    await asyncio.sleep(0.3)
    assert len(smtp.drop.mails) == 4
    sent = await log_entries(api, hearing["id"], "notification_sent")
    assert [e["details"]["kind"] for e in sent] == ["invitation", "reminder", "rescheduled", "cancelled"]
    queued = await log_entries(api, hearing["id"], "notification_queued")
    assert len(queued) == 6


async def test_rate_limits_hold_messages_back_without_dropping_them(
    start_api: StartApi, smtp: SmtpPeer
) -> None:
    api = await start_api(notify_recipient_per_hour=1, notify_hearing_per_minute=2)
    operator = await api.who(StaffRole.OPERATOR)
    hearing = await api.schedule(operator)
    parties = [await api.add_party(operator, hearing["id"], display_name=f"P{n}") for n in range(4)]
    addresses = ["family@example.kz", "family@example.kz", "other@example.kz", "fourth@example.kz"]

    await issue_by(api, operator, hearing["id"], parties[0]["id"], "email", to=addresses[0])
    await smtp.drop.wait_for(1)
    await issue_by(api, operator, hearing["id"], parties[1]["id"], "email", to=addresses[1])
    found = await wait_rows(
        api, lambda found: found[1].next_attempt_at > datetime.now(UTC) + timedelta(minutes=30)
    )
    # The second mail to the same address waits an hour after the first was accepted.
    assert found[1].status == "pending" and found[1].attempts == 0
    assert abs(found[1].next_attempt_at - (found[0].sent_at + timedelta(hours=1))) < timedelta(seconds=1)

    await issue_by(api, operator, hearing["id"], parties[2]["id"], "email", to=addresses[2])
    await smtp.drop.wait_for(2)
    await issue_by(api, operator, hearing["id"], parties[3]["id"], "email", to=addresses[3])
    found = await wait_rows(
        api, lambda found: found[3].next_attempt_at > datetime.now(UTC) + timedelta(seconds=30)
    )
    # Two mails of this hearing went out within the minute: the fourth waits for the minute to pass.
    assert abs(found[3].next_attempt_at - (found[0].sent_at + timedelta(minutes=1))) < timedelta(seconds=1)
    await asyncio.sleep(0.3)
    assert [m.rcpt_tos for m in smtp.drop.mails] == [["family@example.kz"], ["other@example.kz"]]
    assert [r.status for r in await rows(api)] == ["sent", "pending", "sent", "pending"]
