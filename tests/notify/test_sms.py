"""Invitations by SMS through an HTTP gateway (a small aiohttp app on 127.0.0.1): the body template, the
auth header, and the gateway's failures — HTTP 500, a non-JSON answer, no answer — logged and retried."""

from __future__ import annotations

import hashlib

import pytest
from notify_harness import StartApi, issue_by, log_entries, rows, wait_rows
from notify_peers import SmsGateway

from hearing_server.domain.party import StaffRole


async def test_sms_in_russian_reaches_the_gateway_with_template_and_auth(
    start_api: StartApi, gateway: SmsGateway
) -> None:
    api = await start_api()
    operator = await api.who(StaffRole.OPERATOR)
    hearing = await api.schedule(operator, case_number="2-88/2026")
    party = await api.add_party(operator, hearing["id"], language="ru", contact="8 (705) 123-45-67")
    issued = await issue_by(api, operator, hearing["id"], party["id"], "sms")
    assert issued["recipient"] == "+77051234567"

    [body] = await gateway.wait_for(1)
    assert set(body) == {"to", "text", "sender"}
    assert body["to"] == "+77051234567" and body["sender"] == "SUD"
    assert gateway.requests[0]["headers"]["Authorization"] == "Bearer test-key"
    text = body["text"]
    assert text.startswith("Алматы қаласының") and "заседание по делу № 2-88/2026" in text
    assert text.endswith(issued["url"])

    [row] = await wait_rows(api, lambda found: found[0].status == "sent")
    assert row.message_sha256 == hashlib.sha256(text.encode()).hexdigest()
    [sent] = await log_entries(api, hearing["id"], "notification_sent")
    assert sent["details"]["message_sha256"] == row.message_sha256
    assert sent["details"]["message_id"] == "sms-1" and sent["details"]["reply"].startswith("HTTP 200")
    assert "subject" not in sent["details"]


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("500", "SMS gateway answered HTTP 500: internal error"),
        ("garbage", "SMS gateway answered HTTP 200 but not JSON: '<html>gateway maintenance</html>'"),
        ("slow", "SMS gateway did not answer in 1 s"),
    ],
)
async def test_gateway_failure_is_logged_and_retried(
    start_api: StartApi, gateway: SmsGateway, mode: str, reason: str
) -> None:
    gateway.modes = [mode]
    api = await start_api()
    operator = await api.who(StaffRole.OPERATOR)
    hearing = await api.schedule(operator)
    party = await api.add_party(operator, hearing["id"], language="kk")
    await issue_by(api, operator, hearing["id"], party["id"], "sms", to="+7 701 000 11 22")

    [row] = await wait_rows(api, lambda found: found[0].status == "sent")
    assert row.attempts == 2
    assert len(gateway.requests) == 2 and len(gateway.accepted) == 1
    # Both attempts carried the same text.
    assert gateway.requests[0]["body"] == gateway.requests[1]["body"]
    [failed] = await log_entries(api, hearing["id"], "notification_failed")
    assert failed["details"]["reason"] == reason
    assert failed["details"]["attempt"] == 1 and failed["details"]["retry_at"] is not None
    [sent] = await log_entries(api, hearing["id"], "notification_sent")
    assert sent["details"]["attempt"] == 2
    assert failed["details"]["message_sha256"] == sent["details"]["message_sha256"]
    assert (
        sent["details"]["message_sha256"] == hashlib.sha256(gateway.accepted[0]["text"].encode()).hexdigest()
    )


@pytest.mark.parametrize("phone", ["12345", "+7 705 abc", "+0123456789", "77051234567", "+7705123456789012"])
async def test_malformed_phone_numbers_are_refused(start_api: StartApi, phone: str) -> None:
    api = await start_api()
    operator = await api.who(StaffRole.OPERATOR)
    hearing = await api.schedule(operator)
    party = await api.add_party(operator, hearing["id"])
    before = await api.counts()
    result = await api.call(
        "POST",
        f"/api/v1/hearings/{hearing['id']}/parties/{party['id']}/invitation",
        operator,
        json={"channel": "sms", "to": phone},
    )
    assert (result.status, result.code) == (400, "invalid_phone")
    assert "international form" in result.json["error"]["message"]
    assert await api.counts() == before and await rows(api) == []
