"""The role x endpoint access matrix from the route table: every endpoint, every role, and anonymous."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web
from api_harness import Api

from hearing_server.api.registry import ROUTES, RouteTable
from hearing_server.api.routes import API_MODULES
from hearing_server.auth.tokens import new_token
from hearing_server.config import Config
from hearing_server.domain.party import StaffRole
from hearing_server.web.app import create_app

# The policy, written out once more by hand (role names, not the code's constants): a change to an
# endpoint's access must be made here too.
PUBLIC_ = "public"
STAFF = "admin operator judge archivist"
MANAGERS = "admin operator"
READERS = "admin operator judge"
ADMIN = "admin"
ACT_SIGNERS = "admin judge"
# The signaling socket checks Origin before the upgrade and authenticates its first message (token or staff
# session); its per-command access matrix is tested in tests/signaling/test_signaling_guards.py.
SELF_AUTHENTICATING = {("GET", "/ws")}
EXPECTED: dict[tuple[str, str], str] = {
    ("GET", "/healthz"): PUBLIC_,
    ("GET", "/readyz"): PUBLIC_,
    ("GET", "/metrics"): PUBLIC_,
    ("GET", "/api/v1/openapi.json"): PUBLIC_,
    ("POST", "/api/v1/auth/login"): PUBLIC_,
    ("POST", "/api/v1/auth/logout"): STAFF,
    ("GET", "/api/v1/auth/me"): STAFF,
    ("POST", "/api/v1/auth/password"): STAFF,
    ("POST", "/api/v1/hearings"): MANAGERS,
    ("GET", "/api/v1/hearings"): READERS,
    ("GET", "/api/v1/hearings/{hearing_id}"): READERS,
    ("PATCH", "/api/v1/hearings/{hearing_id}"): MANAGERS,
    ("POST", "/api/v1/hearings/{hearing_id}/cancel"): MANAGERS,
    ("GET", "/api/v1/staff"): READERS,
    ("POST", "/api/v1/hearings/{hearing_id}/parties"): MANAGERS,
    ("GET", "/api/v1/hearings/{hearing_id}/parties"): READERS,
    ("GET", "/api/v1/hearings/{hearing_id}/parties/{party_id}"): READERS,
    ("PATCH", "/api/v1/hearings/{hearing_id}/parties/{party_id}"): MANAGERS,
    ("DELETE", "/api/v1/hearings/{hearing_id}/parties/{party_id}"): MANAGERS,
    ("POST", "/api/v1/hearings/{hearing_id}/parties/{party_id}/invitation"): MANAGERS,
    ("GET", "/api/v1/hearings/{hearing_id}/parties/{party_id}/invitation"): READERS,
    ("DELETE", "/api/v1/hearings/{hearing_id}/parties/{party_id}/invitation"): MANAGERS,
    ("GET", "/api/v1/users"): ADMIN,
    ("POST", "/api/v1/users"): ADMIN,
    ("GET", "/api/v1/cluster/nodes"): ADMIN,
    ("PATCH", "/api/v1/users/{user_id}"): ADMIN,
    # A judge manages only their own key (checked by the handler, tests/acts/test_judge_keys.py).
    ("PUT", "/api/v1/users/{user_id}/signing-key"): ACT_SIGNERS,
    ("GET", "/api/v1/users/{user_id}/signing-key"): ACT_SIGNERS,
    ("DELETE", "/api/v1/users/{user_id}/signing-key"): ACT_SIGNERS,
    ("GET", "/api/v1/hearings/{hearing_id}/events"): READERS,
    ("GET", "/api/v1/hearings/{hearing_id}/record"): READERS,
    ("POST", "/api/v1/hearings/{hearing_id}/seal"): MANAGERS,
    ("POST", "/api/v1/hearings/{hearing_id}/acts"): ACT_SIGNERS,
    ("GET", "/api/v1/hearings/{hearing_id}/acts"): READERS,
    ("GET", "/api/v1/hearings/{hearing_id}/acts/{act_id}/pdf"): READERS,
    # A party's own link is the credential (checked by the handler, tests/acts).
    ("GET", "/api/v1/join/{token}/acts"): PUBLIC_,
    ("GET", "/api/v1/join/{token}/acts/{act_id}/pdf"): PUBLIC_,
}


def expected_roles(method: str, path: str) -> set[str] | None:
    """The roles that may call, from the hand-written policy (None: public)."""
    roles = EXPECTED[(method, path)]
    return None if roles == PUBLIC_ else set(roles.split())


DENIED_CODES = {"not_authenticated", "forbidden", "csrf_failed"}


def undeclared_routes(app: web.Application) -> list[str]:
    """Routes the router serves that the route table does not declare (and so have no declared access)."""
    table: RouteTable = app[ROUTES]
    declared = {(ep.method, ep.path) for ep in table.endpoints}
    static = {folder.prefix.rstrip("/") for folder in table.static_folders}
    missing = []
    for resource in app.router.resources():
        if isinstance(resource, web.StaticResource):
            if resource.canonical.rstrip("/") not in static:
                missing.append(f"static {resource.canonical}")
            continue
        for route in resource:
            if route.method == "HEAD":
                continue
            if (route.method, resource.canonical) not in declared:
                missing.append(f"{route.method} {resource.canonical}")
    return missing


def test_every_route_is_declared_with_its_access(config: Config) -> None:
    app = create_app(config)
    assert undeclared_routes(app) == []
    table = app[ROUTES]
    # Endpoints of the core API must be in the hand-written policy; others (pages, archive, WebSocket) are
    # held to their declared access by the matrix below.
    core = {ep.key for module in API_MODULES for ep in module.ENDPOINTS}
    assert core == set(EXPECTED), f"not in the expected policy: {core ^ set(EXPECTED)}"
    for key in EXPECTED:
        found = table.find(*key)
        assert found is not None, f"{key} is missing"
        declared = None if found.access.public else {role.value for role in found.access.roles}
        assert declared == expected_roles(*key), f"{key}: declared {found.access.describe()}"


def test_a_route_added_behind_the_tables_back_is_caught(config: Config) -> None:
    app = create_app(config)

    async def rogue(request: web.Request) -> web.Response:
        return web.Response(text="no access declared")

    app.router.add_post("/api/v1/rogue", rogue)
    assert undeclared_routes(app) == ["POST /api/v1/rogue"]


async def test_access_matrix(api: Api) -> None:
    operator = await api.who(StaffRole.OPERATOR)
    hearing = await api.schedule(operator)
    party = await api.add_party(operator, hearing["id"])
    await api.issue(operator, hearing["id"], party["id"])
    users = {role: await api.user(role) for role in StaffRole}
    ids = {"hearing_id": hearing["id"], "party_id": party["id"], "user_id": users[StaffRole.JUDGE].id}

    failures: list[str] = []
    checked = 0
    endpoints = [ep for ep in api.app[ROUTES].endpoints if ep.key not in SELF_AUTHENTICATING]
    for ep in endpoints:
        # Path parameters this test does not know (a page's link token, say) get a well-formed unknown value.
        path = re.sub(r"{(\w+)}", lambda m: ids.get(m.group(1), new_token()), ep.path)
        allowed = (
            expected_roles(*ep.key)
            if ep.key in EXPECTED
            else (None if ep.access.public else {r.value for r in ep.access.roles})
        )
        for role in [None, *StaffRole]:
            # A fresh session per call: logout or a password change may end the previous one.
            who = await api.session_for(users[role]) if role is not None else None
            body: dict[str, Any] = {}
            result = await api.call(ep.method, path, who, json=body if ep.method != "GET" else None)
            checked += 1
            caller = role.value if role else "anonymous"
            code = result.code
            if ep.method == "HEAD" and code is None:
                # A HEAD response has no body: its status alone must say why it was refused.
                code = {401: "not_authenticated", 403: "forbidden"}.get(result.status)
            label = f"{ep.method} {ep.path} as {caller}: {result.status} {code}"
            if allowed is None:
                if code in DENIED_CODES or result.status in (401, 403):
                    failures.append(label + " (public, refused)")
            elif role is None:
                if (result.status, code) != (401, "not_authenticated"):
                    failures.append(label + " (anonymous, expected 401)")
            elif role.value in allowed:
                if result.status in (401, 403) or code in DENIED_CODES:
                    failures.append(label + " (allowed, refused)")
            elif (result.status, code) != (403, "forbidden"):
                failures.append(label + " (not allowed, expected 403)")
    assert not failures, "\n".join(failures)
    assert checked == len(endpoints) * 5


async def test_writes_need_the_csrf_token_reads_do_not(api: Api) -> None:
    operator = await api.who(StaffRole.OPERATOR)
    body = api.hearing_body()
    before = await api.counts()
    missing = await api.call("POST", "/api/v1/hearings", operator, json=body, csrf=False)
    wrong = await api.call(
        "POST", "/api/v1/hearings", operator, json=body, csrf=False, headers={"X-CSRF-Token": "x" * 43}
    )
    assert (missing.status, missing.code) == (403, "csrf_failed")
    assert (wrong.status, wrong.code) == (403, "csrf_failed")
    assert await api.counts() == before
    read = await api.call("GET", "/api/v1/hearings", operator, csrf=False)
    assert read.status == 200
    ok = await api.call("POST", "/api/v1/hearings", operator, json=body)
    assert ok.status == 201
    # Another session's CSRF token does not do either.
    other = await api.session_for(await api.user(StaffRole.OPERATOR))
    crossed = await api.call(
        "POST",
        "/api/v1/hearings",
        operator,
        json=api.hearing_body(),
        csrf=False,
        headers={"X-CSRF-Token": other.csrf},
    )
    assert (crossed.status, crossed.code) == (403, "csrf_failed")
