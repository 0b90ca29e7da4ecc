"""The archive's administration endpoints: retention periods, the purge, the access audit."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from aiohttp import web
from sqlalchemy import select

from archive import schemas as s
from archive.audit import (
    AUDIT,
    note,
    record_now,
)
from archive.context import (
    ANSWER_RESULT,
    ARCHIVE,
    BASE,
    TAG,
    only_params,
)
from archive.models import AccessAuditEntry, CourtRetention
from archive.retention import DELETIONS_DIR, Purger
from archive.storage import LocalDiskStorage
from archive.streaming import Download, send_object
from hearing_server.api.call import Call
from hearing_server.api.registry import endpoint
from hearing_server.auth.access import ADMINS, ARCHIVE_READERS
from hearing_server.config import CONFIG, Config
from hearing_server.store.db import SESSIONS
from recording.seal import CourtSigner, generate_court_certificate


@endpoint(
    "GET",
    BASE + "/retention",
    access=ARCHIVE_READERS,
    tag=TAG,
    response=s.RetentionListOut,
    summary="Retention periods: the default and each court's own.",
)
async def list_retention(call: Call) -> s.RetentionListOut:
    async with call.reading() as db:
        rows = (await db.execute(select(CourtRetention).order_by(CourtRetention.court))).scalars()
        courts = [
            s.CourtRetentionOut(
                court=r.court, days=r.retention_days, updated_at=r.updated_at, updated_by=r.updated_by
            )
            for r in rows
        ]
    return s.RetentionListOut(default_days=call.config.retention_days, courts=courts)


@endpoint(
    "PUT",
    BASE + "/retention",
    access=ADMINS,
    tag=TAG,
    body=s.RetentionSetIn,
    response=s.RetentionListOut,
    summary="Set one court's retention period in days (null: back to the default).",
)
async def set_retention(call: Call) -> s.RetentionListOut:
    body: s.RetentionSetIn = call.body
    note(call.request).details.update(court=body.court, days=body.days)
    async with call.transaction() as db:
        row = await db.get(CourtRetention, body.court)
        if body.days is None:
            if row is not None:
                await db.delete(row)
        elif row is None:
            db.add(
                CourtRetention(
                    court=body.court,
                    retention_days=body.days,
                    updated_at=datetime.now(UTC),
                    updated_by=call.user.username,
                )
            )
        else:
            row.retention_days, row.updated_at, row.updated_by = (
                body.days,
                datetime.now(UTC),
                call.user.username,
            )
    return await list_retention.handler(call)


def make_purger(app: web.Application) -> Purger:
    """The purge with this application's database, storage, court key and audit."""
    config = app[CONFIG]
    return Purger(
        sessions=app[SESSIONS],
        storage=app[ARCHIVE].storage,
        signer=court_signer(config),
        deletions_dir=config.data_dir / DELETIONS_DIR,
        audit=app[AUDIT],
        default_days=config.retention_days,
    )


def court_signer(config: Config) -> CourtSigner:
    """The court's signing key (a development certificate is made if none is configured or present)."""
    return generate_court_certificate(config.court_cert_path, config.court_key_path, config.court_name)


@endpoint(
    "POST",
    BASE + "/purge",
    access=ADMINS,
    tag=TAG,
    body=s.PurgeIn,
    response=s.PurgeOut,
    summary="Delete sealed hearings past retention and not on hold, leaving signed deletion records.",
)
async def purge(call: Call) -> s.PurgeOut:
    body: s.PurgeIn = call.body
    purger = await asyncio.to_thread(make_purger, call.request.app)
    report = await purger.run(dry_run=body.dry_run, actor=call.user.username)
    note(call.request).details.update(
        dry_run=body.dry_run, deleted=len(report.deleted), failed=len(report.failed)
    )
    return s.PurgeOut(
        dry_run=report.dry_run,
        candidates=[
            s.PurgeItemOut(
                hearing_id=c.hearing_id,
                case_number=c.case_number,
                court=c.court,
                sealed_at=c.sealed_at,
                expired_at=c.expired_at,
                rule=c.rule.describe(),
            )
            for c in report.candidates
        ],
        deleted=report.deleted,
        failed=[s.PurgeFailureOut(hearing_id=h, error=e) for h, e in report.failed],
    )


# -- access audit ------------------------------------------------------------------------------


@endpoint(
    "GET",
    BASE + "/audit",
    access=ADMINS,
    tag=TAG,
    query=s.AuditQuery,
    response=s.AuditPage,
    summary="The access audit, newest first, filtered by hearing, action or actor.",
)
async def read_audit(call: Call) -> s.AuditPage:
    query: s.AuditQuery = call.query
    statement = select(AccessAuditEntry).order_by(AccessAuditEntry.seq.desc()).limit(query.limit)
    if query.before_seq is not None:
        statement = statement.where(AccessAuditEntry.seq < query.before_seq)
    if query.hearing_id is not None:
        statement = statement.where(AccessAuditEntry.hearing_id == query.hearing_id)
    if query.action is not None:
        statement = statement.where(AccessAuditEntry.action == query.action)
    if query.actor is not None:
        statement = statement.where(AccessAuditEntry.actor == query.actor)
    async with call.reading() as db:
        rows = list((await db.execute(statement)).scalars())
    items = [
        s.AuditEntryOut(
            seq=r.seq,
            time=r.time,
            actor=r.actor,
            role=r.role,
            action=r.action,
            hearing_id=r.hearing_id,
            target=r.target,
            status=r.status,
            result=r.result,
            ip=r.ip,
            user_agent=r.user_agent,
            details=r.details,
            prev_hash=r.prev_hash,
            hash=r.hash,
        )
        for r in rows
    ]
    return s.AuditPage(items=items, next_before_seq=items[-1].seq if len(items) == query.limit else None)


@endpoint(
    "GET",
    BASE + "/audit/export",
    access=ADMINS,
    tag=TAG,
    raw=True,
    media_type="application/x-ndjson",
    summary="The access-audit chain file (JSON lines), as it stood when the export began.",
)
async def export_audit(request: web.Request) -> web.StreamResponse:
    only_params(request, set())
    audit = request.app[AUDIT]
    size = await audit.snapshot_size()
    folder = audit.path.parent

    async def on_answer(status: int, detail: str) -> None:
        note(request).details["bytes"] = detail
        await record_now(request, status, ANSWER_RESULT.get(status, "ok"))

    return await send_object(
        request,
        LocalDiskStorage(folder),
        Download(audit.path.name, "application/x-ndjson", audit.path.name, attachment=True, length=size),
        on_answer,
    )


@endpoint(
    "GET",
    BASE + "/audit/verify",
    access=ADMINS,
    tag=TAG,
    response=s.ChainStatusOut,
    summary="Check the access-audit file's hash chain from its first line to its last.",
)
async def verify_audit(call: Call) -> s.ChainStatusOut:
    result = await asyncio.to_thread(call.request.app[AUDIT].verify)
    problem = result.problem
    note(call.request).details["valid"] = result.valid
    return s.ChainStatusOut(
        valid=result.valid,
        entries=result.entries,
        last_hash=result.last_hash,
        problem=problem.describe() if problem else None,
        line=problem.line if problem else None,
    )
