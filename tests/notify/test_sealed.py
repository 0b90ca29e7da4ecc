"""A hearing sealed while a message to its party is being sent: the message goes, the sealed log stays
as it was signed (an addendum seal would be needed to add to it)."""

from __future__ import annotations

from notify_harness import StartApi, issue_by, wait_rows
from notify_peers import SmtpPeer
from sqlalchemy import update

from hearing_server.config import CONFIG
from hearing_server.domain.party import StaffRole
from hearing_server.record.context import SEALER
from hearing_server.store.models import Hearing
from recording.confirmation_log import LOG_FILE_NAME
from recording.hashchain import read_chain
from recording.verify import verify_hearing


async def test_sealing_during_an_attempt_keeps_the_seal_valid(start_api: StartApi, smtp: SmtpPeer) -> None:
    smtp.drop.delay_s = 1.0
    # The development court certificate takes the court's name as its CN (at most 64 characters).
    api = await start_api(court_name="Алматы қалалық соты")
    operator = await api.who(StaffRole.OPERATOR)
    hearing = await api.schedule(operator)
    party = await api.add_party(operator, hearing["id"])
    await issue_by(api, operator, hearing["id"], party["id"], "email", to="late@example.kz")
    await wait_rows(api, lambda found: found[0].status == "sending")
    async with api.db() as db, db.begin():
        await db.execute(update(Hearing).where(Hearing.id == hearing["id"]).values(status="ended"))
    outcome = await api.app[SEALER].seal(hearing["id"])

    await smtp.drop.wait_for(1)
    [row] = await wait_rows(api, lambda found: found[0].status == "sent")
    assert row.message_sha256 is not None
    events = [e["event"] for e in read_chain(outcome.folder / LOG_FILE_NAME)]
    assert events[-1] == "hearing_sealed" and "notification_sent" not in events
    assert verify_hearing(outcome.folder, api.app[CONFIG].court_cert_path).valid
