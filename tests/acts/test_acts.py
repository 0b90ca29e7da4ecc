"""Court acts: a judge uploads a PDF, the court's key signs it PAdES (validated by pyHanko and by poppler's
pdfsig), the party downloads it with their own link, and the hearing's seal covers it.  Bad uploads —
not a PDF, too large, JavaScript or a launch action (even #-escaped), a broken xref — are refused and
leave nothing behind."""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import zipfile
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from api_harness import Api, Who
from pdfs import make_pdf, with_broken_xref, with_hidden_javascript, with_javascript, with_launch
from pyhanko.keys import load_cert_from_pemder
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import async_validate_pdf_signature
from pyhanko_certvalidator import ValidationContext
from sqlalchemy import func, select, update

from archive.audit import audit_path
from archive.package import verify_package
from hearing_server.config import CONFIG
from hearing_server.domain.party import StaffRole
from hearing_server.record.context import SEALER
from hearing_server.record.event_log import EVENTS
from hearing_server.store.models import Act, Hearing
from recording.confirmation_log import LOG_FILE_NAME
from recording.hashchain import read_chain
from recording.verify import verify_hearing


async def set_status(api: Api, hearing_id: str, status: str) -> None:
    async with api.db() as db, db.begin():
        await db.execute(update(Hearing).where(Hearing.id == hearing_id).values(status=status))


async def upload(api: Api, who: Who, hearing_id: str, data: bytes, **query: str) -> Any:
    params = {"title": "Решение по делу", "file_name": "reshenie.pdf"} | query
    path = f"/api/v1/hearings/{hearing_id}/acts?" + "&".join(f"{k}={v}" for k, v in params.items())
    return await api.call("POST", path, who, data=data, headers={"Content-Type": "application/pdf"})


async def validate(data: bytes, cert_path: Path) -> Any:
    """pyHanko's own validation of the act's one signature, trusting the court certificate."""
    [signature] = PdfFileReader(BytesIO(data)).embedded_signatures
    return await async_validate_pdf_signature(
        signature, ValidationContext(trust_roots=[load_cert_from_pemder(str(cert_path))])
    )


async def in_session_with_party(api: Api) -> tuple[Who, Who, dict[str, Any], str, str]:
    operator = await api.who(StaffRole.OPERATOR)
    judge = await api.who(StaffRole.JUDGE)
    hearing = await api.schedule(operator, case_number="2-640/2026")
    party = await api.add_party(operator, hearing["id"], language="kk")
    issued = await api.issue(operator, hearing["id"], party["id"])
    await set_status(api, hearing["id"], "in_session")
    return operator, judge, hearing, party["id"], issued["url"].rsplit("/join/", 1)[1]


async def test_judge_signs_an_act_and_the_party_downloads_it(api: Api) -> None:
    _operator, judge, hearing, party_id, token = await in_session_with_party(api)
    original = make_pdf("Sheshim")
    result = await upload(api, judge, hearing["id"], original)
    assert result.status == 201, result.json
    act = result.json
    assert act["title"] == "Решение по делу" and act["file_name"] == "reshenie.pdf" and act["pages"] == 1
    assert act["original_sha256"] == hashlib.sha256(original).hexdigest()
    assert "Алматы қалалық соты" in act["signer_subject"]
    assert act["signature_valid"] is True

    # The party sees and downloads it with their own link.
    listed = await api.call("GET", f"/api/v1/join/{token}/acts")
    assert listed.status == 200 and [a["id"] for a in listed.json["items"]] == [act["id"]]
    assert "original_sha256" not in listed.json["items"][0]
    assert listed.json["items"][0]["signature_valid"] is True
    download = await api.call("GET", f"/api/v1/join/{token}/acts/{act['id']}/pdf")
    assert download.status == 200 and download.headers["Content-Type"] == "application/pdf"
    assert 'filename="reshenie.pdf"' in download.headers["Content-Disposition"]
    signed = download.body
    assert hashlib.sha256(signed).hexdigest() == act["signed_sha256"]
    assert signed[: len(original)] == original  # the uploaded document is the first revision, untouched

    # pyHanko: intact, valid, trusted (the court certificate), covering the whole file, PAdES.
    status = await validate(signed, api.app[CONFIG].court_cert_path)
    assert status.intact and status.valid and status.trusted and status.bottom_line
    assert status.coverage.name == "ENTIRE_FILE"
    assert (
        PdfFileReader(BytesIO(signed)).embedded_signatures[0].sig_object["/SubFilter"]
        == "/ETSI.CAdES.detached"
    )

    # A second tool: poppler's pdfsig.
    if shutil.which("pdfsig"):
        path = api.app[CONFIG].data_dir / "downloaded.pdf"
        path.write_bytes(signed)
        process = await asyncio.create_subprocess_exec("pdfsig", str(path), stdout=asyncio.subprocess.PIPE)
        report = (await process.communicate())[0].decode()
        assert process.returncode == 0
        assert "Signature Validation: Signature is Valid." in report
        assert "Total document signed" in report and "ETSI.CAdES.detached" in report

    entries = read_chain((await api.app[EVENTS].folder(hearing["id"])) / LOG_FILE_NAME)
    [signed_entry] = [e for e in entries if e["event"] == "act_signed"]
    assert signed_entry["details"]["signed_sha256"] == act["signed_sha256"]
    assert signed_entry["actor"] == judge.username
    [delivered] = [e for e in entries if e["event"] == "act_delivered"]
    assert delivered["party_id"] == party_id and delivered["details"]["act_id"] == act["id"]
    assert delivered["details"]["signed_sha256"] == act["signed_sha256"]


async def test_the_seal_covers_the_act_and_the_link_still_fetches_it_afterwards(api: Api) -> None:
    _operator, judge, hearing, party_id, token = await in_session_with_party(api)
    act = (await upload(api, judge, hearing["id"], make_pdf())).json
    await set_status(api, hearing["id"], "ended")
    outcome = await api.app[SEALER].seal(hearing["id"])
    manifest = json.loads((outcome.folder / "manifest.json").read_text(encoding="utf-8"))
    [entry] = [f for f in manifest["files"] if f["path"] == f"acts/{act['id']}.pdf"]
    assert entry["sha256"] == act["signed_sha256"]
    assert verify_hearing(outcome.folder, api.app[CONFIG].court_cert_path).valid

    # After the seal: the link still fetches the act; the delivery goes to the access audit, the sealed
    # log stays as sealed.
    download = await api.call("GET", f"/api/v1/join/{token}/acts/{act['id']}/pdf")
    assert download.status == 200 and hashlib.sha256(download.body).hexdigest() == act["signed_sha256"]
    assert verify_hearing(outcome.folder, api.app[CONFIG].court_cert_path).valid
    audit = read_chain(audit_path(api.app[CONFIG].data_dir))
    assert [(e["action"], e["actor"], e["target"]) for e in audit if e["action"] == "act_delivered"] == [
        ("act_delivered", f"party:{party_id}", act["id"])
    ]
    # An act after the seal is sealed as an addendum chained to the seal; the sealed log stays as sealed.
    sealed_log = (outcome.folder / LOG_FILE_NAME).read_bytes()
    late = await upload(api, judge, hearing["id"], make_pdf(), title="Дополнительное определение")
    assert late.status == 201, late.json
    late_act = late.json
    assert (outcome.folder / LOG_FILE_NAME).read_bytes() == sealed_log
    addendum = outcome.folder / "addenda" / "1"
    added = json.loads((addendum / "manifest.json").read_bytes())
    assert [(f["path"], f["sha256"]) for f in added["files"]] == [
        (f"acts/{late_act['id']}.pdf", late_act["signed_sha256"])
    ]
    assert (
        added["seal"]["sha256"] == hashlib.sha256((outcome.folder / "manifest.json").read_bytes()).hexdigest()
    )
    [signed_entry] = read_chain(addendum / "log.jsonl")[:1]
    assert signed_entry["event"] == "act_signed" and signed_entry["actor"] == judge.username
    assert signed_entry["details"]["act_id"] == late_act["id"]
    report = verify_hearing(outcome.folder, api.app[CONFIG].court_cert_path)
    assert report.valid and report.addenda == 1, report.problems
    if shutil.which("openssl"):
        process = await asyncio.create_subprocess_exec(
            "openssl", "cms", "-verify", "-binary", "-content", "manifest.json", "-in", "manifest.json.p7s",
            "-inform", "DER", "-CAfile", str(api.app[CONFIG].court_cert_path), "-purpose", "any",
            "-out", "/dev/null", cwd=addendum, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert b"Verification successful" in (await process.communicate())[1] and process.returncode == 0
    listed = (await api.call("GET", f"/api/v1/join/{token}/acts")).json
    assert [a["id"] for a in listed["items"]] == [act["id"], late_act["id"]]

    # The archive's export package carries the act and verifies.
    archivist = await api.who(StaffRole.ARCHIVIST)
    exported = await api.call("GET", f"/api/v1/archive/hearings/{hearing['id']}/export", archivist)
    assert exported.status == 200, exported.body[:300]
    package = api.app[CONFIG].data_dir / "package.zip"
    await asyncio.to_thread(package.write_bytes, exported.body)
    with zipfile.ZipFile(package) as archive:
        for one in (act, late_act):
            [inside] = [n for n in archive.namelist() if n.endswith(f"acts/{one['id']}.pdf")]
            assert hashlib.sha256(archive.read(inside)).hexdigest() == one["signed_sha256"]
        assert any(n.endswith("hearing/addenda/1/manifest.json.p7s") for n in archive.namelist())
    packaged = verify_package(package, api.app[CONFIG].court_cert_path)
    assert packaged.valid and packaged.hearing is not None and packaged.hearing.addenda == 1, (
        packaged.to_dict()
    )

    # The late act changed on disk is named.
    late_path = outcome.folder / "acts" / f"{late_act['id']}.pdf"
    late_path.write_bytes(late_path.read_bytes().replace(b"%%EOF", b"%%EOX"))
    problems = verify_hearing(outcome.folder, api.app[CONFIG].court_cert_path).problems
    assert [(p.kind.value, p.path) for p in problems] == [("file_hash_changed", f"acts/{late_act['id']}.pdf")]


async def test_an_act_whose_addendum_cannot_be_sealed_leaves_nothing(api: Api) -> None:
    _operator, judge, hearing, _party_id, _token = await in_session_with_party(api)
    await set_status(api, hearing["id"], "ended")
    outcome = await api.app[SEALER].seal(hearing["id"])
    (outcome.folder / "addenda").write_bytes(b"a file where the addenda folder belongs")
    refused = await upload(api, judge, hearing["id"], make_pdf())
    assert (refused.status, refused.code) == (503, "addendum_unavailable"), refused.json
    async with api.db() as db:
        assert await db.scalar(select(func.count()).select_from(Act)) == 0
    assert not any((outcome.folder / "acts").glob("*"))  # the signed act file was removed again
    (outcome.folder / "addenda").unlink()
    assert verify_hearing(outcome.folder, api.app[CONFIG].court_cert_path).valid


async def test_a_cancelled_hearing_takes_no_act(api: Api) -> None:
    _operator, judge, hearing, _party_id, _token = await in_session_with_party(api)
    await set_status(api, hearing["id"], "cancelled")
    refused = await upload(api, judge, hearing["id"], make_pdf())
    assert (refused.status, refused.code) == (409, "acts_closed")
    async with api.db() as db:
        assert await db.scalar(select(func.count()).select_from(Act)) == 0
    assert not (await api.app[EVENTS].folder(hearing["id"]) / "acts").exists()


@pytest.mark.parametrize(
    ("data", "content_type", "status", "code"),
    [
        (b"GIF89a not a pdf", "application/pdf", 400, "not_pdf"),
        (make_pdf(), "application/octet-stream", 415, "unsupported_media_type"),
        (make_pdf() + b"%" + b"x" * 200_000, "application/pdf", 413, "act_too_large"),
        (with_javascript(), "application/pdf", 400, "pdf_active_content"),
        (with_hidden_javascript(), "application/pdf", 400, "pdf_active_content"),
        (with_launch(), "application/pdf", 400, "pdf_active_content"),
        (with_broken_xref(), "application/pdf", 400, "pdf_damaged"),
    ],
    ids=["not-pdf", "wrong-type", "too-large", "javascript", "escaped-javascript", "launch", "broken-xref"],
)
async def test_bad_uploads_are_refused_and_leave_nothing(
    api: Api, data: bytes, content_type: str, status: int, code: str, caplog: pytest.LogCaptureFixture
) -> None:
    _operator, judge, hearing, _party_id, _token = await in_session_with_party(api)
    path = f"/api/v1/hearings/{hearing['id']}/acts?title=Act"
    result = await api.call("POST", path, judge, data=data, headers={"Content-Type": content_type})
    assert (result.status, result.code) == (status, code), result.json
    assert result.json["error"]["message"]
    assert any(code in r.getMessage() and "refused" in r.getMessage() for r in caplog.records), "not logged"
    async with api.db() as db:
        assert (await db.execute(select(func.count()).select_from(Act))).scalar_one() == 0
    folder = await api.app[EVENTS].folder(hearing["id"])
    assert not (folder / "acts").exists() or list((folder / "acts").iterdir()) == []
    assert [e for e in read_chain(folder / LOG_FILE_NAME) if e["event"].startswith("act_")] == []


async def test_only_judges_and_admins_sign_and_links_see_only_their_hearing(api: Api) -> None:
    operator, judge, hearing, _party_id, token = await in_session_with_party(api)
    refused = await upload(api, operator, hearing["id"], make_pdf())
    assert (refused.status, refused.code) == (403, "forbidden")
    act = (await upload(api, judge, hearing["id"], make_pdf())).json
    missing_title = await upload(api, judge, hearing["id"], make_pdf(), title="")
    assert (missing_title.status, missing_title.code) == (400, "invalid_input")

    other = await api.schedule(operator, case_number="2-641/2026")
    other_party = await api.add_party(operator, other["id"])
    other_token = (await api.issue(operator, other["id"], other_party["id"]))["url"].rsplit("/join/", 1)[1]
    assert (await api.call("GET", f"/api/v1/join/{other_token}/acts")).json["items"] == []
    stolen = await api.call("GET", f"/api/v1/join/{other_token}/acts/{act['id']}/pdf")
    assert (stolen.status, stolen.code) == (404, "act_not_found")
    bad = await api.call("GET", "/api/v1/join/not-a-real-token-at-all-0123456789abcdef/acts")
    assert bad.status == 410 and bad.code == "invitation_invalid"
    staff = await api.call("GET", f"/api/v1/hearings/{hearing['id']}/acts", operator)
    assert [a["id"] for a in staff.json["items"]] == [act["id"]]
    pdf = await api.call("GET", f"/api/v1/hearings/{hearing['id']}/acts/{act['id']}/pdf", operator)
    assert pdf.status == 200 and hashlib.sha256(pdf.body).hexdigest() == act["signed_sha256"]
    # A Kazakh file name survives the download header (ASCII fallback plus the exact UTF-8 name).
    named = (await upload(api, judge, hearing["id"], make_pdf(), file_name="шешім.pdf")).json
    assert named["file_name"] == "шешім.pdf"
    pdf = await api.call("GET", f"/api/v1/hearings/{hearing['id']}/acts/{named['id']}/pdf", operator)
    assert pdf.headers["Content-Disposition"] == (
        "attachment; filename=\"_____.pdf\"; filename*=UTF-8''%D1%88%D0%B5%D1%88%D1%96%D0%BC.pdf"
    )
    # Withdrawing the party's link withdraws their access to the acts too.
    await api.call("DELETE", f"/api/v1/hearings/{hearing['id']}/parties/{_party_id}/invitation", operator)
    gone = await api.call("GET", f"/api/v1/join/{token}/acts")
    assert (gone.status, gone.code) == (410, "invitation_revoked")


async def test_only_the_presiding_judge_or_an_admin_signs_an_assigned_hearings_acts(api: Api) -> None:
    operator, judge, hearing, _party_id, _token = await in_session_with_party(api)
    other_judge = await api.who(StaffRole.JUDGE)
    admin = await api.who(StaffRole.ADMIN)
    async with api.db() as db, db.begin():
        await db.execute(
            update(Hearing).where(Hearing.id == hearing["id"]).values(presiding_judge_id=judge.user_id)
        )
    before = len(await api.app[EVENTS].entries(hearing["id"]))
    refused = await upload(api, other_judge, hearing["id"], make_pdf())
    assert (refused.status, refused.code) == (403, "not_presiding_judge")
    assert "presiding judge" in refused.json["error"]["message"]
    assert await _act_count(api) == 0 and len(await api.app[EVENTS].entries(hearing["id"])) == before
    assert (await upload(api, operator, hearing["id"], make_pdf())).code == "forbidden"
    signed = await upload(api, judge, hearing["id"], make_pdf())
    assert signed.status == 201, signed.json
    by_admin = await upload(api, admin, hearing["id"], make_pdf())
    assert by_admin.status == 201, by_admin.json
    events = [e.event for e in await api.app[EVENTS].entries(hearing["id"])]
    assert events.count("act_signed") == 2


async def _act_count(api: Api) -> int:
    async with api.db() as db:
        return int((await db.execute(select(func.count()).select_from(Act))).scalar_one())


async def test_a_changed_act_file_no_longer_shows_a_valid_signature(api: Api) -> None:
    _operator, judge, hearing, _party_id, token = await in_session_with_party(api)
    act = (await upload(api, judge, hearing["id"], make_pdf("Original text"))).json
    path = (await api.app[EVENTS].folder(hearing["id"])) / f"acts/{act['id']}.pdf"
    data = await asyncio.to_thread(path.read_bytes)
    await asyncio.to_thread(path.write_bytes, data.replace(b"Original text", b"Changed  text", 1))
    listed = await api.call("GET", f"/api/v1/join/{token}/acts")
    assert listed.json["items"][0]["signature_valid"] is False
