"""Invitations by e-mail reach a real SMTP server (aiosmtpd on 127.0.0.1): in the party's language, with the
court, case, time in the court's zone and a working link; refusals and hangs are logged and retried."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from api_harness import future_start
from notify_harness import StartApi, issue_by, log_entries, rows, time_zone, wait_rows
from notify_peers import SmtpPeer, rfc2047, start_silent_server

from hearing_server.auth.invitations import resolve_invitation
from hearing_server.domain.party import StaffRole


async def test_kazakh_invitation_mail_arrives_with_a_working_link(
    start_api: StartApi, smtp: SmtpPeer
) -> None:
    api = await start_api()
    operator = await api.who(StaffRole.OPERATOR)
    start = future_start(days=2, hour=4)
    hearing = await api.schedule(
        operator, case_number="2-4512/2026", title="Сапарова v. ЖШС Береке", scheduled_start=start.isoformat()
    )
    party = await api.add_party(
        operator, hearing["id"], display_name="Айгүл Сапарова", language="kk", contact="aigul@example.kz"
    )
    issued = await issue_by(api, operator, hearing["id"], party["id"], "email")
    assert issued["channel"] == "email" and issued["recipient"] == "aigul@example.kz"
    assert issued["delivery"]["status"] == "pending"

    [mail] = await smtp.drop.wait_for(1)
    # The server accepted it; the worker writes that down a moment later.
    await wait_rows(api, lambda found: found[0].status == "sent")
    assert mail.rcpt_tos == ["aigul@example.kz"]
    assert mail.mail_from == "hearings@court.test"
    message = mail.message
    assert message["To"] == "aigul@example.kz"
    assert message["From"].addresses[0].addr_spec == "hearings@court.test"
    # As an RFC 2047 reader shows it (Python's own address parser splits encoded words apart).
    assert rfc2047(mail.raw_header("From")) == (
        "Алматы қаласының мамандандырылған ауданаралық экономикалық соты <hearings@court.test>"
    )
    when = start.astimezone(ZoneInfo(time_zone(api))).strftime("%d.%m.%Y %H:%M")
    assert (
        message["Subject"]
        == rfc2047(mail.raw_header("Subject"))
        == (
            f"Алматы қаласының мамандандырылған ауданаралық экономикалық соты: № 2-4512/2026 іс бойынша сот "
            f"отырысы, {when}"
        )
    )
    assert message["Content-Language"] == "kk"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message.get_content_type() == "text/plain"
    assert message.get_content_charset() == "utf-8"
    assert message["Message-ID"].endswith("@court.test>")
    text = mail.text
    assert text.startswith("Құрметті Айгүл Сапарова!")
    assert "№ 2-4512/2026 іс (Сапарова v. ЖШС Береке)" in text
    assert f"Күні мен уақыты: {when} (Asia/Almaty)" in text
    assert issued["url"] in text.splitlines()

    # The link in the mail is the party's working link.
    link = next(line for line in text.splitlines() if "/join/" in line)
    async with api.db() as db:
        _inv, found_party, found_hearing = await resolve_invitation(
            db, link.rsplit("/join/", 1)[1], datetime.now(UTC)
        )
    assert (found_party.id, found_hearing.id) == (party["id"], hearing["id"])
    page = await api.call("GET", "/join/" + link.rsplit("/join/", 1)[1])
    assert page.status == 200

    # The confirmation log holds the queueing and the acceptance, with the SHA-256 of the text sent.
    [sent] = await log_entries(api, hearing["id"], "notification_sent")
    assert sent["details"]["message_sha256"] == hashlib.sha256(text.encode("utf-8")).hexdigest()
    assert sent["details"]["recipient"] == "aigul@example.kz"
    assert sent["details"]["channel"] == "email" and sent["details"]["language"] == "kk"
    assert "Ok: queued as Q1" in sent["details"]["reply"]
    assert sent["details"]["subject"] == message["Subject"]
    assert sent["actor"] == "system" and sent["party_id"] == party["id"]
    [queued] = await log_entries(api, hearing["id"], "notification_queued")
    assert queued["details"]["notification_id"] == sent["details"]["notification_id"]
    [invited] = await log_entries(api, hearing["id"], "party_invited")
    assert invited["details"]["channel"] == "email"
    # The link itself is never written to the log.
    token = issued["url"].rsplit("/join/", 1)[1]
    assert all(token not in str(e) for e in await log_entries(api, hearing["id"]))

    # The party's row shows the delivery.
    listed = await api.call("GET", f"/api/v1/hearings/{hearing['id']}/parties", operator)
    [row] = listed.json["items"]
    assert row["delivery"]["status"] == "sent" and row["delivery"]["channel"] == "email"
    assert row["delivery"]["attempts"] == 1


async def test_refusing_server_is_logged_and_retried_until_it_accepts(
    start_api: StartApi, smtp: SmtpPeer
) -> None:
    smtp.drop.mode = "refuse"
    api = await start_api()
    operator = await api.who(StaffRole.OPERATOR)
    hearing = await api.schedule(operator)
    party = await api.add_party(operator, hearing["id"], language="ru")
    await issue_by(api, operator, hearing["id"], party["id"], "email", to="serik@example.kz")

    await wait_rows(api, lambda found: found and found[0].attempts >= 1 and found[0].status == "pending")
    smtp.drop.mode = "accept"
    [mail] = await smtp.drop.wait_for(1)
    assert "судебное заседание" in mail.message["Subject"]
    [row] = await wait_rows(api, lambda found: found[0].status == "sent")
    assert row.attempts >= 2 and row.last_error == ""

    failed = await log_entries(api, hearing["id"], "notification_failed")
    assert failed, "the refusal was not logged"
    first = failed[0]["details"]
    assert "550" in first["reason"] and "rejected by test policy" in first["reason"]
    assert first["retry_at"] is not None and first["gave_up"] is False and first["attempt"] == 1
    [sent] = await log_entries(api, hearing["id"], "notification_sent")
    assert sent["details"]["attempt"] == row.attempts
    # Every attempt rendered the same text: the refused one and the accepted one carry the same SHA-256.
    assert first["message_sha256"] == sent["details"]["message_sha256"]
    assert sent["details"]["message_sha256"] == hashlib.sha256(mail.text.encode()).hexdigest()


async def test_hanging_server_times_out_and_gives_up_after_the_last_attempt(start_api: StartApi) -> None:
    silent, port = await start_silent_server()
    try:
        api = await start_api(smtp_port=port, smtp_timeout_s=0.3, notify_max_attempts=2)
        operator = await api.who(StaffRole.OPERATOR)
        hearing = await api.schedule(operator)
        party = await api.add_party(operator, hearing["id"], contact="witness@example.kz")
        await issue_by(api, operator, hearing["id"], party["id"], "email")
        [row] = await wait_rows(api, lambda found: found[0].status == "failed")
    finally:
        silent.close()
    assert row.attempts == 2 and "did not answer" in row.last_error
    failed = await log_entries(api, hearing["id"], "notification_failed")
    assert [e["details"]["attempt"] for e in failed] == [1, 2]
    assert [e["details"]["gave_up"] for e in failed] == [False, True]
    assert failed[1]["details"]["retry_at"] is None
    listed = await api.call("GET", f"/api/v1/hearings/{hearing['id']}", operator)
    [shown] = listed.json["parties"]
    assert shown["delivery"]["status"] == "failed" and "did not answer" in shown["delivery"]["last_error"]


async def test_bad_addresses_and_unconfigured_channels_are_refused_and_write_nothing(
    start_api: StartApi,
) -> None:
    api = await start_api(sms_url="")
    operator = await api.who(StaffRole.OPERATOR)
    hearing = await api.schedule(operator)
    party = await api.add_party(operator, hearing["id"], contact="")
    path = f"/api/v1/hearings/{hearing['id']}/parties/{party['id']}/invitation"
    before = await api.counts()
    cases = [
        ({"channel": "email", "to": "not-an-address"}, 400, "invalid_email"),
        ({"channel": "email", "to": "a@b"}, 400, "invalid_email"),
        ({"channel": "email", "to": "x@example.kz\r\nBcc: all@example.kz"}, 400, "invalid_input"),
        ({"channel": "email"}, 400, "recipient_missing"),
        ({"channel": "sms", "to": "+77051234567"}, 409, "channel_not_configured"),
        ({"channel": "handover", "to": "a@example.kz"}, 400, "invalid_input"),
        ({"channel": "pigeon"}, 400, "invalid_input"),
    ]
    for body, status, code in cases:
        result = await api.call("POST", path, operator, json=body)
        assert (result.status, result.code) == (status, code), (body, result.json)
        assert result.json["error"]["message"]
    assert await api.counts() == before
    assert await rows(api) == []

    # A handed-over link (the default, an empty body) sends nothing.
    result = await api.call("POST", path, operator)
    assert result.status == 201 and result.json["channel"] == "handover" and result.json["delivery"] is None
    assert await rows(api) == []


async def test_a_queued_message_follows_the_partys_current_language(
    start_api: StartApi, smtp: SmtpPeer
) -> None:
    smtp.drop.mode = "refuse"  # the first attempt fails; the retry goes after the language changed
    api = await start_api(notify_retry_base_s=0.5)
    operator = await api.who(StaffRole.OPERATOR)
    hearing = await api.schedule(operator)
    party = await api.add_party(operator, hearing["id"], language="ru")
    await issue_by(api, operator, hearing["id"], party["id"], "email", to="p@example.kz")
    await wait_rows(api, lambda found: found[0].attempts == 1 and found[0].status == "pending")
    changed = await api.call(
        "PATCH", f"/api/v1/hearings/{hearing['id']}/parties/{party['id']}", operator, json={"language": "en"}
    )
    assert changed.status == 200
    smtp.drop.mode = "accept"
    [mail] = await smtp.drop.wait_for(1)
    assert mail.message["Content-Language"] == "en" and mail.text.startswith("Dear ")
    [row] = await wait_rows(api, lambda found: found[0].status == "sent")
    assert row.language == "en"
    [failed] = await log_entries(api, hearing["id"], "notification_failed")
    [sent] = await log_entries(api, hearing["id"], "notification_sent")
    assert failed["details"]["language"] == "ru" and sent["details"]["language"] == "en"
