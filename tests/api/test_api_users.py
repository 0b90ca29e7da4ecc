"""Staff accounts managed by admins through the API."""

from __future__ import annotations

from api_harness import Api

from hearing_server.domain.party import StaffRole


async def login(api: Api, username: str, password: str) -> int:
    result = await api.call("POST", "/api/v1/auth/login", json={"username": username, "password": password})
    return result.status


async def test_admin_creates_changes_and_disables_accounts(api: Api) -> None:
    admin = await api.who(StaffRole.ADMIN)
    created = await api.call(
        "POST",
        "/api/v1/users",
        admin,
        json={
            "username": "clerk.1",
            "role": "operator",
            "password": "first password!",
            "display_name": "Clerk",
        },
    )
    assert created.status == 201, created.json
    assert created.json["role"] == "operator" and "password" not in created.json
    assert await login(api, "clerk.1", "first password!") == 200
    clerk = await api.session_for(await api.get_user(created.json["id"]))

    listed = await api.call("GET", "/api/v1/users", admin)
    assert {u["username"] for u in listed.json["items"]} == {admin.username, "clerk.1"}

    path = f"/api/v1/users/{created.json['id']}"
    promoted = await api.call("PATCH", path, admin, json={"role": "judge"})
    assert promoted.json["role"] == "judge"
    assert (await api.call("GET", "/api/v1/auth/me", clerk)).status == 401  # a role change ends sessions
    reset = await api.call("PATCH", path, admin, json={"password": "second password!"})
    assert reset.status == 200
    assert await login(api, "clerk.1", "first password!") == 401
    assert await login(api, "clerk.1", "second password!") == 200
    disabled = await api.call("PATCH", path, admin, json={"disabled": True})
    assert disabled.json["disabled"] is True
    assert await login(api, "clerk.1", "second password!") == 401


async def test_the_last_enabled_admin_stays(api: Api) -> None:
    admin = await api.who(StaffRole.ADMIN)
    path = f"/api/v1/users/{admin.user_id}"
    for change in ({"role": "operator"}, {"disabled": True}):
        refused = await api.call("PATCH", path, admin, json=change)
        assert (refused.status, refused.code) == (409, "last_admin")
    second = await api.user(StaffRole.ADMIN)
    demoted = await api.call("PATCH", f"/api/v1/users/{second.id}", admin, json={"role": "archivist"})
    assert demoted.status == 200
    other = await api.user(StaffRole.ADMIN)
    assert (await api.call("PATCH", path, admin, json={"role": "operator"})).status == 200
    assert (
        await api.call(
            "PATCH", f"/api/v1/users/{other.id}", await api.session_for(other), json={"disabled": True}
        )
    ).code == "last_admin"
