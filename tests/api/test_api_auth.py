"""Staff login: cookie attributes, session fixation, logout, expiry, rate limiting, passwords."""

from __future__ import annotations

from datetime import timedelta
from http.cookies import SimpleCookie

from api_harness import PASSWORD, Api, MakeApi, Result

from hearing_server.auth.staff import SESSION_COOKIE
from hearing_server.domain.party import StaffRole


def session_cookie(result: Result) -> tuple[str, dict[str, str]]:
    """The hs_session value and attributes a response sets."""
    jar: SimpleCookie = SimpleCookie()
    for header in result.headers.getall("Set-Cookie", []):
        jar.load(header)
    morsel = jar[SESSION_COOKIE]
    return morsel.value, {k.lower(): str(v) for k, v in morsel.items() if v}


async def login(api: Api, username: str, password: str = PASSWORD, cookie: str | None = None) -> Result:
    headers = {"Cookie": f"{SESSION_COOKIE}={cookie}"} if cookie else None
    return await api.call(
        "POST", "/api/v1/auth/login", json={"username": username, "password": password}, headers=headers
    )


def me_headers(token: str) -> dict[str, str]:
    return {"Cookie": f"{SESSION_COOKIE}={token}"}


async def test_login_sets_a_hardened_cookie_and_me_returns_the_csrf_token(api: Api) -> None:
    user = await api.user(StaffRole.OPERATOR, "aigerim")
    result = await login(api, "Aigerim")  # usernames are case-insensitive at login
    assert result.status == 200, result.json
    token, attributes = session_cookie(result)
    assert attributes["httponly"] and attributes["secure"]
    assert attributes["samesite"] == "Strict" and attributes["path"] == "/"
    assert result.json["user"] == {
        "id": user.id,
        "username": "aigerim",
        "display_name": "",
        "role": "operator",
        "disabled": False,
        "created_at": result.json["user"]["created_at"],
    }
    me = await api.call("GET", "/api/v1/auth/me", headers=me_headers(token))
    assert me.status == 200
    assert me.json["csrf_token"] == result.json["csrf_token"] and me.json["user"]["id"] == user.id
    assert set(me.json) == {"user", "csrf_token", "expires_at", "must_change_password"}
    assert me.json["must_change_password"] is False
    assert "password_hash" not in me.body.decode() and "argon2" not in me.body.decode()


async def test_plain_http_cookie_is_not_secure(make_api: MakeApi) -> None:
    api = await make_api(plain_http=True)
    await api.user(StaffRole.JUDGE, "judge")
    _, attributes = session_cookie(await login(api, "judge"))
    assert "secure" not in attributes and attributes["httponly"]


async def test_a_new_session_id_at_every_login_and_logout_ends_it(api: Api) -> None:
    await api.user(StaffRole.OPERATOR, "op")
    # A cookie planted by someone else is not adopted.
    planted = "p" * 43
    first = await login(api, "op", cookie=planted)
    first_token, _ = session_cookie(first)
    assert first_token != planted
    assert (await api.call("GET", "/api/v1/auth/me", headers=me_headers(planted))).status == 401
    # Logging in again while logged in gives a new session and ends the old one.
    second = await login(api, "op", cookie=first_token)
    second_token, _ = session_cookie(second)
    assert second_token != first_token and second.json["csrf_token"] != first.json["csrf_token"]
    assert (await api.call("GET", "/api/v1/auth/me", headers=me_headers(first_token))).status == 401
    assert (await api.call("GET", "/api/v1/auth/me", headers=me_headers(second_token))).status == 200

    out = await api.call(
        "POST",
        "/api/v1/auth/logout",
        headers=me_headers(second_token) | {"X-CSRF-Token": second.json["csrf_token"]},
    )
    assert out.status == 204
    cleared, attributes = session_cookie(out)
    assert cleared == "" and attributes["max-age"] == "0"
    gone = await api.call("GET", "/api/v1/auth/me", headers=me_headers(second_token))
    assert (gone.status, gone.code) == (401, "not_authenticated")


async def test_wrong_passwords_unknown_and_disabled_accounts_look_the_same(api: Api) -> None:
    admin = await api.who(StaffRole.ADMIN)
    user = await api.user(StaffRole.JUDGE, "judge")
    disabled = await api.call("PATCH", f"/api/v1/users/{user.id}", admin, json={"disabled": True})
    assert disabled.status == 200
    for username, password in (("judge", PASSWORD), ("judge", "wrong password"), ("nobody", PASSWORD)):
        result = await login(api, username, password)
        assert (result.status, result.code) == (401, "invalid_credentials")
        assert result.json["error"]["message"] == "wrong username or password"
        assert "Set-Cookie" not in result.headers


async def test_expired_sessions_are_refused(api: Api) -> None:
    who = await api.session_for(await api.user(StaffRole.OPERATOR), lifetime=timedelta(seconds=-1))
    result = await api.call("GET", "/api/v1/auth/me", who)
    assert (result.status, result.code) == (401, "not_authenticated")


async def test_login_rate_limit_per_username_and_address(make_api: MakeApi) -> None:
    api = await make_api(login_attempts=3, login_window_s=60)
    await api.user(StaffRole.OPERATOR, "op")
    for _ in range(3):
        assert (await login(api, "op", "wrong password")).status == 401
    limited = await login(api, "op")  # even the right password waits now
    assert (limited.status, limited.code) == (429, "rate_limited")
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert "Set-Cookie" not in limited.headers
    # Another account from the same address still may try, until the address itself is limited (4x).
    await api.user(StaffRole.JUDGE, "judge")
    assert (await login(api, "judge")).status == 200
    for index in range(9):
        assert (await login(api, f"guess{index}", "x")).status == 401
    assert (await login(api, "judge")).status == 429


async def test_change_own_password_keeps_this_session_and_ends_others(api: Api) -> None:
    user = await api.user(StaffRole.JUDGE, "judge")
    here = await api.session_for(user)
    elsewhere = await api.session_for(user)
    wrong = await api.call(
        "POST",
        "/api/v1/auth/password",
        here,
        json={"current_password": "not it", "new_password": "a much newer password"},
    )
    assert (wrong.status, wrong.code) == (400, "wrong_password")
    short = await api.call(
        "POST", "/api/v1/auth/password", here, json={"current_password": PASSWORD, "new_password": "short"}
    )
    assert (short.status, short.code) == (400, "invalid_input")
    changed = await api.call(
        "POST",
        "/api/v1/auth/password",
        here,
        json={"current_password": PASSWORD, "new_password": "a much newer password"},
    )
    assert changed.status == 204
    assert (await api.call("GET", "/api/v1/auth/me", here)).status == 200
    assert (await api.call("GET", "/api/v1/auth/me", elsewhere)).status == 401
    assert (await login(api, "judge")).status == 401
    assert (await login(api, "judge", "a much newer password")).status == 200


async def test_passwords_are_taken_exactly_as_typed(api: Api) -> None:
    await api.user(StaffRole.JUDGE, "judge", password="  spaced out password  ")
    assert (await login(api, "judge", "  spaced out password  ")).status == 200
    assert (await login(api, "judge", "spaced out password")).status == 401


async def test_the_login_page_drops_a_next_that_could_leave_the_site(api: Api) -> None:
    from urllib.parse import quote

    from yarl import URL

    hostile = ["/\\evil.example", "//evil.example", "/\t/evil.example", "https://evil.example", "evil.x"]
    for value in hostile:
        url = URL("/login?next=" + quote(value, safe=""), encoded=True)
        async with api.client.get(url, allow_redirects=False) as response:
            assert response.status == 302, value
            assert response.headers["Location"] == "/login", value
    twice = URL("/login?next=%2F&next=%2F%2Fevil", encoded=True)
    async with api.client.get(twice, allow_redirects=False) as r:
        assert (r.status, r.headers["Location"]) == (302, "/login")  # two answers: none is trusted
    for value in ("/console/", "/console/hearing/abc?x=1"):
        async with api.client.get("/login", params={"next": value}, allow_redirects=False) as response:
            assert response.status == 200, value
            assert response.headers["Cache-Control"] == "no-store"
    async with api.client.get("/console/hearing/abc", allow_redirects=False) as response:
        # the redirect to the login page itself always carries a path of this site
        assert response.status == 302 and response.headers["Location"].startswith("/login?next=/console/")


async def test_answers_that_carry_secrets_are_never_cached(api: Api) -> None:
    operator = await api.user(StaffRole.OPERATOR, "op")
    logged_in = await login(api, "op")
    assert logged_in.status == 200 and logged_in.json["csrf_token"]
    assert logged_in.headers["Cache-Control"] == "no-store"
    token, _ = session_cookie(logged_in)
    me = await api.call("GET", "/api/v1/auth/me", headers=me_headers(token))
    assert me.json["csrf_token"] and me.headers["Cache-Control"] == "no-store"
    who = await api.session_for(operator)
    hearing = await api.schedule(who)
    party = await api.add_party(who, hearing["id"])
    issued = await api.call("POST", f"/api/v1/hearings/{hearing['id']}/parties/{party['id']}/invitation", who)
    assert issued.status == 201 and "/join/" in issued.json["url"] and issued.json["qr"]["png"]
    assert issued.headers["Cache-Control"] == "no-store"


async def test_wrong_current_passwords_are_rate_limited_like_logins(make_api: MakeApi) -> None:
    api = await make_api(login_attempts=3, login_window_s=60)
    user = await api.user(StaffRole.JUDGE, "judge")
    thief = await api.session_for(user)  # a stolen session guessing the password
    change = {"current_password": "guess", "new_password": "a much newer password"}
    for _ in range(3):
        wrong = await api.call("POST", "/api/v1/auth/password", thief, json=change)
        assert (wrong.status, wrong.code) == (400, "wrong_password")
    limited = await api.call(
        "POST", "/api/v1/auth/password", thief, json={**change, "current_password": PASSWORD}
    )
    assert (limited.status, limited.code) == (429, "rate_limited")  # even the right one waits now
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert (await login(api, "judge")).status == 429  # one counter: the login is no way around it
    assert (await login(api, "judge", "a much newer password")).status == 429
