"""Court acts: a judge uploads a PDF, the server signs it PAdES with the judge's own key (unlocked by their
password) or the court's key and keeps it in the
hearing folder (so the hearing's seal covers it); staff list and download acts; a party lists and downloads
the acts of their hearing with their own link, each download logged as delivered.

An act signed after the hearing is sealed is sealed as an addendum (``addenda/<n>/``) chained to the seal;
its events go to the addendum's own log, since the sealed confirmation log cannot grow.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import shutil
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from aiohttp import web
from pyhanko.sign.signers import SimpleSigner
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hearing_server.api.call import Call
from hearing_server.api.errors import UnsupportedMediaType
from hearing_server.api.hearing_guard import presiding_judge_only
from hearing_server.api.invitations import record_queued
from hearing_server.api.registry import endpoint, to_response
from hearing_server.api.schemas import ActList, ActOut, PartyActList, PartyActOut
from hearing_server.api.signing_keys import SigningPasswordWrong, court_trust
from hearing_server.auth.access import ACT_SIGNERS, HEARING_READERS, PUBLIC
from hearing_server.auth.cert_chain import CertificateRevoked, CertificateUntrusted, check_chain
from hearing_server.auth.client import client_ip, user_agent
from hearing_server.auth.invitations import resolve_for_acts
from hearing_server.auth.judge_keys import WrongPassword, unwrap_key
from hearing_server.auth.ratelimit import LOGIN_LIMITER
from hearing_server.auth.staff import current_session
from hearing_server.config import CONFIG
from hearing_server.domain.errors import Conflict, Forbidden, HearingError, InvalidInput, NotFound, TooLarge
from hearing_server.domain.events import EventType
from hearing_server.domain.hearing import HearingStatus
from hearing_server.domain.ids import is_valid_id, new_id
from hearing_server.notify.worker import NOTIFICATIONS
from hearing_server.record.context import SEALER
from hearing_server.record.court_act import (
    check_pdf,
    court_signer,
    judge_signer,
    sign_act,
    signature_holds,
)
from hearing_server.record.event_log import EVENTS
from hearing_server.services import hearings, judge_keys, notifications
from hearing_server.store.db import SESSIONS
from hearing_server.store.models import Act, Notification
from recording.addendum import AddendumEvent, AddendumResult
from recording.durable import write_durably

log = logging.getLogger(__name__)

TAG = "acts"
LIST = "/api/v1/hearings/{hearing_id}/acts"
PDF = LIST + "/{act_id}/pdf"
PARTY_LIST = "/api/v1/join/{token}/acts"
PARTY_PDF = PARTY_LIST + "/{act_id}/pdf"
ACTS_DIR = "acts"
# The judge's password for their own key; percent-encoded UTF-8 (HTTP headers carry Latin-1 only).
SIGNING_PASSWORD_HEADER = "X-Signing-Password"  # noqa: S105 (a header name)
CLOSED = frozenset({HearingStatus.CANCELLED.value})
_SAFE_NAME = re.compile(r"[^\w.()\- ]+")


def _file_name(raw: str) -> str:
    name = _SAFE_NAME.sub("_", Path(raw).name).strip(" .") or "act"
    return (name if name.lower().endswith(".pdf") else name + ".pdf")[:200]


async def _read_pdf(request: web.Request, limit: int) -> bytes:
    if request.content_type != "application/pdf":
        raise UnsupportedMediaType("send the act as application/pdf", code="unsupported_media_type")
    if request.content_length is not None and request.content_length > limit:
        raise TooLarge(f"an act may be at most {limit} bytes", code="act_too_large")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(1 << 16):
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"an act may be at most {limit} bytes", code="act_too_large")
        chunks.append(chunk)
    return b"".join(chunks)


def content_disposition(file_name: str) -> str:
    """An attachment header for any file name: an ASCII fallback plus the exact name (RFC 6266/5987)."""
    fallback = file_name.encode("ascii", "replace").decode().replace("?", "_").replace('"', "_")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(file_name, safe='')}"


def act_out(act: Act, signature_valid: bool = False) -> ActOut:
    """An act as staff see it."""
    return ActOut.model_validate(act).model_copy(update={"signature_valid": signature_valid})


async def _checked(request: web.Request, hearing_id: str, acts: list[Act]) -> list[tuple[Act, bool]]:
    """Each act with whether its stored file's signature holds now (a changed file shows as not valid)."""
    folder = await request.app[EVENTS].folder(hearing_id)
    cert = request.app[CONFIG].court_cert_path
    checked = []
    for act in acts:
        try:
            data = await asyncio.to_thread((folder / act.path).read_bytes)
        except OSError:
            checked.append((act, False))
            continue
        checked.append((act, await signature_holds(data, cert, act.signer_cert_pem)))
    return checked


def _signing_password(request: web.Request) -> str | None:
    raw = request.headers.get(SIGNING_PASSWORD_HEADER)
    return None if raw is None else unquote(raw)


async def _signer(call: Call, hearing_id: str, data: bytes, title: str) -> tuple[SimpleSigner, str | None]:
    """The judge's own signer (unlocked by their password) or the court's; with the judge's certificate."""
    config = call.config
    async with call.reading() as db:
        key = await judge_keys.get_key(db, call.user.id)
    if key is None:
        if not config.acts_court_key_fallback:
            raise Conflict(
                "you have no signing key and the court's key is not used for acts", code="no_signing_key"
            )
        await call.request.app[SEALER].signer()  # makes the development court pair on first use
        return court_signer(config.court_cert_path, config.court_key_path), None
    password = _signing_password(call.request)
    if not password:
        raise Forbidden(
            f"give your password ({SIGNING_PASSWORD_HEADER}) to sign with your certificate",
            code="signing_password_required",
        )
    now = datetime.now(UTC)
    if not key.not_before <= now <= key.not_after:
        raise Conflict(
            f"your signing certificate is valid from {key.not_before:%Y-%m-%d} to {key.not_after:%Y-%m-%d}, "
            "not now; upload a current one",
            code="signing_certificate_expired",
        )
    trust = await court_trust(call)
    if trust is not None:
        try:
            await check_chain(key.cert_pem, key.chain_pem, trust, now)
        except CertificateRevoked as exc:
            raise Conflict(
                f"{exc.message}; it no longer signs: upload the certificate that replaces it",
                code="signing_certificate_revoked",
            ) from exc
        except CertificateUntrusted as exc:
            raise Conflict(
                f"{exc.message}; upload a certificate issued by one of the court's CAs",
                code="signing_certificate_untrusted",
            ) from exc
    limiter = call.request.app[LOGIN_LIMITER]
    ip = client_ip(call.request)
    limiter.check(call.user.username, ip)
    try:
        key_der = await asyncio.to_thread(unwrap_key, key.wrapped_key, password, call.user.id)
    except WrongPassword as exc:
        limiter.failed(call.user.username, ip)
        raise SigningPasswordWrong("the password is wrong; the act was not signed") from exc
    limiter.succeeded(call.user.username, ip)
    return judge_signer(key_der, key.cert_pem, key.chain_pem), key.cert_pem


async def _signing_failed(call: Call, hearing_id: str, title: str, data: bytes, exc: HearingError) -> None:
    """Log a refused signature in the hearing's confirmation log (the reason, never the password)."""
    log.warning("act of hearing %s not signed by %s: %s", hearing_id, call.user.username, exc.code)
    try:
        await call.request.app[EVENTS].record(
            hearing_id,
            EventType.ACT_SIGNING_FAILED,
            actor=call.user.username,
            details={
                "reason": exc.code,
                "title": title,
                "original_sha256": hashlib.sha256(data).hexdigest(),
                "ip": client_ip(call.request),
                "user_agent": user_agent(call.request),
            },
        )
    except (OSError, ValueError):
        log.exception("act_signing_failed of hearing %s could not be logged", hearing_id)


@endpoint(
    "POST",
    LIST,
    access=ACT_SIGNERS,
    guard=presiding_judge_only,
    tag=TAG,
    raw=True,
    status=201,
    response=ActOut,
    summary="Upload a court act (application/pdf body; ?title=…&file_name=…); the server signs it PAdES "
    "with the judge's own certificate (their password, percent-encoded, in X-Signing-Password) or the "
    "court's key. After the seal, the act is sealed as an addendum chained to the seal.",
)
async def upload_act(request: web.Request) -> web.StreamResponse:
    call = Call(request=request, session=await current_session(request))
    config = call.config
    title = request.query.get("title", "").strip()
    if not 1 <= len(title) <= 200 or any(ord(ch) < 32 for ch in title):
        raise InvalidInput("give the act a title of 1 to 200 characters (?title=…)", code="invalid_input")
    file_name = _file_name(request.query.get("file_name", "") or title)
    hearing_id = call.path_id("hearing_id")
    async with call.reading() as db:
        hearing = await hearings.get_visible(db, hearing_id, config.court_name)
    if hearing.status in CLOSED:
        raise Conflict(f"the hearing is {hearing.status}; it takes no acts", code="acts_closed")
    try:
        data = await _read_pdf(request, config.act_max_bytes)
        pages = await asyncio.to_thread(check_pdf, data)
    except HearingError as exc:
        log.warning(
            "act upload by %s for hearing %s refused: %s (%s)", call.user.username, hearing.id, exc.code, exc
        )
        raise
    try:
        signer, signer_cert_pem = await _signer(call, hearing.id, data, title)
    except HearingError as exc:
        await _signing_failed(call, hearing.id, title, data, exc)
        raise
    signed = await asyncio.to_thread(sign_act, data, signer=signer, court=config.court_name, reason=title)
    act = Act(
        id=new_id(),
        hearing_id=hearing.id,
        title=title,
        file_name=file_name,
        pages=pages,
        original_size=len(data),
        original_sha256=hashlib.sha256(data).hexdigest(),
        signed_size=len(signed.data),
        signed_sha256=hashlib.sha256(signed.data).hexdigest(),
        signer_subject=signed.signer_subject,
        signer_cert_pem=signer_cert_pem,
        signed_at=signed.signed_at,
        uploaded_by=call.user.username,
        created_at=datetime.now(UTC),
    )
    act.path = f"{ACTS_DIR}/{act.id}.pdf"
    folder = await request.app[EVENTS].folder(hearing.id)
    target = folder / act.path
    await asyncio.to_thread(write_durably, target, signed.data)
    addendum: AddendumResult | None = None
    try:
        async with call.transaction() as db:
            current = await hearings.get_visible(db, hearing.id, config.court_name)
            if current.status in CLOSED:
                raise Conflict(f"the hearing was {current.status} meanwhile", code="acts_closed")
            db.add(act)
            signed_details: dict[str, Any] = {
                "act_id": act.id,
                "title": title,
                "file_name": file_name,
                "pages": pages,
                "original_sha256": act.original_sha256,
                "signed_sha256": act.signed_sha256,
                "signed_size": act.signed_size,
                "signer": act.signer_subject,
                "signer_certificate": "judge" if signer_cert_pem else "court",
                "path": act.path,
            }
            sealed = current.status == HearingStatus.SEALED.value
            if not sealed:
                call.record(hearing.id, EventType.ACT_SIGNED, **signed_details)
            await db.flush()
            planned = await notifications.plan_act_notices(
                db, current, act.id, keep_days=config.act_link_days, now=datetime.now(UTC)
            )
            if not sealed:
                record_queued(call, planned)
            else:
                # The sealed log cannot grow: the act's events are sealed in an addendum before the commit.
                events = [
                    AddendumEvent(
                        EventType.ACT_SIGNED.value, call.user.username, _with_client(request, signed_details)
                    )
                ]
                events += [
                    AddendumEvent(EventType.NOTIFICATION_QUEUED.value, call.user.username, _queued(row))
                    for row in planned
                ]
                addendum = await request.app[SEALER].seal_addendum(hearing.id, [act.path], events)
    except BaseException:
        await asyncio.to_thread(target.unlink, missing_ok=True)
        if addendum is not None:
            await asyncio.to_thread(shutil.rmtree, addendum.folder, ignore_errors=True)
        raise
    if planned:
        request.app[NOTIFICATIONS].wake()
    log.info("act %s of hearing %s signed (%d bytes)", act.id, hearing.id, act.signed_size)
    valid = await signature_holds(signed.data, config.court_cert_path, signer_cert_pem)
    return to_response(act_out(act, valid), 201)


def _with_client(request: web.Request, details: dict[str, Any]) -> dict[str, Any]:
    """An event's details with the caller's address and user agent, as the confirmation log has them."""
    return {**details, "ip": client_ip(request), "user_agent": user_agent(request)}


def _queued(row: Notification) -> dict[str, Any]:
    """What ``notification_queued`` records of a planned message."""
    return {
        "party_id": row.party_id,
        "notification_id": row.id,
        "kind": row.kind,
        "channel": row.channel,
        "recipient": row.recipient,
        "language": row.language,
        "due_at": row.next_attempt_at.isoformat(),
    }


@endpoint("GET", LIST, access=HEARING_READERS, tag=TAG, response=ActList, summary="The acts of a hearing.")
async def list_acts(call: Call) -> ActList:
    async with call.reading() as db:
        hearing = await hearings.get_visible(db, call.path_id("hearing_id"), call.config.court_name)
        acts = await _acts_of(db, hearing.id)
    checked = await _checked(call.request, hearing.id, acts)
    return ActList(items=[act_out(act, valid) for act, valid in checked])


async def _acts_of(db: AsyncSession, hearing_id: str) -> list[Act]:
    rows = await db.execute(select(Act).where(Act.hearing_id == hearing_id).order_by(Act.created_at, Act.id))
    return list(rows.scalars())


async def _pdf_response(request: web.Request, hearing_id: str, act: Act) -> web.StreamResponse:
    folder = await request.app[EVENTS].folder(hearing_id)
    path = folder / act.path
    if not path.is_file():
        raise NotFound("the act's file is missing", code="file_not_found")
    return web.FileResponse(
        path,
        headers={
            "Content-Type": "application/pdf",
            "Content-Disposition": content_disposition(act.file_name),
            "Cache-Control": "no-store",
        },
    )


@endpoint(
    "GET",
    PDF,
    access=HEARING_READERS,
    tag=TAG,
    raw=True,
    media_type="application/pdf",
    summary="Download a signed act.",
)
async def download_act(request: web.Request) -> web.StreamResponse:
    call = Call(request=request, session=await current_session(request))
    act_id = call.path_id("act_id")
    async with call.reading() as db:
        hearing = await hearings.get_visible(db, call.path_id("hearing_id"), call.config.court_name)
        act = await db.get(Act, act_id)
    if act is None or act.hearing_id != hearing.id:
        raise NotFound("no such act", code="act_not_found")
    return await _pdf_response(request, hearing.id, act)


@endpoint(
    "GET",
    PARTY_LIST,
    access=PUBLIC,
    tag=TAG,
    response=PartyActList,
    summary="The signed acts of the party's hearing, with their own link (works a while after the hearing).",
)
async def party_acts(call: Call) -> PartyActList:
    token = call.request.match_info.get("token", "")
    async with call.reading() as db:
        _invitation, _party, hearing = await resolve_for_acts(
            db, token, datetime.now(UTC), call.config.act_link_days
        )
        acts = await _acts_of(db, hearing.id)
    checked = await _checked(call.request, hearing.id, acts)
    return PartyActList(
        items=[
            PartyActOut.model_validate(act).model_copy(update={"signature_valid": valid})
            for act, valid in checked
        ]
    )


@endpoint(
    "GET",
    PARTY_PDF,
    access=PUBLIC,
    tag=TAG,
    raw=True,
    media_type="application/pdf",
    summary="Download a signed act with the party's own link; logged as delivered.",
)
async def party_download_act(request: web.Request) -> web.StreamResponse:
    token = request.match_info.get("token", "")
    act_id = request.match_info.get("act_id", "")
    config = request.app[CONFIG]
    async with request.app[SESSIONS]() as db:
        _invitation, party, hearing = await resolve_for_acts(
            db, token, datetime.now(UTC), config.act_link_days
        )
        act = await db.get(Act, act_id) if is_valid_id(act_id) else None
    if act is None or act.hearing_id != hearing.id:
        raise NotFound("no such act", code="act_not_found")
    response = await _pdf_response(request, hearing.id, act)
    details = {
        "act_id": act.id,
        "signed_sha256": act.signed_sha256,
        "ip": client_ip(request),
        "user_agent": user_agent(request),
    }
    if hearing.status != HearingStatus.SEALED.value:
        await request.app[EVENTS].record(
            hearing.id, EventType.ACT_DELIVERED, actor=f"party:{party.id}", party_id=party.id, details=details
        )
    else:
        # A sealed confirmation log cannot grow (its last hash is signed), and a download is no addition to
        # seal as an addendum: the delivery goes to the server's hash-chained access audit instead.
        await request.app[SEALED_ACT_DELIVERIES](
            hearing.id, act.id, f"party:{party.id}", details["ip"], details["user_agent"], act.signed_sha256
        )
    return response


SealedActDelivery = Callable[[str, str, str, str, str, str], Awaitable[None]]
"""Records that a party downloaded an act of a sealed hearing: (hearing id, act id, actor, ip, user agent,
signed SHA-256). The archive's access audit implements it (a sealed confirmation log cannot grow)."""
SEALED_ACT_DELIVERIES: web.AppKey[SealedActDelivery] = web.AppKey("sealed_act_deliveries")

ENDPOINTS = (upload_act, list_acts, download_act, party_acts, party_download_act)
