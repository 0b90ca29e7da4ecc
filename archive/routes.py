"""Serving the archive: its routes, the audit action of each, and the application wiring."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from archive.admin import (
    export_audit,
    list_retention,
    purge,
    read_audit,
    set_retention,
    verify_audit,
)
from archive.audit import (
    AUDIT,
    AccessAudit,
    AccessRecord,
    audit_middleware,
    audit_path,
)
from archive.context import (
    ARCHIVE,
    BASE,
    FILE,
    HEARING,
    TAG,
    Archive,
)
from archive.storage import LocalDiskStorage, Storage
from archive.views import (
    export_hearing,
    search_archive,
    set_hold,
    stream_file,
    verify_hearing_now,
    view_hearing,
)
from hearing_server.api.acts import SEALED_ACT_DELIVERIES
from hearing_server.api.registry import ROUTES, endpoint
from hearing_server.auth.access import ARCHIVE_READERS
from hearing_server.config import CONFIG
from hearing_server.domain.events import EventType
from hearing_server.store.db import SESSIONS

ENDPOINTS = (
    search_archive,
    view_hearing,
    stream_file,
    export_hearing,
    verify_hearing_now,
    set_hold,
    list_retention,
    set_retention,
    purge,
    read_audit,
    export_audit,
    verify_audit,
)
_ACTIONS = {
    ("GET", BASE + "/hearings"): "search",
    ("GET", HEARING): "view",
    ("GET", FILE): "stream",
    ("HEAD", FILE): "stream",
    ("GET", HEARING + "/export"): "export",
    ("POST", HEARING + "/verify"): "verify",
    ("PUT", HEARING + "/hold"): "hold",
    ("GET", BASE + "/retention"): "retention_read",
    ("PUT", BASE + "/retention"): "retention_set",
    ("POST", BASE + "/purge"): "purge",
    ("GET", BASE + "/audit"): "audit_read",
    ("GET", BASE + "/audit/export"): "audit_export",
    ("GET", BASE + "/audit/verify"): "audit_verify",
}


def action_of(request: web.Request) -> str:
    """The audit action of a request, from its route (``unknown`` for paths no route matches)."""
    resource = request.match_info.route.resource
    canonical = resource.canonical if resource is not None else ""
    return _ACTIONS.get((request.method, canonical), "unknown")


async def _archive_context(app: web.Application) -> AsyncIterator[None]:
    audit = AccessAudit(audit_path(app[CONFIG].data_dir), app[SESSIONS])
    app[AUDIT] = audit
    yield
    audit.close()


def setup(app: web.Application, storage: Storage | None = None) -> None:
    """Serve the archive API on ``app`` (call after ``create_app``; its database context runs first)."""
    config = app[CONFIG]
    app[ARCHIVE] = Archive(storage or LocalDiskStorage(config.recordings_dir))
    table = app[ROUTES]
    table.add(*ENDPOINTS)
    head = endpoint(
        "HEAD", FILE, access=ARCHIVE_READERS, tag=TAG, raw=True, openapi=False, summary="Headers of a file."
    )(stream_file.handler)
    table.add(head)
    app.middlewares.append(audit_middleware(action_of))
    app.cleanup_ctx.append(_archive_context)

    async def audit_sealed_act_delivery(
        hearing_id: str, act_id: str, actor: str, ip: str, agent: str, signed_sha256: str
    ) -> None:
        await app[AUDIT].record(
            AccessRecord(
                actor=actor,
                role="party",
                action=EventType.ACT_DELIVERED.value,
                status=200,
                result="delivered",
                hearing_id=hearing_id,
                target=act_id,
                ip=ip,
                user_agent=agent,
                details={"signed_sha256": signed_sha256},
            )
        )

    app[SEALED_ACT_DELIVERIES] = audit_sealed_act_delivery


__all__ = ["ENDPOINTS", "action_of", "setup"]
