"""A judge's own signing key: uploaded as PKCS#12 by the judge (or an admin, with the judge typing their
password), stored wrapped under the judge's login password; only the certificate is ever shown back."""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from datetime import UTC, datetime

from aiohttp import web

from hearing_server.api.call import Call
from hearing_server.api.registry import endpoint
from hearing_server.api.schemas import SigningKeyIn, SigningKeyOut
from hearing_server.auth.access import ACT_SIGNERS
from hearing_server.auth.cert_chain import CourtTrust, TrustRootsUnavailable, check_chain, load_trust
from hearing_server.auth.client import client_ip
from hearing_server.auth.judge_keys import KeyRejected, check_pkcs12
from hearing_server.auth.passwords import PASSWORDS
from hearing_server.auth.ratelimit import LOGIN_LIMITER
from hearing_server.domain.errors import Forbidden, HearingError, InvalidInput, NotFound
from hearing_server.domain.party import StaffRole
from hearing_server.services import judge_keys, users
from hearing_server.store.models import User

TAG = "users"
PATH = "/api/v1/users/{user_id}/signing-key"
log = logging.getLogger(__name__)


class SigningPasswordWrong(Forbidden):
    """The judge's password does not match (counts towards the login rate limit)."""

    code = "signing_password_wrong"


def _may_manage(call: Call, user_id: str) -> None:
    # Admins manage anyone's key; a judge only their own.
    if call.user.role != StaffRole.ADMIN.value and call.user.id != user_id:
        raise Forbidden("a judge manages only their own signing key", code="forbidden")


async def check_password(call: Call, user: User, password: str) -> None:
    """Raise :class:`SigningPasswordWrong` unless ``password`` is ``user``'s; limited like logins."""
    limiter = call.request.app[LOGIN_LIMITER]
    ip = client_ip(call.request)
    limiter.check(user.username, ip)
    if not await call.request.app[PASSWORDS].verify(user.password_hash, password):
        limiter.failed(user.username, ip)
        raise SigningPasswordWrong(f"the password of {user.username} is wrong")
    limiter.succeeded(user.username, ip)


async def court_trust(call: Call) -> CourtTrust | None:
    """The CAs judges' certificates must chain to (``judge_trust_roots``) and their revocation lists
    (``judge_crls``), read afresh (the court replaces the files); None when no roots are set."""
    path = call.config.judge_trust_roots
    if path is None:
        return None
    try:
        return await asyncio.to_thread(load_trust, path, call.config.judge_crls)
    except TrustRootsUnavailable:
        log.exception("judge trust roots or revocation lists unreadable")
        raise


def key_out(row: object) -> SigningKeyOut:
    """The stored certificate as shown."""
    return SigningKeyOut.model_validate(row)


@endpoint(
    "PUT",
    PATH,
    access=ACT_SIGNERS,
    tag=TAG,
    body=SigningKeyIn,
    response=SigningKeyOut,
    no_store=True,
    summary="Upload a judge's PKCS#12 (admin, or the judge for themself): checked, then kept with the key "
    "wrapped under the judge's login password (given in the body). Only the certificate is shown back.",
)
async def put_signing_key(call: Call) -> SigningKeyOut:
    body: SigningKeyIn = call.body
    user_id = call.path_id("user_id")
    _may_manage(call, user_id)
    now = datetime.now(UTC)
    try:
        async with call.reading() as db:
            user = await users.get_user(db, user_id)
        if user.role != StaffRole.JUDGE.value:
            raise InvalidInput("only judges' accounts hold signing keys", code="not_a_judge")
        try:
            data = base64.b64decode(body.pkcs12, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise KeyRejected("the pkcs12 field is not base64", code="not_pkcs12") from exc
        checked = await asyncio.to_thread(check_pkcs12, data, body.passphrase, now)
        trust = await court_trust(call)
        if trust is not None:
            await check_chain(checked.certificate.cert_pem, checked.certificate.chain_pem, trust, now)
        await check_password(call, user, body.password)
        async with call.transaction() as db:
            user = await users.get_user(db, user_id)
            row = await judge_keys.store_key(
                db, user, checked, body.password, uploaded_by=call.user.username, now=now
            )
            shown = key_out(row)
    except HearingError as exc:
        log.warning(
            "signing key for account %s refused (by %s): %s (%s)", user_id, call.user.username, exc.code, exc
        )
        raise
    log.info(
        "signing key of %s stored by %s: %s, sha256 %s",
        user.username,
        call.user.username,
        shown.subject,
        shown.fingerprint_sha256,
    )
    return shown


@endpoint(
    "GET",
    PATH,
    access=ACT_SIGNERS,
    tag=TAG,
    response=SigningKeyOut,
    summary="A judge's signing certificate (admin, or the judge); 404 no_signing_key when none is stored.",
)
async def get_signing_key(call: Call) -> SigningKeyOut:
    user_id = call.path_id("user_id")
    _may_manage(call, user_id)
    async with call.reading() as db:
        await users.get_user(db, user_id)
        row = await judge_keys.get_key(db, user_id)
        if row is None:
            raise NotFound("no signing key is stored for this account", code="no_signing_key")
        return key_out(row)


@endpoint(
    "DELETE",
    PATH,
    access=ACT_SIGNERS,
    tag=TAG,
    status=204,
    summary="Forget a judge's signing key (admin, or the judge); acts then fall back to the court's key.",
)
async def delete_signing_key(call: Call) -> web.StreamResponse:
    user_id = call.path_id("user_id")
    _may_manage(call, user_id)
    async with call.transaction() as db:
        await users.get_user(db, user_id)
        if not await judge_keys.remove(db, user_id):
            raise NotFound("no signing key is stored for this account", code="no_signing_key")
    log.info("signing key of account %s removed by %s", user_id, call.user.username)
    return web.Response(status=204)


ENDPOINTS = (put_signing_key, get_signing_key, delete_signing_key)
