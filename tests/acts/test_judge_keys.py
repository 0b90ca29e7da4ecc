"""Acts signed with the judge's own certificate: the PKCS#12 upload and its refusals, the key stored only
wrapped under the judge's password, signing with it (pyHanko and pdfsig name the judge), a wrong password
refused and logged, the key surviving a password change, the court's key as the fallback."""

from __future__ import annotations

import asyncio
import base64
import shutil
from datetime import timedelta
from io import BytesIO
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from api_harness import PASSWORD, Api, Who, cheap_passwords
from cryptography.hazmat.primitives import serialization
from judge_certs import JUDGE_NAME, PASSPHRASE, Issued, issue
from pdfs import make_pdf
from pyhanko.keys import load_cert_from_pemder
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import async_validate_pdf_signature
from pyhanko_certvalidator import ValidationContext
from sqlalchemy import func, select
from test_acts import in_session_with_party, upload

from hearing_server.auth.passwords import PASSWORDS
from hearing_server.config import CONFIG, Config
from hearing_server.domain.party import StaffRole
from hearing_server.record.context import SEALER
from hearing_server.record.event_log import EVENTS
from hearing_server.store.models import Act, JudgeKey
from hearing_server.web.app import create_app
from recording.confirmation_log import LOG_FILE_NAME
from recording.hashchain import read_chain

NEW_PASSWORD = "a brand new judge password"  # noqa: S105 (test data)


def key_body(issued: Issued, passphrase: str = PASSPHRASE, password: str = PASSWORD) -> dict[str, str]:
    return {
        "pkcs12": base64.b64encode(issued.p12).decode(),
        "passphrase": passphrase,
        "password": password,
    }


async def put_key(api: Api, who: Who, user_id: str, body: dict[str, str]) -> Any:
    return await api.call("PUT", f"/api/v1/users/{user_id}/signing-key", who, json=body)


async def sign(api: Api, judge: Who, hearing_id: str, password: str | None) -> Any:
    headers = {} if password is None else {"X-Signing-Password": quote(password)}
    params = "title=Шешім&file_name=sheshim.pdf"
    return await api.call(
        "POST",
        f"/api/v1/hearings/{hearing_id}/acts?{params}",
        judge,
        data=make_pdf("Sheshim"),
        headers={"Content-Type": "application/pdf", **headers},
    )


async def acts_count(api: Api) -> int:
    async with api.db() as db:
        return int((await db.execute(select(func.count()).select_from(Act))).scalar_one())


async def log_entries(api: Api, hearing_id: str) -> list[dict[str, Any]]:
    return read_chain((await api.app[EVENTS].folder(hearing_id)) / LOG_FILE_NAME)


async def pdfsig(api: Api, data: bytes) -> str:
    path = api.app[CONFIG].data_dir / "signed-by-judge.pdf"
    path.write_bytes(data)
    process = await asyncio.create_subprocess_exec("pdfsig", str(path), stdout=asyncio.subprocess.PIPE)
    report = (await process.communicate())[0].decode()
    assert process.returncode == 0
    return report


async def test_a_judge_uploads_their_key_and_only_the_certificate_is_shown(api: Api) -> None:
    judge = await api.who(StaffRole.JUDGE)
    issued = issue()
    result = await put_key(api, judge, judge.user_id, key_body(issued))
    assert result.status == 200, result.json
    shown = result.json
    assert shown["common_name"] == JUDGE_NAME and f"CN={JUDGE_NAME}" in shown["subject"]
    assert "CN=Test Court CA" in shown["issuer"]
    der = issued.cert.public_bytes(serialization.Encoding.DER)
    import hashlib

    assert shown["fingerprint_sha256"] == hashlib.sha256(der).hexdigest()
    assert set(shown) == {
        "subject", "common_name", "issuer", "not_before", "not_after", "fingerprint_sha256",
        "uploaded_by", "uploaded_at",
    }  # fmt: skip
    again = await api.call("GET", f"/api/v1/users/{judge.user_id}/signing-key", judge)
    assert again.status == 200 and again.json == shown

    # The key is not stored in the clear: not in the row, not anywhere in an SQLite database file.
    async with api.db() as db:
        row = await db.get(JudgeKey, judge.user_id)
        assert row is not None
        stored = row.wrapped_key + row.cert_pem.encode() + row.chain_pem.encode()
    for clear in issued.key_ders():
        assert clear not in stored
    database = api.app[CONFIG].database_url
    if database.startswith("sqlite"):
        db_file = Path(database.split("///", 1)[1])
        raw = b"".join(p.read_bytes() for p in db_file.parent.glob(db_file.name + "*"))
        assert row.wrapped_key in raw  # the search looks at the right bytes
        for clear in issued.key_ders():
            assert clear not in raw


@pytest.mark.parametrize(
    ("make", "passphrase", "code"),
    [
        (lambda: issue(), "not the passphrase", "wrong_passphrase"),
        (lambda: issue(not_before=timedelta(-400), not_after=timedelta(-1)), None, "certificate_not_valid_now"),  # noqa: E501
        (lambda: issue(not_before=timedelta(days=2)), None, "certificate_not_valid_now"),
        (lambda: issue(wrong_key=True), None, "key_cert_mismatch"),
        (lambda: issue(digital_signature=False), None, "certificate_key_usage"),
    ],
    ids=["wrong-passphrase", "expired", "not-yet-valid", "key-cert-mismatch", "no-signing-usage"],
)  # fmt: skip
async def test_a_bad_pkcs12_is_refused_and_nothing_is_stored(
    api: Api, make: Any, passphrase: str | None, code: str
) -> None:
    judge = await api.who(StaffRole.JUDGE)
    body = key_body(make())
    if passphrase is not None:
        body["passphrase"] = passphrase
    result = await put_key(api, judge, judge.user_id, body)
    assert (result.status, result.code) == (400, code), result.json
    assert (
        await api.call("GET", f"/api/v1/users/{judge.user_id}/signing-key", judge)
    ).code == "no_signing_key"


async def test_not_a_pkcs12_and_a_wrong_login_password_are_refused(api: Api) -> None:
    judge = await api.who(StaffRole.JUDGE)
    body = key_body(issue()) | {"pkcs12": base64.b64encode(make_pdf()).decode()}
    assert (await put_key(api, judge, judge.user_id, body)).code == "not_pkcs12"
    body["pkcs12"] = "this is not base64!"
    assert (await put_key(api, judge, judge.user_id, body)).code == "not_pkcs12"
    wrong = await put_key(api, judge, judge.user_id, key_body(issue(), password="not my password at all"))
    assert (wrong.status, wrong.code) == (403, "signing_password_wrong")
    async with api.db() as db:
        assert (await db.execute(select(func.count()).select_from(JudgeKey))).scalar_one() == 0


async def test_who_may_manage_a_signing_key(api: Api) -> None:
    judge, other_judge = await api.who(StaffRole.JUDGE), await api.who(StaffRole.JUDGE)
    admin, operator = await api.who(StaffRole.ADMIN), await api.who(StaffRole.OPERATOR)
    body = key_body(issue())
    assert (await put_key(api, other_judge, judge.user_id, body)).status == 403
    assert (await put_key(api, operator, judge.user_id, body)).status == 403
    # An admin uploads it for the judge, who types their own password.
    assert (await put_key(api, admin, judge.user_id, body)).status == 200
    assert (await put_key(api, admin, operator.user_id, body)).code == "not_a_judge"
    assert (await api.call("GET", f"/api/v1/users/{judge.user_id}/signing-key", other_judge)).status == 403
    removed = await api.call("DELETE", f"/api/v1/users/{judge.user_id}/signing-key", judge)
    assert removed.status == 204
    assert (await api.call("GET", f"/api/v1/users/{judge.user_id}/signing-key", admin)).status == 404


async def test_the_judge_signs_with_their_own_certificate(api: Api) -> None:
    _operator, judge, hearing, _party_id, token = await in_session_with_party(api)
    issued = issue()
    assert (await put_key(api, judge, judge.user_id, key_body(issued))).status == 200

    result = await sign(api, judge, hearing["id"], PASSWORD)
    assert result.status == 201, result.json
    act = result.json
    assert act["signer_subject"] == JUDGE_NAME and act["signature_valid"] is True
    signed = (await api.call("GET", f"/api/v1/hearings/{hearing['id']}/acts/{act['id']}/pdf", judge)).body

    # pyHanko: trusted by the judge's CA, the signer is the judge's certificate, the whole file, PAdES.
    [signature] = PdfFileReader(BytesIO(signed)).embedded_signatures
    ca = issued.ca_cert.public_bytes(serialization.Encoding.PEM)
    ca_path = api.app[CONFIG].data_dir / "judge-ca.pem"
    ca_path.write_bytes(ca)
    status = await async_validate_pdf_signature(
        signature, ValidationContext(trust_roots=[load_cert_from_pemder(str(ca_path))])
    )
    assert status.intact and status.valid and status.trusted and status.bottom_line
    assert status.coverage is not None and status.coverage.name == "ENTIRE_FILE"
    assert status.signing_cert.dump() == issued.cert.public_bytes(serialization.Encoding.DER)
    # Not the court's key: the court's certificate does not vouch for it.
    await api.app[SEALER].signer()
    court = await async_validate_pdf_signature(
        signature,
        ValidationContext(trust_roots=[load_cert_from_pemder(str(api.app[CONFIG].court_cert_path))]),
    )
    assert not court.trusted

    if shutil.which("pdfsig"):
        report = await pdfsig(api, signed)
        assert f"Signer Certificate Common Name: {JUDGE_NAME}" in report
        assert "Signature Validation: Signature is Valid." in report and "Total document signed" in report

    # The party's page and the staff list name the judge and say the signature holds.
    party = await api.call("GET", f"/api/v1/join/{token}/acts")
    assert [(a["signer_subject"], a["signature_valid"]) for a in party.json["items"]] == [(JUDGE_NAME, True)]
    staff = await api.call("GET", f"/api/v1/hearings/{hearing['id']}/acts", judge)
    assert [(a["signer_subject"], a["signature_valid"]) for a in staff.json["items"]] == [(JUDGE_NAME, True)]
    [entry] = [e for e in await log_entries(api, hearing["id"]) if e["event"] == "act_signed"]
    assert entry["details"]["signer"] == JUDGE_NAME and entry["details"]["signer_certificate"] == "judge"


async def test_a_wrong_or_missing_password_signs_nothing_and_is_logged(api: Api) -> None:
    _operator, judge, hearing, _party_id, _token = await in_session_with_party(api)
    assert (await put_key(api, judge, judge.user_id, key_body(issue()))).status == 200
    folder = await api.app[EVENTS].folder(hearing["id"])

    wrong = await sign(api, judge, hearing["id"], "Not-The-Password-42")
    assert (wrong.status, wrong.code) == (403, "signing_password_wrong")
    missing = await sign(api, judge, hearing["id"], None)
    assert (missing.status, missing.code) == (403, "signing_password_required")
    assert await acts_count(api) == 0
    assert not (folder / "acts").exists() or list((folder / "acts").iterdir()) == []
    failed = [e for e in await log_entries(api, hearing["id"]) if e["event"] == "act_signing_failed"]
    assert [e["details"]["reason"] for e in failed] == ["signing_password_wrong", "signing_password_required"]
    assert failed[0]["actor"] == judge.username
    assert "Not-The-Password-42" not in (folder / LOG_FILE_NAME).read_text(encoding="utf-8")


async def test_wrong_signing_passwords_are_rate_limited_like_logins(api: Api) -> None:
    _operator, judge, hearing, _party_id, _token = await in_session_with_party(api)
    assert (await put_key(api, judge, judge.user_id, key_body(issue()))).status == 200
    codes = [(await sign(api, judge, hearing["id"], f"wrong password {n}")).code for n in range(12)]
    assert "rate_limited" in codes
    # Even the right password waits until the window has passed.
    assert (await sign(api, judge, hearing["id"], PASSWORD)).code == "rate_limited"


async def test_an_expired_certificate_does_not_sign(api: Api) -> None:
    _operator, judge, hearing, _party_id, _token = await in_session_with_party(api)
    # A certificate that runs out seconds after the upload.
    assert (
        await put_key(api, judge, judge.user_id, key_body(issue(not_after=timedelta(seconds=3))))
    ).status == 200
    await asyncio.sleep(3.5)
    result = await sign(api, judge, hearing["id"], PASSWORD)
    assert (result.status, result.code) == (409, "signing_certificate_expired")
    assert await acts_count(api) == 0
    [failed] = [e for e in await log_entries(api, hearing["id"]) if e["event"] == "act_signing_failed"]
    assert failed["details"]["reason"] == "signing_certificate_expired"


async def test_the_key_survives_a_password_change(api: Api) -> None:
    _operator, judge, hearing, _party_id, _token = await in_session_with_party(api)
    assert (await put_key(api, judge, judge.user_id, key_body(issue()))).status == 200
    async with api.db() as db:
        before = (await db.get(JudgeKey, judge.user_id)).wrapped_key
    changed = await api.call(
        "POST",
        "/api/v1/auth/password",
        judge,
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
    )
    assert changed.status == 204, changed.json
    async with api.db() as db:
        assert (await db.get(JudgeKey, judge.user_id)).wrapped_key != before
    assert (await sign(api, judge, hearing["id"], PASSWORD)).code == "signing_password_wrong"
    result = await sign(api, judge, hearing["id"], NEW_PASSWORD)
    assert result.status == 201 and result.json["signer_subject"] == JUDGE_NAME


async def test_an_admin_password_reset_drops_the_key(api: Api) -> None:
    judge = await api.who(StaffRole.JUDGE)
    admin = await api.who(StaffRole.ADMIN)
    assert (await put_key(api, judge, judge.user_id, key_body(issue()))).status == 200
    reset = await api.call("PATCH", f"/api/v1/users/{judge.user_id}", admin, json={"password": NEW_PASSWORD})
    assert reset.status == 200
    assert (
        await api.call("GET", f"/api/v1/users/{judge.user_id}/signing-key", admin)
    ).code == "no_signing_key"


async def test_an_account_that_is_no_longer_a_judge_loses_the_key(api: Api) -> None:
    judge = await api.who(StaffRole.JUDGE)
    admin = await api.who(StaffRole.ADMIN)
    assert (await put_key(api, judge, judge.user_id, key_body(issue()))).status == 200
    changed = await api.call("PATCH", f"/api/v1/users/{judge.user_id}", admin, json={"role": "operator"})
    assert changed.status == 200
    async with api.db() as db:
        assert await db.get(JudgeKey, judge.user_id) is None


async def test_a_judge_without_a_key_and_no_fallback_cannot_sign(aiohttp_client: Any, config: Config) -> None:
    app = create_app(config.model_copy(update={"acts_court_key_fallback": False}))
    app[PASSWORDS] = cheap_passwords()
    api = Api(await aiohttp_client(app, cookie_jar=aiohttp.DummyCookieJar()))
    _operator, judge, hearing, _party_id, _token = await in_session_with_party(api)
    result = await upload(api, judge, hearing["id"], make_pdf())
    assert (result.status, result.code) == (409, "no_signing_key")
    assert await acts_count(api) == 0
    [failed] = [e for e in await log_entries(api, hearing["id"]) if e["event"] == "act_signing_failed"]
    assert failed["details"]["reason"] == "no_signing_key"
