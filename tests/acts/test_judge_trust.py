"""Judges' certificates must chain to the court's trust roots when a bundle is configured: a certificate from
another CA is refused at upload, a stored one that no longer chains is refused at signing (nothing signed,
the refusal logged), and unreadable roots refuse every certificate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
from api_harness import PASSWORD, Api, cheap_passwords
from cryptography.hazmat.primitives import serialization
from judge_certs import issue as issue_cert
from judge_certs import make_ca
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
