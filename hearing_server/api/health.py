"""Operations endpoints: liveness, readiness (the database answers) and Prometheus metrics."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from sqlalchemy import text

from hearing_server.api.errors import error_response
from hearing_server.api.metrics import METRICS
from hearing_server.api.registry import endpoint
from hearing_server.api.schemas import StatusOut
from hearing_server.auth.access import PUBLIC
from hearing_server.store.db import ENGINE

TAG = "operations"
READY_TIMEOUT_S = 3.0
log = logging.getLogger(__name__)


@endpoint(
    "GET",
    "/healthz",
    access=PUBLIC,
    tag=TAG,
    raw=True,
    response=StatusOut,
    summary="Liveness: the process answers (no database access).",
)
async def healthz(request: web.Request) -> web.StreamResponse:
    return web.json_response({"status": "ok"})


@endpoint(
    "GET",
    "/readyz",
    access=PUBLIC,
    tag=TAG,
    raw=True,
    response=StatusOut,
    summary="Readiness: 200 when the database answers, else 503.",
)
async def readyz(request: web.Request) -> web.StreamResponse:
    try:
        async with asyncio.timeout(READY_TIMEOUT_S), request.app[ENGINE].connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:  # any failure means "not ready"; the reason goes to the log only
        log.warning("readiness check failed: %s", exc)
        return error_response(503, "not_ready", "the database does not answer")
    return web.json_response({"status": "ready"})


@endpoint(
    "GET",
    "/metrics",
    access=PUBLIC,
    tag=TAG,
    raw=True,
    media_type="text/plain",
    summary="Metrics in the Prometheus text format.",
)
async def metrics(request: web.Request) -> web.StreamResponse:
    registry = request.app[METRICS]
    return web.Response(body=registry.render(), headers={"Content-Type": registry.content_type})


ENDPOINTS = (healthz, readyz, metrics)
