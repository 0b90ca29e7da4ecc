"""Bad input gets a 4xx with a code and a message, and leaves no row behind."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from api_harness import Api, MakeApi, Result, future_start

from hearing_server.domain.party import StaffRole
from hearing_server.store.models import Hearing

START = future_start(days=2)


def check(result: Result, status: int, code: str, label: str, failures: list[str]) -> None:
    message = result.json.get("error", {}).get("message") if isinstance(result.json, dict) else None
    if (result.status, result.code) != (status, code) or not message:
        failures.append(f"{label}: expected {status} {code}, got {result.status} {result.json}")


async def test_bad_hearing_bodies(api: Api) -> None:
    operator = await api.who(StaffRole.OPERATOR)
    existing = await api.schedule(operator, case_number="2-100/2026", scheduled_start=START.isoformat())
    before = await api.counts()
    cases: list[tuple[str, dict[str, Any] | None, bytes | None, int, str, str | None]] = [
        # label, JSON body (or raw bytes), status, code, pydantic error type
        ("unknown field", api.hearing_body(judge_mood="good"), None, 400, "invalid_input", "extra_forbidden"),
        ("wrong type", api.hearing_body(duration_minutes="60"), None, 400, "invalid_input", "int_type"),
        ("number as text", api.hearing_body(case_number=123), None, 400, "invalid_input", "string_type"),
        (
            "naive datetime",
            api.hearing_body(scheduled_start="2030-01-01T10:00:00"),
            None,
            400,
            "invalid_input",
            "timezone_aware",
        ),
        (
            "impossible date",
            api.hearing_body(scheduled_start="2030-02-30T10:00:00Z"),
            None,
            400,
            "invalid_input",
            "datetime_parsing",
        ),
        (
            "zero duration",
            api.hearing_body(duration_minutes=0),
            None,
            400,
            "invalid_input",
            "greater_than_equal",
        ),
        (
            "negative duration",
            api.hearing_body(duration_minutes=-30),
            None,
            400,
            "invalid_input",
            "greater_than_equal",
        ),
        (
            "longer than a day",
            api.hearing_body(duration_minutes=24 * 60 + 1),
            None,
            400,
            "invalid_input",
            "less_than_equal",
        ),
        (
            "both duration and end",
            api.hearing_body(scheduled_end=(START + timedelta(hours=1)).isoformat()),
            None,
            400,
            "invalid_input",
            "value_error",
        ),
        (
            "unknown notice language",
            api.hearing_body(notice_language="de"),
            None,
            400,
            "invalid_input",
            "literal_error",
        ),
        ("empty title", api.hearing_body(title="  "), None, 400, "invalid_input", "string_too_short"),
        ("control characters", api.hearing_body(title="a\x00b"), None, 400, "invalid_input", "value_error"),
        (
            "missing field",
            {k: v for k, v in api.hearing_body().items() if k != "courtroom"},
            None,
            400,
            "invalid_input",
            "missing",
        ),
        ("not an object", None, b"[1, 2]", 400, "invalid_input", "model_type"),
        ("not JSON", None, b"{'case_number': ", 400, "invalid_json", None),
        ("empty body", None, b"", 400, "invalid_input", "missing"),
    ]
    end_first = api.hearing_body(
        scheduled_start=START.isoformat(), scheduled_end=(START - timedelta(minutes=1)).isoformat()
    )
    del end_first["duration_minutes"]
    past = api.hearing_body(scheduled_start=(datetime.now(UTC) - timedelta(days=1)).isoformat())
    failures: list[str] = []
    for label, body, raw, status, code, error_type in cases:
        if raw is not None:
            result = await api.call(
                "POST", "/api/v1/hearings", operator, data=raw, headers={"Content-Type": "application/json"}
            )
        else:
            result = await api.call("POST", "/api/v1/hearings", operator, json=body)
        check(result, status, code, label, failures)
        if error_type is not None and result.status == 400:
            types = [f["type"] for f in result.json["error"].get("fields", [])]
            if error_type not in types:
                failures.append(f"{label}: expected error type {error_type}, got {types}")
    semantic = [
        ("end before start", end_first, 400, "end_before_start"),
        ("start in the past", past, 400, "start_in_past"),
        ("another court", api.hearing_body(court="Supreme Court"), 403, "other_court"),
        (
            "overlapping duplicate",
            api.hearing_body(
                case_number="2-100/2026", scheduled_start=(START + timedelta(minutes=30)).isoformat()
            ),
            409,
            "duplicate_hearing",
        ),
    ]
    for label, body, status, code in semantic:
        check(await api.call("POST", "/api/v1/hearings", operator, json=body), status, code, label, failures)
    form = await api.call(
        "POST",
        "/api/v1/hearings",
        operator,
        data="case_number=1",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    check(form, 415, "unsupported_media_type", "form body", failures)
    huge = await api.call("POST", "/api/v1/hearings", operator, json=api.hearing_body(title="x" * 70_000))
    check(huge, 413, "too_large", "oversized body", failures)
    assert not failures, "\n".join(failures)
    assert await api.counts() == before

    # The same case at a time that does not overlap, or after the first hearing was cancelled, is fine.
    later = await api.call(
        "POST",
        "/api/v1/hearings",
        operator,
        json=api.hearing_body(
            case_number="2-100/2026", scheduled_start=(START + timedelta(hours=1)).isoformat()
        ),
    )
    assert later.status == 201
    await api.call("POST", f"/api/v1/hearings/{existing['id']}/cancel", operator)
    again = await api.call(
        "POST",
        "/api/v1/hearings",
        operator,
        json=api.hearing_body(case_number="2-100/2026", scheduled_start=START.isoformat()),
    )
    assert again.status == 201, again.json


async def test_bad_ids_and_other_courts_hearings(api: Api) -> None:
    operator = await api.who(StaffRole.OPERATOR)
    hearing = await api.schedule(operator)
    party = await api.add_party(operator, hearing["id"])
    other_hearing = await api.schedule(operator)
    now = datetime.now(UTC)
    async with api.db() as db, db.begin():
        foreign = Hearing(
            court="Another District Court",
            courtroom="1",
            case_number="9-1/2026",
            title="Theirs",
            scheduled_start=START,
            duration_minutes=30,
            presiding_judge="X",
            notice_language="kk",
            status="scheduled",
            created_at=now,
            updated_at=now,
            legal_hold=False,
        )
        db.add(foreign)
    before = await api.counts()
    failures: list[str] = []
    base = "/api/v1/hearings"
    for label, method, path, body, code in [
        ("not a uuid", "GET", f"{base}/not-a-uuid", None, "hearing_not_found"),
        ("uuid in upper case", "GET", f"{base}/{hearing['id'].upper()}", None, "hearing_not_found"),
        ("unknown hearing", "GET", f"{base}/{uuid.uuid4()}", None, "hearing_not_found"),
        ("another court's hearing", "GET", f"{base}/{foreign.id}", None, "hearing_not_found"),
        (
            "change another court's hearing",
            "PATCH",
            f"{base}/{foreign.id}",
            {"title": "Mine"},
            "hearing_not_found",
        ),
        (
            "party of another court",
            "POST",
            f"{base}/{foreign.id}/parties",
            {"role": "witness", "display_name": "W"},
            "hearing_not_found",
        ),
        (
            "party of another hearing",
            "GET",
            f"{base}/{other_hearing['id']}/parties/{party['id']}",
            None,
            "party_not_found",
        ),
        ("bad party id", "DELETE", f"{base}/{hearing['id']}/parties/42", None, "party_not_found"),
        (
            "link for a party of another hearing",
            "POST",
            f"{base}/{other_hearing['id']}/parties/{party['id']}/invitation",
            None,
            "party_not_found",
        ),
        ("unknown path", "GET", "/api/v1/nothing-here", None, "not_found"),
    ]:
        check(await api.call(method, path, operator, json=body), 404, code, label, failures)
    wrong_method = await api.call("PUT", f"{base}/{hearing['id']}", operator, json={})
    check(wrong_method, 405, "method_not_allowed", "PUT", failures)
    assert "PATCH" in wrong_method.headers.get("Allow", "")
    listed = await api.call("GET", base, operator)
    assert foreign.id not in {h["id"] for h in listed.json["items"]}
    other_court = await api.call("GET", base + "?court=Another%20District%20Court", operator)
    assert other_court.json["total"] == 0
    assert not failures, "\n".join(failures)
    assert await api.counts() == before


async def test_bad_party_and_user_bodies(api: Api) -> None:
    operator = await api.who(StaffRole.OPERATOR)
    admin = await api.who(StaffRole.ADMIN)
    hearing = await api.schedule(operator)
    await api.add_party(operator, hearing["id"], role="courtroom", display_name="Room 4")
    parties = f"/api/v1/hearings/{hearing['id']}/parties"
    before = await api.counts()
    failures: list[str] = []
    for label, path, who, body, status, code in [
        (
            "unknown party role",
            parties,
            operator,
            {"role": "king", "display_name": "K"},
            400,
            "invalid_input",
        ),
        (
            "party language",
            parties,
            operator,
            {"role": "witness", "display_name": "W", "language": "fr"},
            400,
            "invalid_input",
        ),
        (
            "unknown party field",
            parties,
            operator,
            {"role": "witness", "display_name": "W", "x": 1},
            400,
            "invalid_input",
        ),
        (
            "second courtroom",
            parties,
            operator,
            {"role": "courtroom", "display_name": "Room 5"},
            409,
            "courtroom_exists",
        ),
        (
            "unknown staff role",
            "/api/v1/users",
            admin,
            {"username": "clerk", "role": "clerk", "password": "long enough password"},
            400,
            "invalid_input",
        ),
        (
            "short password",
            "/api/v1/users",
            admin,
            {"username": "clerk", "role": "judge", "password": "short"},
            400,
            "invalid_input",
        ),
        (
            "bad username",
            "/api/v1/users",
            admin,
            {"username": "Robert'); DROP", "role": "judge", "password": "long enough password"},
            400,
            "invalid_input",
        ),
        (
            "taken username",
            "/api/v1/users",
            admin,
            {"username": admin.username, "role": "judge", "password": "long enough password"},
            409,
            "username_taken",
        ),
        ("bad query", "/api/v1/hearings?limit=0", operator, None, 400, "invalid_input"),
        ("unknown query parameter", "/api/v1/hearings?sort=evil", operator, None, 400, "invalid_input"),
        (
            "reversed dates",
            "/api/v1/hearings?date_from=2030-02-01&date_to=2030-01-01",
            operator,
            None,
            400,
            "end_before_start",
        ),
        (
            "repeated parameter",
            "/api/v1/hearings?status=scheduled&status=open",
            operator,
            None,
            400,
            "invalid_input",
        ),
    ]:
        method = "GET" if body is None else "POST"
        check(await api.call(method, path, who, json=body), status, code, label, failures)
    for label, body in [
        ("empty patch", {}),
        ("null field", {"title": None}),
        ("end before start", {"scheduled_end": "2000-01-01T00:00:00Z"}),
        ("moved into the past", {"scheduled_start": "2001-01-01T00:00:00Z"}),
    ]:
        result = await api.call("PATCH", f"/api/v1/hearings/{hearing['id']}", operator, json=body)
        expected = {"end before start": "end_before_start", "moved into the past": "start_in_past"}
        check(result, 400, expected.get(label, "invalid_input"), f"hearing {label}", failures)
    assert not failures, "\n".join(failures)
    assert await api.counts() == before


async def test_limits_follow_configuration(make_api: MakeApi) -> None:
    api = await make_api(max_body_bytes=2048)
    operator = await api.who(StaffRole.OPERATOR)
    result = await api.call("POST", "/api/v1/hearings", operator, json=api.hearing_body(title="y" * 3000))
    assert (result.status, result.code) == (413, "too_large")
    assert "2048" in result.json["error"]["message"]
