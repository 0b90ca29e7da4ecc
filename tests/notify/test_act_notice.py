"""A signed court act is announced to the parties whose links the server sent, in their language, with the
link that downloads it."""

from __future__ import annotations

import sys
from pathlib import Path

from notify_harness import StartApi, issue_by, log_entries, wait_rows
from notify_peers import SmsGateway, SmtpPeer
from sqlalchemy import update

from hearing_server.domain.party import StaffRole
from hearing_server.store.models import Hearing

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "acts"))
from pdfs import make_pdf  # noqa: E402


async def test_parties_are_told_of_a_signed_act(
    start_api: StartApi, smtp: SmtpPeer, gateway: SmsGateway
) -> None:
    api = await start_api(court_name="Алматы қалалық соты")
    operator = await api.who(StaffRole.OPERATOR)
    judge = await api.who(StaffRole.JUDGE)
    hearing = await api.schedule(operator, case_number="2-901/2026")
    by_mail = await api.add_party(operator, hearing["id"], language="kk", display_name="Айгүл")
    by_sms = await api.add_party(operator, hearing["id"], language="ru", display_name="Иван")
    handed = await api.add_party(operator, hearing["id"], display_name="Witness")
    mailed = await issue_by(api, operator, hearing["id"], by_mail["id"], "email", to="aigul@example.kz")
    texted = await issue_by(api, operator, hearing["id"], by_sms["id"], "sms", to="+77011234567")
    await api.issue(operator, hearing["id"], handed["id"])
    await smtp.drop.wait_for(1)
    await gateway.wait_for(1)
    async with api.db() as db, db.begin():
        await db.execute(update(Hearing).where(Hearing.id == hearing["id"]).values(status="ended"))

    result = await api.call(
        "POST",
        f"/api/v1/hearings/{hearing['id']}/acts?title=Шешім",
        judge,
        data=make_pdf(),
        headers={"Content-Type": "application/pdf"},
    )
    assert result.status == 201, result.json
    _, notice = await smtp.drop.wait_for(2)
    assert notice.message["Subject"] == "Алматы қалалық соты: № 2-901/2026 іс бойынша сот актісі: Шешім"
    assert mailed["url"] in notice.text
    _, sms = await gateway.wait_for(2)
    assert (
        sms["text"]
        == f"Алматы қалалық соты: судебный акт по делу № 2-901/2026 (Шешім). Скачать: {texted['url']}"
    )
    found = await wait_rows(api, lambda rows: sum(r.kind == "act" and r.status == "sent" for r in rows) == 2)
    assert {r.act_id for r in found if r.kind == "act"} == {result.json["id"]}
    sent = await log_entries(api, hearing["id"], "notification_sent")
    assert [e["details"]["kind"] for e in sent].count("act") == 2
