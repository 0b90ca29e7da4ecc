"""The archive's hearing endpoints: search, view, stream a file, export, verify, legal hold."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from pathlib import PurePosixPath
from zoneinfo import ZoneInfo

from aiohttp import web
from cryptography.hazmat.primitives import serialization
from sqlalchemy import select

from archive import schemas as s
from archive.audit import (
    note,
    record_now,
)
from archive.catalogue import catalogue_hearing
from archive.context import (
    ANSWER_RESULT,
    ARCHIVE,
    BASE,
    FILE,
    HEARING,
    TAG,
    WRITE_TIMEOUT_S,
    Gone,
    archived_hearing,
    hearing_id_of,
    in_thread,
    only_params,
    trusted_certificate,
)
from archive.models import ArchiveRecord
from archive.package import ChunkWriter, HearingFacts, package_name, write_package
from archive.present import (
    file_url,
    full_check_out,
    hearing_out,
    problems_out,
    retention_out,
    seal_out,
    staff_actor_ids,
    timeline_out,
)
from archive.retention import rule_for
from archive.sealed import (
    PLAYBACK_ID,
    SealedHearing,
    check_seal,
    fingerprint,
    full_verification,
    load_sealed,
    read_log,
    read_playback,
)
from archive.search import search_hearings
from archive.streaming import Download, content_disposition, send_object
from hearing_server.api.call import Call
from hearing_server.api.registry import endpoint
from hearing_server.auth.access import ARCHIVE_READERS
from hearing_server.config import CONFIG, Config
from hearing_server.domain.errors import Conflict, InvalidInput
from hearing_server.domain.hearing import HearingStatus
from hearing_server.store.db import SESSIONS
from hearing_server.store.models import Act, Hearing, HearingEvent, User
from recording.cms import verify_detached

log = logging.getLogger(__name__)


@endpoint(
    "GET",
    BASE + "/hearings",
    access=ARCHIVE_READERS,
    tag=TAG,
    query=s.ArchiveSearchQuery,
    response=s.ArchiveSearchPage,
    summary="Search ended and sealed hearings by case, dates, court, courtroom, judge and party, paged.",
)
async def search_archive(call: Call) -> s.ArchiveSearchPage:
    query: s.ArchiveSearchQuery = call.query
    if query.judge is not None or query.party is not None:
        await call.request.app[ARCHIVE].catch_up(call.request.app[SESSIONS])
    async with call.reading() as db:
        result = await search_hearings(db, query, zone=ZoneInfo(call.config.timezone))
    note(call.request).details["total"] = result.total
    return s.ArchiveSearchPage(
        items=[hearing_out(h, result.deleted_at.get(h.id)) for h in result.hearings],
        total=result.total,
        total_exact=result.total_exact,
        limit=query.limit,
        offset=query.offset,
        next_cursor=result.next_cursor,
    )


@endpoint(
    "GET",
    HEARING,
    access=ARCHIVE_READERS,
    tag=TAG,
    response=s.ArchiveHearingDetail,
    summary="An archived hearing: parties, files, seal status, playback copy, timeline and retention.",
)
async def view_hearing(call: Call) -> s.ArchiveHearingDetail:
    hearing_id = call.path_id("hearing_id")
    config = call.config
    storage = call.request.app[ARCHIVE].storage
    now = datetime.now(UTC)
    async with call.transaction() as db:
        hearing = await archived_hearing(db, hearing_id)
        record = await catalogue_hearing(db, hearing, now)
        rule = await rule_for(db, hearing.court, config.retention_days)
        events = (
            await db.execute(
                select(HearingEvent).where(HearingEvent.hearing_id == hearing_id).order_by(HearingEvent.seq)
            )
        ).scalars()
        acts = list(
            (
                await db.execute(select(Act).where(Act.hearing_id == hearing_id).order_by(Act.signed_at))
            ).scalars()
        )
        db_entries = [
            {
                "seq": e.seq,
                "time": e.time,
                "event": e.event,
                "actor": e.actor,
                "party_id": e.party_id,
                "details": e.details,
            }
            for e in events
        ]
    deleted = record.deleted_at is not None
    sealed = (
        SealedHearing(None)
        if deleted
        else await asyncio.to_thread(load_sealed, storage, hearing.recording_path)
    )
    trusted = await asyncio.to_thread(trusted_certificate, config)
    check = await asyncio.to_thread(check_seal, storage, sealed, trusted)
    playback = await asyncio.to_thread(read_playback, storage, sealed)
    log_entries = None if deleted else await asyncio.to_thread(read_log, storage, sealed.prefix)
    current = None
    if record.verification is not None and sealed.prefix is not None:
        current = await asyncio.to_thread(fingerprint, storage, sealed.prefix)
    files = [
        s.ArchiveFileOut(
            id=f.id,
            name=f.name,
            kind=f.kind,
            sealed=f.sealed,
            content_type=f.content_type,
            url=file_url(hearing.id, f.id),
            size=f.size,
            sha256=f.sha256,
            codec=f.facts.get("codec"),
            participant_id=f.facts.get("participant_id"),
            track_id=f.facts.get("track_id"),
            duration_s=f.facts.get("duration_s"),
            first_timestamp_s=f.facts.get("first_timestamp_s"),
            width=f.facts.get("width"),
            height=f.facts.get("height"),
        )
        for f in sealed.files
    ]
    timeline_entries = log_entries if log_entries is not None else db_entries
    users: list[User] = []
    if user_ids := staff_actor_ids(timeline_entries):
        async with call.transaction() as db:
            users = list((await db.execute(select(User).where(User.id.in_(user_ids)))).scalars())
    base = hearing_out(hearing, record.deleted_at)
    return s.ArchiveHearingDetail(
        **base.model_dump(),
        files=files,
        acts=acts_out(acts, sealed),
        addenda=addenda_out(sealed),
        seal=seal_out(check, full_check_out(record, current), deleted),
        playback=s.PlaybackOut(
            state=str(playback.get("state")),
            percent=playback.get("percent"),
            error=playback.get("error"),
            file_id=playback.get("file_id"),
            url=file_url(hearing.id, PLAYBACK_ID) if playback.get("file_id") else None,
        ),
        timeline=timeline_out(
            hearing,
            sealed,
            timeline_entries,
            "log_file" if log_entries is not None else "database",
            users,
        ),
        retention=retention_out(hearing, record, rule),
    )


def acts_out(acts: list[Act], sealed: SealedHearing) -> list[s.ArchiveActOut]:
    """The hearing's acts, each with its sealed file and the addendum (if any) that seals it."""
    by_name = {f.name: f for f in sealed.files if f.sealed}
    out = []
    for act in acts:
        item = by_name.get(act.path or "")
        number = item.facts.get("addendum") if item is not None else None
        out.append(
            s.ArchiveActOut(
                id=act.id,
                title=act.title,
                signer_subject=act.signer_subject,
                signed_at=act.signed_at,
                signed_sha256=act.signed_sha256,
                file_id=item.id if item is not None else None,
                addendum=number if isinstance(number, int) else None,
            )
        )
    return out


def addenda_out(sealed: SealedHearing) -> list[s.ArchiveAddendumOut]:
    """The hearing's addendum seals, oldest first."""
    manifests = {f.facts.get("addendum"): f.id for f in sealed.files if f.kind == "addendum_manifest"}
    return [
        s.ArchiveAddendumOut(
            number=a.number,
            sealed_at=a.manifest.get("sealed_at"),
            signer=a.manifest.get("signer"),
            files=len(a.manifest.get("files") or []),
            manifest_file_id=manifests.get(a.number),
        )
        for a in sealed.addenda
    ]


# -- files and export --------------------------------------------------------------------------


async def _sealed_hearing(request: web.Request) -> tuple[Hearing, SealedHearing]:
    """The sealed, not deleted hearing of the request path and its sealed folder."""
    hearing_id = hearing_id_of(request)
    async with request.app[SESSIONS]() as db:
        hearing = await archived_hearing(db, hearing_id)
        record = await db.get(ArchiveRecord, hearing_id)
    if record is not None and record.deleted_at is not None:
        raise Gone("the hearing's files were deleted at the end of its retention period")
    if hearing.status != HearingStatus.SEALED.value:
        raise Conflict("the hearing is not sealed yet", code="not_sealed")
    sealed = await asyncio.to_thread(load_sealed, request.app[ARCHIVE].storage, hearing.recording_path)
    if not sealed.is_sealed:
        raise Conflict("the hearing folder holds no seal", code="seal_missing")
    return hearing, sealed


@endpoint(
    "GET",
    FILE,
    access=ARCHIVE_READERS,
    tag=TAG,
    raw=True,
    media_type="application/octet-stream",
    summary=(
        "One file of a sealed hearing by id (manifest index, manifest, signature, playback), with HTTP "
        "ranges (206, multipart/byteranges, 416), ETag and If-Range; ?download=1 for an attachment."
    ),
)
async def stream_file(request: web.Request) -> web.StreamResponse:
    only_params(request, {"download"})
    download = request.query.get("download", "0")
    if download not in ("0", "1", "true", "false"):
        raise InvalidInput("download is 0 or 1", code="invalid_input")
    attachment = download in ("1", "true")
    audit_note = note(request)
    if attachment:
        audit_note.action = "download"
    _, sealed = await _sealed_hearing(request)
    item = sealed.file(request.match_info.get("file_id", ""))
    audit_note.target = item.name

    async def on_answer(status: int, detail: str) -> None:
        audit_note.details["bytes"] = detail
        if request.headers.get("Range"):
            audit_note.details["range"] = request.headers["Range"][:100]
        await record_now(request, status, ANSWER_RESULT.get(status, "ok"))

    name = PurePosixPath(item.name).name
    return await send_object(
        request,
        request.app[ARCHIVE].storage,
        Download(item.key, item.content_type, name, attachment=attachment),
        on_answer,
    )


def _certificate_pem(config: Config, sealed: SealedHearing) -> bytes | None:
    path = config.court_cert_path
    if path.exists():
        return path.read_bytes()
    if sealed.manifest_bytes is None or sealed.signature is None:
        return None
    signer = verify_detached(sealed.manifest_bytes, sealed.signature).signer
    return signer.public_bytes(serialization.Encoding.PEM) if signer is not None else None


@endpoint(
    "GET",
    HEARING + "/export",
    access=ARCHIVE_READERS,
    tag=TAG,
    raw=True,
    media_type="application/zip",
    summary=(
        "Export a sealed hearing as one ZIP, streamed: tracks, playback copy, confirmation log, manifest, "
        "signature, court certificate and summary.txt (409 if not sealed)."
    ),
)
async def export_hearing(request: web.Request) -> web.StreamResponse:
    only_params(request, set())
    config = request.app[CONFIG]
    storage = request.app[ARCHIVE].storage
    hearing, sealed = await _sealed_hearing(request)
    trusted = await asyncio.to_thread(trusted_certificate, config)
    check = await asyncio.to_thread(check_seal, storage, sealed, trusted)
    certificate = await asyncio.to_thread(_certificate_pem, config, sealed)
    facts = HearingFacts(
        id=hearing.id,
        case_number=hearing.case_number,
        title=hearing.title,
        court=hearing.court,
        courtroom=hearing.courtroom,
        presiding_judge=hearing.presiding_judge,
        scheduled_start=hearing.scheduled_start,
        sealed_at=hearing.sealed_at,
        parties=[(p.role, p.display_name) for p in hearing.parties],
        timezone=config.timezone,
    )
    name = package_name(facts) + ".zip"
    response = web.StreamResponse(
        headers={
            "Content-Type": "application/zip",
            "Content-Disposition": content_disposition(name, attachment=True),
            "Cache-Control": "private, no-store",
        }
    )
    audit_note = note(request)
    audit_note.target = name
    audit_note.details.update(files=len(sealed.files), seal=check.state)
    await record_now(request, 200, "ok")
    await response.prepare(request)
    loop = asyncio.get_running_loop()

    def push(chunk: bytes) -> None:
        asyncio.run_coroutine_threadsafe(response.write(chunk), loop).result(WRITE_TIMEOUT_S)

    try:
        result = await in_thread(write_package, ChunkWriter(push), storage, facts, sealed, check, certificate)
    except ConnectionResetError:
        return response  # the browser cancelled the download
    if result.mismatches:
        log.warning("export of %s: files differ from the seal: %s", hearing.id, result.mismatches)
    await response.write_eof()
    return response


# -- verification and legal hold --------------------------------------------------------------


@endpoint(
    "POST",
    HEARING + "/verify",
    access=ARCHIVE_READERS,
    tag=TAG,
    response=s.VerificationOut,
    summary="Verify a sealed hearing fully now: signature, every file's SHA-256, the log chain.",
)
async def verify_hearing_now(call: Call) -> s.VerificationOut:
    storage = call.request.app[ARCHIVE].storage
    hearing, sealed = await _sealed_hearing(call.request)
    assert sealed.prefix is not None
    trusted = await asyncio.to_thread(trusted_certificate, call.config)
    report, folder_print = await in_thread(full_verification, storage, sealed.prefix, trusted)
    now = datetime.now(UTC)
    data = report.to_dict()
    data.pop("folder", None)
    data["fingerprint"] = folder_print
    async with call.transaction() as db:
        current = await archived_hearing(db, hearing.id)
        record = await catalogue_hearing(db, current, now)
        record.verified_at, record.verified_valid, record.verification = now, report.valid, data
    note(call.request).details.update(valid=report.valid, problems=len(report.problems))
    return s.VerificationOut(
        hearing_id=hearing.id,
        checked_at=now,
        valid=report.valid,
        signature_valid=report.signature_valid,
        signer_subject=report.signer_subject,
        signer_trusted=report.signer_trusted,
        files_checked=report.files_checked,
        log_entries=report.log_entries,
        problems=problems_out(report.problems),
    )


@endpoint(
    "PUT",
    HEARING + "/hold",
    access=ARCHIVE_READERS,
    tag=TAG,
    body=s.HoldIn,
    response=s.RetentionStatusOut,
    summary="Put a hearing on legal hold (never deleted while on hold) or release it, with a reason.",
)
async def set_hold(call: Call) -> s.RetentionStatusOut:
    body: s.HoldIn = call.body
    hearing_id = call.path_id("hearing_id")
    now = datetime.now(UTC)
    audit_note = note(call.request)
    audit_note.action = "hold_set" if body.hold else "hold_released"
    audit_note.details["reason"] = body.reason
    async with call.transaction() as db:
        hearing = await archived_hearing(db, hearing_id)
        record = await catalogue_hearing(db, hearing, now)
        if record.deleted_at is not None:
            raise Gone("the hearing's files were already deleted")
        hearing.legal_hold = body.hold
        record.hold_reason = body.reason
        record.hold_changed_by = call.user.username
        record.hold_changed_at = now
        rule = await rule_for(db, hearing.court, call.config.retention_days)
    return retention_out(hearing, record, rule)


# -- retention and purge -----------------------------------------------------------------------
