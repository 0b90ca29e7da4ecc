"""The one place where failures become HTTP error responses ``{"error": {"code", "message"}}``."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from hearing_server.domain.errors import HearingError

log = logging.getLogger(__name__)

_HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
}


class UnsupportedMediaType(HearingError):
    """The request body is not JSON."""

    code = "unsupported_media_type"
    status = 415


def error_response(
    status: int, code: str, message: str, *, fields: list[dict[str, Any]] | None = None
) -> web.Response:
    """The JSON error body every failure uses."""
    error: dict[str, Any] = {"code": code, "message": message}
    if fields is not None:
        error["fields"] = fields
    return web.json_response({"error": error}, status=status)


def _validation_response(exc: ValidationError) -> web.Response:
    problems = exc.errors(include_url=False, include_input=False, include_context=False)
    if any(p["type"] == "json_invalid" for p in problems):
        return error_response(400, "invalid_json", "the body is not valid JSON")
    fields = [{"loc": list(p["loc"]), "type": p["type"], "msg": p["msg"]} for p in problems]
    summary = "; ".join(
        (".".join(str(part) for part in p["loc"]) + ": " if p["loc"] else "") + p["msg"] for p in problems
    )
    return error_response(400, "invalid_input", summary, fields=fields)


def _http_message(exc: web.HTTPException, request: web.Request) -> str:
    if exc.status == 404:
        return f"nothing at {request.path}"
    if exc.status == 405:
        return f"{request.method} is not allowed here"
    if exc.status == 413:
        return f"the request body is larger than {request.client_max_size} bytes"
    return exc.reason


@web.middleware
async def error_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Map domain errors, validation errors, aiohttp's HTTP errors and crashes to JSON error responses."""
    try:
        return await handler(request)
    except HearingError as exc:
        response = error_response(exc.status, exc.code, exc.message)
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            response.headers["Retry-After"] = str(retry_after)
        return response
    except ValidationError as exc:
        return _validation_response(exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = error_response(
            exc.status, _HTTP_CODES.get(exc.status, "http_error"), _http_message(exc, request)
        )
        if "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    except Exception:
        log.exception("unhandled error in %s %s", request.method, request.path)
        return error_response(500, "internal_error", "the server failed; the error was logged")
