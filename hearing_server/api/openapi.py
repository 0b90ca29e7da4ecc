"""The OpenAPI 3.1 document, generated from the route table and the pydantic models it names."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from hearing_server import __version__
from hearing_server.api.registry import ROUTES, Endpoint, RouteTable, endpoint
from hearing_server.api.schemas import ErrorOut
from hearing_server.auth.access import PUBLIC
from hearing_server.auth.staff import CSRF_HEADER, SAFE_METHODS, SESSION_COOKIE
from hearing_server.config import CONFIG

Mode = Literal["validation", "serialization"]
_PATH_PARAM = re.compile(r"{(\w+)}")
_ERROR_TEXT = {
    "400": "The request is malformed or its values are impossible.",
    "401": "Not logged in.",
    "403": "The role may not do this, or the CSRF token is missing or wrong.",
    "404": "No such resource.",
    "409": "The request contradicts the current state (duplicate, wrong status).",
    "413": "The body is too large.",
    "415": "The body is not application/json.",
    "default": "Any other error, in the same shape.",
}


def _models(endpoints: list[Endpoint]) -> list[tuple[type[BaseModel], Mode]]:
    pairs: list[tuple[type[BaseModel], Mode]] = [(ErrorOut, "serialization")]
    for ep in endpoints:
        if ep.body is not None:
            pairs.append((ep.body, "validation"))
        if ep.query is not None:
            pairs.append((ep.query, "validation"))
        if ep.response is not None:
            pairs.append((ep.response, "serialization"))
    return list(dict.fromkeys(pairs))


def _operation(ep: Endpoint, refs: Mapping[Any, Any], components: dict[str, Any]) -> dict[str, Any]:
    error = {"application/json": {"schema": refs[(ErrorOut, "serialization")]}}
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}
        for name in _PATH_PARAM.findall(ep.path)
    ]
    if ep.query is not None:
        query_schema = components[refs[(ep.query, "validation")]["$ref"].rsplit("/", 1)[1]]
        required = set(query_schema.get("required", []))
        for name, schema in query_schema.get("properties", {}).items():
            parameter = {"name": name, "in": "query", "required": name in required, "schema": schema}
            if "description" in schema:
                parameter["description"] = schema["description"]
            parameters.append(parameter)

    success: dict[str, Any] = {"description": "Success."}
    if ep.response is not None:
        success["content"] = {ep.media_type: {"schema": refs[(ep.response, "serialization")]}}
    elif ep.raw:
        success["content"] = {ep.media_type: {"schema": {"type": "string"}}}
    responses: dict[str, Any] = {str(ep.status): success}
    statuses: list[str] = []
    if ep.body is not None or ep.query is not None:
        statuses.append("400")
    if not ep.access.public:
        statuses += ["401", "403"]
    if parameters and any(p["in"] == "path" for p in parameters):
        statuses.append("404")
    if not ep.access.public and ep.method not in SAFE_METHODS:
        statuses.append("409")
    if ep.body is not None:
        statuses += ["413", "415"]
    statuses.append("default")
    for status in statuses:
        responses[status] = {"description": _ERROR_TEXT[status], "content": error}

    operation: dict[str, Any] = {
        "operationId": ep.operation_id,
        "summary": ep.summary,
        "tags": [ep.tag],
        "x-roles": ["public"] if ep.access.public else sorted(r.value for r in ep.access.roles),
        "responses": responses,
    }
    if parameters:
        operation["parameters"] = parameters
    if ep.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": refs[(ep.body, "validation")]}},
        }
    if ep.access.public:
        operation["security"] = []
    elif ep.method in SAFE_METHODS:
        operation["security"] = [{"sessionCookie": []}]
    else:
        operation["security"] = [{"sessionCookie": [], "csrfToken": []}]
    return operation


def build_openapi(table: RouteTable, *, server_url: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every endpoint in ``table`` that is meant to be documented."""
    endpoints = [ep for ep in table.endpoints if ep.openapi]
    refs, schema = models_json_schema(_models(endpoints), ref_template="#/components/schemas/{model}")
    components: dict[str, Any] = schema.get("$defs", {})
    paths: dict[str, dict[str, Any]] = {}
    for ep in endpoints:
        paths.setdefault(ep.path, {})[ep.method.lower()] = _operation(ep, refs, components)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "hearing-server API",
            "version": __version__,
            "description": (
                "Staff log in with POST /api/v1/auth/login, which sets the session cookie; every write "
                f"also sends the session's CSRF token in the {CSRF_HEADER} header. Errors have the shape "
                '{"error": {"code": ..., "message": ...}}.'
            ),
        },
        "servers": [{"url": server_url}],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "sessionCookie": {"type": "apiKey", "in": "cookie", "name": SESSION_COOKIE},
                "csrfToken": {"type": "apiKey", "in": "header", "name": CSRF_HEADER},
            },
        },
    }


@endpoint(
    "GET",
    "/api/v1/openapi.json",
    access=PUBLIC,
    tag="operations",
    raw=True,
    summary="This API's OpenAPI 3.1 document, generated from the route table.",
)
async def openapi_document(request: web.Request) -> web.StreamResponse:
    document = build_openapi(request.app[ROUTES], server_url=request.app[CONFIG].effective_public_url)
    return web.json_response(document)


ENDPOINTS = (openapi_document,)
