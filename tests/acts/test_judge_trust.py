"""Judges' certificates must chain to the court's trust roots when a bundle is configured: a certificate from
another CA is refused at upload, a stored one that no longer chains is refused at signing (nothing signed,
the refusal logged), and unreadable roots refuse every certificate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from api_harness import PASSWORD, Api, cheap_passwords
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from judge_certs import issue as issue_cert
from judge_certs import make_ca
from pydantic import ValidationError
from sqlalchemy import func, select
from test_acts import in_session_with_party
from test_judge_keys import acts_count, key_body, log_entries, put_key, sign

from hearing_server.auth.passwords import PASSWORDS
from hearing_server.config import Config
from hearing_server.domain.party import StaffRole
from hearing_server.store.models import JudgeKey
from hearing_server.web.app import create_app


def write_roots(path: Path, *cas: Any) -> Path:
    path.write_bytes(b"".join(cert.public_bytes(serialization.Encoding.PEM) for cert, _key in cas))
    return path


async def keys_stored(api: Api) -> int:
    async with api.db() as db:
        return int((await db.execute(select(func.count()).select_from(JudgeKey))).scalar_one())


async def test_only_certificates_of_the_courts_cas_sign(
    aiohttp_client: Any, config: Config, tmp_path: Path
) -> None:
    court_ca, other_ca = make_ca(), make_ca()
    roots = write_roots(tmp_path / "judge-roots.pem", court_ca)
    app = create_app(
        config.model_copy(update={"court_name": "Алматы қалалық соты", "judge_trust_roots": roots})
    )
    app[PASSWORDS] = cheap_passwords()
    api = Api(await aiohttp_client(app, cookie_jar=aiohttp.DummyCookieJar()))
    _operator, judge, hearing, _party_id, _token = await in_session_with_party(api)

    # A certificate of another CA is refused at upload, with its code, and nothing is stored.
    stranger = await put_key(api, judge, judge.user_id, key_body(issue_cert(ca=other_ca)))
    assert (stranger.status, stranger.code) == (400, "certificate_untrusted"), stranger.json
    assert "does not chain to a CA the court trusts" in stranger.json["error"]["message"]
    assert await keys_stored(api) == 0

    # One of the court's CA is taken, and signs.
    trusted = await put_key(api, judge, judge.user_id, key_body(issue_cert(ca=court_ca)))
    assert trusted.status == 200, trusted.json
    signed = await sign(api, judge, hearing["id"], PASSWORD)
    assert signed.status == 201, signed.json

    # The court stops trusting that CA: the stored key no longer signs, and the refusal is logged.
    write_roots(roots, other_ca)
    refused = await sign(api, judge, hearing["id"], PASSWORD)
    assert (refused.status, refused.code) == (409, "signing_certificate_untrusted"), refused.json
    assert await acts_count(api) == 1
    failed = [e for e in await log_entries(api, hearing["id"]) if e["event"] == "act_signing_failed"]
    assert [e["details"]["reason"] for e in failed] == ["signing_certificate_untrusted"]

    # Roots that cannot be read accept no certificate.
    roots.unlink()
    unreadable = await put_key(api, judge, judge.user_id, key_body(issue_cert(ca=court_ca)))
    assert (unreadable.status, unreadable.code) == (503, "trust_roots_unavailable"), unreadable.json


async def test_without_trust_roots_any_ca_is_accepted(api: Api) -> None:
    judge = await api.who(StaffRole.JUDGE)
    result = await put_key(api, judge, judge.user_id, key_body(issue_cert(ca=make_ca())))
    assert result.status == 200, result.json


def write_crl(
    path: Path, ca: Any, *revoked: x509.Certificate, pem: bool = True, age: timedelta = timedelta(minutes=5)
) -> Path:
    """The CA's revocation list naming ``revoked`` (PEM or DER), issued ``age`` ago for a week."""
    ca_cert, ca_key = ca
    now = datetime.now(UTC)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca_cert.subject)
        .last_update(now - age)
        .next_update(now - age + timedelta(days=7))
    )
    for cert in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(cert.serial_number)
            .revocation_date(now - timedelta(minutes=1))
            .build()
        )
    crl = builder.sign(ca_key, hashes.SHA256())
    path.write_bytes(crl.public_bytes(serialization.Encoding.PEM if pem else serialization.Encoding.DER))
    return path


async def test_a_revoked_certificate_is_refused_at_upload_and_stops_signing(
    aiohttp_client: Any, config: Config, tmp_path: Path
) -> None:
    court_ca = make_ca()
    roots = write_roots(tmp_path / "judge-roots.pem", court_ca)
    crl_path = write_crl(tmp_path / "court-ca.crl", court_ca)
    app = create_app(config.model_copy(update={"judge_trust_roots": roots, "judge_crls": [crl_path]}))
    app[PASSWORDS] = cheap_passwords()
    api = Api(await aiohttp_client(app, cookie_jar=aiohttp.DummyCookieJar()))
    _operator, judge, hearing, _party_id, _token = await in_session_with_party(api)

    # Not on the list: taken, and signs.
    issued = issue_cert(ca=court_ca)
    taken = await put_key(api, judge, judge.user_id, key_body(issued))
    assert taken.status == 200, taken.json
    assert (await sign(api, judge, hearing["id"], PASSWORD)).status == 201

    # The CA revokes it and the court copies in the new list (DER this time): the stored key signs no more,
    # the refusal has its own code and is logged, and nothing is signed.
    write_crl(crl_path, court_ca, issued.cert, pem=False)
    refused = await sign(api, judge, hearing["id"], PASSWORD)
    assert (refused.status, refused.code) == (409, "signing_certificate_revoked"), refused.json
    assert "has been revoked by its CA" in refused.json["error"]["message"]
    assert await acts_count(api) == 1
    failed = [e for e in await log_entries(api, hearing["id"]) if e["event"] == "act_signing_failed"]
    assert [e["details"]["reason"] for e in failed] == ["signing_certificate_revoked"]

    # Uploading it again is refused; the certificate that replaces it is taken and signs.
    again = await put_key(api, judge, judge.user_id, key_body(issued))
    assert (again.status, again.code) == (400, "certificate_revoked"), again.json
    replacement = await put_key(api, judge, judge.user_id, key_body(issue_cert(ca=court_ca)))
    assert replacement.status == 200, replacement.json
    assert (await sign(api, judge, hearing["id"], PASSWORD)).status == 201

    # The court let the list go stale (past its next update): nobody's revocation is known, nothing signs,
    # and the message says what to do; a list of another CA does not stand in for it.
    write_crl(crl_path, court_ca, issued.cert, age=timedelta(days=8))
    stale = await sign(api, judge, hearing["id"], PASSWORD)
    assert (stale.status, stale.code) == (409, "signing_certificate_untrusted"), stale.json
    assert "no current revocation list" in stale.json["error"]["message"]
    write_crl(crl_path, make_ca())
    other = await sign(api, judge, hearing["id"], PASSWORD)
    assert (other.status, other.code) == (409, "signing_certificate_untrusted"), other.json
    fresh = await put_key(api, judge, judge.user_id, key_body(issue_cert(ca=court_ca)))
    assert (fresh.status, fresh.code) == (400, "certificate_revocation_unknown"), fresh.json
    assert await acts_count(api) == 2

    # A list that cannot be read accepts no certificate (as unreadable roots).
    crl_path.write_bytes(b"not a revocation list")
    unreadable = await sign(api, judge, hearing["id"], PASSWORD)
    assert (unreadable.status, unreadable.code) == (503, "trust_roots_unavailable"), unreadable.json
    assert await acts_count(api) == 2


def test_revocation_lists_need_trust_roots(config: Config, tmp_path: Path) -> None:
    crl_path = write_crl(tmp_path / "court-ca.crl", make_ca())
    with pytest.raises(ValidationError, match="judge_crls: revocation is checked on the path"):
        Config.model_validate({**config.model_dump(), "judge_crls": [crl_path], "judge_trust_roots": None})
    with pytest.raises(ValidationError, match="judge_crls: no file at"):
        Config.model_validate({**config.model_dump(), "judge_crls": [tmp_path / "missing.crl"]})
