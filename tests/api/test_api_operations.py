"""Operations endpoints, security headers on every response, and the generated OpenAPI document."""

from __future__ import annotations

from typing import Any

import pytest
from api_harness import Api, MakeApi
from sqlalchemy.ext.asyncio import AsyncEngine

from hearing_server.api.metrics import METRICS
from hearing_server.api.registry import ROUTES
from hearing_server.api.schemas import HearingCreateIn
from hearing_server.api.security import CONTENT_SECURITY_POLICY
from hearing_server.domain.party import StaffRole

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Permissions-Policy": "camera=(self), microphone=(self)",
}


async def test_health_and_readiness(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    assert (await api.call("GET", "/healthz")).json == {"status": "ok"}
    assert (await api.call("GET", "/readyz")).json == {"status": "ready"}

    def unreachable(self: AsyncEngine) -> Any:
        raise OSError("connection refused")

    monkeypatch.setattr(AsyncEngine, "connect", unreachable)
    down = await api.call("GET", "/readyz")
    assert (down.status, down.code) == (503, "not_ready")
    assert (await api.call("GET", "/healthz")).status == 200  # liveness does not touch the database


async def test_security_headers_on_every_kind_of_response(api: Api) -> None:
    operator = await api.who(StaffRole.OPERATOR)
    responses = [
        await api.call("GET", "/healthz"),
        await api.call("GET", "/metrics"),
        await api.call("GET", "/api/v1/hearings", operator),
        await api.call("GET", "/api/v1/hearings"),  # 401
        await api.call("GET", "/no/such/page"),  # 404 from the router
        await api.call("POST", "/api/v1/hearings", operator, json={"x": 1}),  # 400
    ]
    for result in responses:
        for name, value in SECURITY_HEADERS.items():
            assert result.headers.get(name) == value, (result.status, name)
        assert "Strict-Transport-Security" not in result.headers  # HSTS only over HTTPS (see test_cli)
    not_found = responses[4]
    assert (not_found.status, not_found.code) == (404, "not_found")


async def test_metrics_count_requests_per_app(make_api: MakeApi) -> None:
    first = await make_api()
    second = await make_api()
    for _ in range(3):
        await first.call("GET", "/healthz")
    await first.call("GET", "/api/v1/hearings/some-id")
    text = (await first.call("GET", "/metrics")).body.decode()
    assert 'hearing_http_requests_total{method="GET",route="/healthz",status="200"} 3.0' in text
    assert 'route="/api/v1/hearings/{hearing_id}",status="401"' in text
    assert 'hearing_http_request_duration_seconds_count{method="GET",route="/healthz"} 3.0' in text
    assert "hearing_live_hearings 0.0" in text and "hearing_live_participants 0.0" in text
    # the media plane's packet transit histogram and counters are there before any hearing has media
    assert 'hearing_media_transit_seconds_bucket{le="0.002"} 0.0' in text
    assert "hearing_media_transit_seconds_count 0.0" in text and "hearing_media_packets_in_total 0.0" in text
    first.app[METRICS].live_hearings.set(2)
    assert "hearing_live_hearings 2.0" in (await first.call("GET", "/metrics")).body.decode()
    other = (await second.call("GET", "/metrics")).body.decode()
    assert 'route="/healthz"' not in other and "hearing_live_hearings 0.0" in other


def _resolve(document: dict[str, Any], node: Any, seen: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if ref is not None:
            assert ref.startswith("#/components/schemas/"), ref
            name = ref.rsplit("/", 1)[1]
            assert name in document["components"]["schemas"], f"dangling {ref}"
            if name not in seen:
                seen.add(name)
                _resolve(document, document["components"]["schemas"][name], seen)
        for value in node.values():
            _resolve(document, value, seen)
    elif isinstance(node, list):
        for value in node:
            _resolve(document, value, seen)


async def test_openapi_document_lists_every_route_from_the_models(api: Api) -> None:
    result = await api.call("GET", "/api/v1/openapi.json")
    assert result.status == 200
    document = result.json
    assert document["openapi"] == "3.1.0"
    assert document["info"]["title"] and document["info"]["version"]
    assert document["servers"] == [{"url": "https://localhost:8443"}]
    table = api.app[ROUTES]
    documented = {(method.upper(), path) for path, ops in document["paths"].items() for method in ops}
    assert documented == {ep.key for ep in table.endpoints if ep.openapi}
    operation_ids = [op["operationId"] for ops in document["paths"].values() for op in ops.values()]
    assert len(operation_ids) == len(set(operation_ids))
    _resolve(document, document["paths"], set())

    for ep in (ep for ep in table.endpoints if ep.openapi):
        operation = document["paths"][ep.path][ep.method.lower()]
        assert operation["summary"] == ep.summary
        assert operation["x-roles"] == (
            ["public"] if ep.access.public else sorted(r.value for r in ep.access.roles)
        )
        if not ep.access.public:
            assert {"401", "403"} <= set(operation["responses"])
            assert operation["security"][0]["sessionCookie"] == []
        path_params = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
        assert path_params == {part[1:-1] for part in ep.path.split("/") if part.startswith("{")}

    schedule = document["paths"]["/api/v1/hearings"]["post"]
    assert schedule["security"] == [{"sessionCookie": [], "csrfToken": []}]
    body_ref = schedule["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    body_schema = document["components"]["schemas"][body_ref.rsplit("/", 1)[1]]
    assert body_schema["additionalProperties"] is False
    assert set(body_schema["properties"]) == set(HearingCreateIn.model_fields)
    listing = document["paths"]["/api/v1/hearings"]["get"]
    assert {p["name"] for p in listing["parameters"]} == {
        "date_from",
        "date_to",
        "status",
        "case_number",
        "court",
        "limit",
        "offset",
    }
    error = document["paths"]["/api/v1/hearings/{hearing_id}"]["get"]["responses"]["404"]
    assert error["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorOut")
    assert document["components"]["securitySchemes"]["sessionCookie"] == {
        "type": "apiKey",
        "in": "cookie",
        "name": "hs_session",
    }
