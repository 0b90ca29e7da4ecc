"""The queue lives in the database: stopping the server in the middle of a batch loses no message and sends
none twice; a server killed in the middle of an attempt settles it on the next start."""

from __future__ import annotations

import asyncio
from collections import Counter

from notify_harness import StartApi, issue_by, log_entries, rows, wait_rows
from notify_peers import SmtpPeer
from sqlalchemy import update

from hearing_server.domain.party import StaffRole
from hearing_server.notify.worker import NOTIFICATIONS
from hearing_server.store.models import Notification

BATCH = 8


async def test_stop_in_the_middle_of_a_batch_then_start_delivers_each_message_once(
    start_api: StartApi, smtp: SmtpPeer
) -> None:
    smtp.drop.delay_s = 0.25  # a slow server: the batch is still going when the server stops
    first = await start_api()
    operator = await first.who(StaffRole.OPERATOR)
    hearing = await first.schedule(operator)
    for number in range(BATCH):
        party = await first.add_party(operator, hearing["id"], display_name=f"Party {number}")
        await issue_by(first, operator, hearing["id"], party["id"], "email", to=f"party{number}@example.kz")
    await smtp.drop.wait_for(3)
    await first.client.close()  # a clean stop: the mail being sent is finished, no new one is started

    delivered_before_restart = len(smtp.drop.mails)
    assert 3 <= delivered_before_restart < BATCH, "the stop did not come in the middle of the batch"
    second = await start_api()
    stored = await rows(second)
    assert Counter(r.status for r in stored) == {
        "sent": delivered_before_restart,
        "pending": BATCH - delivered_before_restart,
    }

    await smtp.drop.wait_for(BATCH)
    await wait_rows(second, lambda found: all(r.status == "sent" for r in found))
    await asyncio.sleep(0.5)  # nothing more arrives
    recipients = Counter(r for mail in smtp.drop.mails for r in mail.rcpt_tos)
    assert recipients == Counter({f"party{n}@example.kz": 1 for n in range(BATCH)})
    sent = await log_entries(second, hearing["id"], "notification_sent")
    assert Counter(e["details"]["notification_id"] for e in sent) == Counter({r.id: 1 for r in stored})


async def test_killed_in_the_middle_of_an_attempt_is_settled_on_the_next_start(
    start_api: StartApi, smtp: SmtpPeer
) -> None:
    smtp.drop.mode = "hang"
    first = await start_api(smtp_timeout_s=3.0)
    operator = await first.who(StaffRole.OPERATOR)
    hearing = await first.schedule(operator)
    party = await first.add_party(operator, hearing["id"])
    await issue_by(first, operator, hearing["id"], party["id"], "email", to="late@example.kz")
    await wait_rows(first, lambda found: found[0].status == "sending")
    # The process dies mid-attempt: the worker is gone without writing anything more.
    task = first.app[NOTIFICATIONS]._task
    assert task is not None
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await first.client.close()

    smtp.drop.mode = "accept"
    second = await start_api()
    [row] = await wait_rows(second, lambda found: found[0].status == "sent")
    assert [m.rcpt_tos for m in smtp.drop.mails] == [["late@example.kz"]]
    assert row.attempts == 2
    [recovered] = await log_entries(second, hearing["id"], "notification_recovered")
    assert recovered["details"]["outcome"] == "tried again"
    await second.client.close()

    # Killed after the acceptance was logged but before the row said so: completed, not sent again.
    async with second.db() as db, db.begin():
        await db.execute(update(Notification).values(status="sending", sent_at=None))
    third = await start_api()
    [row] = await wait_rows(third, lambda found: found[0].status == "sent")
    await asyncio.sleep(0.3)
    assert len(smtp.drop.mails) == 1 and row.attempts == 2
    outcomes = [
        e["details"]["outcome"] for e in await log_entries(third, hearing["id"], "notification_recovered")
    ]
    assert outcomes == ["tried again", "sent"]
