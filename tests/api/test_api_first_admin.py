"""The first admin's one-time password: it expires, and until it is replaced by the admin's own password
nothing works but changing it, "who am I" and logging out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from http.cookies import SimpleCookie

from api_harness import Api, Result

from hearing_server.auth.passwords import PASSWORDS
from hearing_server.auth.staff import CSRF_HEADER, SESSION_COOKIE
from hearing_server.bootstrap import FIRST_ADMIN, ensure_first_admin
from hearing_server.store.models import User

NEW_PASSWORD = "the admin's very own password"


async def _first_admin(
    api: Api, lifetime: timedelta = timedelta(hours=24), now: datetime | None = None
) -> str:
    async with api.db() as db, db.begin():
        password = await ensure_first_admin(db, api.app[PASSWORDS], now or datetime.now(UTC), lifetime)
    assert password is not None
    return password


async def _login(api: Api, password: str) -> Result:
    return await api.call("POST", "/api/v1/auth/login", json={"username": FIRST_ADMIN, "password": password})


def _headers(result: Result) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    for header in result.headers.getall("Set-Cookie", []):
        jar.load(header)
    return {"Cookie": f"{SESSION_COOKIE}={jar[SESSION_COOKIE].value}", CSRF_HEADER: result.json["csrf_token"]}


async def _admin(api: Api) -> User:
    async with api.db() as db:
        from sqlalchemy import select

        return (await db.execute(select(User).where(User.username == FIRST_ADMIN))).scalar_one()


async def test_nothing_but_a_password_change_until_the_one_time_password_is_replaced(api: Api) -> None:
    password = await _first_admin(api)
    logged_in = await _login(api, password)
    assert logged_in.status == 200 and logged_in.json["must_change_password"] is True
    headers = _headers(logged_in)
    for method, path, body in [
        ("GET", "/api/v1/hearings", None),
        ("GET", "/api/v1/users", None),
        ("POST", "/api/v1/users", {"username": "x1", "role": "admin", "password": "a long password"}),
        ("GET", "/api/v1/archive/hearings", None),
    ]:
        refused = await api.call(method, path, json=body, headers=headers)
        assert (refused.status, refused.code) == (403, "password_change_required"), (path, refused.json)
    me = await api.call("GET", "/api/v1/auth/me", headers=headers)
    assert me.status == 200 and me.json["must_change_password"] is True
    same = await api.call(
        "POST",
        "/api/v1/auth/password",
        headers=headers,
        json={"current_password": password, "new_password": password},
    )
    assert (same.status, same.code) == (400, "password_unchanged")
    changed = await api.call(
        "POST",
        "/api/v1/auth/password",
        headers=headers,
        json={"current_password": password, "new_password": NEW_PASSWORD},
    )
    assert changed.status == 204
    assert (await api.call("GET", "/api/v1/auth/me", headers=headers)).json["must_change_password"] is False
    users = await api.call("GET", "/api/v1/users", headers=headers)
    assert users.status == 200 and [u["username"] for u in users.json["items"]] == [FIRST_ADMIN]
    admin = await _admin(api)
    assert admin.must_change_password is False and admin.password_expires_at is None
    assert (await _login(api, password)).status == 401
    assert (await _login(api, NEW_PASSWORD)).json["must_change_password"] is False
    # no second one-time password once the admin has their own
    async with api.db() as db, db.begin():
        assert await ensure_first_admin(db, api.app[PASSWORDS], datetime.now(UTC) + timedelta(days=9)) is None


async def test_logout_works_before_the_change(api: Api) -> None:
    headers = _headers(await _login(api, await _first_admin(api)))
    assert (await api.call("POST", "/api/v1/auth/logout", headers=headers)).status == 204
    assert (await api.call("GET", "/api/v1/auth/me", headers=headers)).status == 401


async def test_the_one_time_password_expires_and_the_next_start_issues_another(api: Api) -> None:
    issued_at = datetime.now(UTC) - timedelta(hours=25)
    old = await _first_admin(api, timedelta(hours=24), now=issued_at)
    expired = await _login(api, old)
    assert (expired.status, expired.code) == (401, "password_expired")
    wrong = await _login(api, "not the password at all")
    assert (wrong.status, wrong.code) == (401, "invalid_credentials")  # the expiry is no hint to guessers
    async with api.db() as db, db.begin():  # what the next start does
        renewed = await ensure_first_admin(db, api.app[PASSWORDS], datetime.now(UTC), timedelta(hours=24))
    assert renewed is not None and renewed != old
    assert (await _login(api, old)).code == "invalid_credentials"
    fresh = await _login(api, renewed)
    assert fresh.status == 200 and fresh.json["must_change_password"] is True
    admin = await _admin(api)
    assert admin.password_expires_at is not None
    assert timedelta(hours=23) < admin.password_expires_at - datetime.now(UTC) <= timedelta(hours=24)


async def test_an_unexpired_one_time_password_is_not_renewed(api: Api) -> None:
    await _first_admin(api)
    async with api.db() as db, db.begin():
        assert await ensure_first_admin(db, api.app[PASSWORDS], datetime.now(UTC)) is None
