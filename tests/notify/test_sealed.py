"""Messages whose outcome comes after the hearing is sealed: the sealed log stays as it was signed, and each
outcome (sent, failed) is sealed as an addendum chained to the seal, which ``archive verify`` checks, so a
changed or forged outcome is found."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
from notify_harness import StartApi, issue_by, wait_rows
from notify_peers import SmtpPeer
from sqlalchemy import update

from archive import cli as archive_cli
from hearing_server.config import CONFIG
from hearing_server.domain.party import StaffRole
from hearing_server.record.context import SEALER
from hearing_server.store.models import Hearing
from recording.addendum import ADDENDA_DIR, ADDENDUM_LOG_NAME
from recording.confirmation_log import LOG_FILE_NAME
from recording.hashchain import read_chain
from recording.seal import MANIFEST_NAME
from recording.verify import ProblemKind, verify_hearing

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "acts"))
from pdfs import make_pdf  # noqa: E402


def archive_verify(
    folder: Path, cert: Path, capsys: pytest.CaptureFixture[str]
) -> tuple[int, dict[str, Any]]:
    """``hearing-server archive verify FOLDER --trusted-cert CERT --json``: exit status and report."""
    status = archive_cli.main(["verify", str(folder), "--trusted-cert", str(cert), "--json"])
    return status, json.loads(capsys.readouterr().out)


async def test_outcomes_after_the_seal_are_sealed_as_addenda_that_verify_checks(
    start_api: StartApi, smtp: SmtpPeer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    smtp.drop.delay_s = 1.0
    # The development court certificate takes the court's name as its CN (at most 64 characters).
    api = await start_api(court_name="Алматы қалалық соты")
    operator = await api.who(StaffRole.OPERATOR)
    hearing = await api.schedule(operator)
    party = await api.add_party(operator, hearing["id"])
    await issue_by(api, operator, hearing["id"], party["id"], "email", to="late@example.kz")
    await wait_rows(api, lambda found: found[0].status == "sending")
    async with api.db() as db, db.begin():
        await db.execute(update(Hearing).where(Hearing.id == hearing["id"]).values(status="ended"))
    outcome = await api.app[SEALER].seal(hearing["id"])

    await smtp.drop.wait_for(1)
    [row] = await wait_rows(api, lambda found: found[0].status == "sent")
    assert row.message_sha256 is not None
    folder = outcome.folder
    events = [e["event"] for e in read_chain(folder / LOG_FILE_NAME)]
    assert events[-1] == "hearing_sealed" and "notification_sent" not in events

    # The outcome is in addendum 1: its own signed, chained log, no file.
    addendum = folder / ADDENDA_DIR / "1"
    manifest = json.loads((addendum / MANIFEST_NAME).read_text())
    assert manifest["files"] == [] and manifest["log"]["entries"] == 1
    [sent] = read_chain(addendum / ADDENDUM_LOG_NAME)
    assert (sent["event"], sent["actor"], sent["party_id"]) == ("notification_sent", "system", party["id"])
    assert sent["details"]["notification_id"] == row.id
    assert sent["details"]["recipient"] == "late@example.kz"
    assert sent["details"]["message_sha256"] == row.message_sha256
    assert sent["details"]["reply"].startswith("2.0.0 Ok")
    cert = api.app[CONFIG].court_cert_path
    report = verify_hearing(folder, cert)
    assert report.valid and report.addenda == 1, report.problems
    status, printed = archive_verify(folder, cert, capsys)
    assert status == 0 and printed["valid"] and printed["hearing"]["addenda"] == 1, printed

    # Changing what the addendum says was sent is found: the line no longer hashes, the file differs.
    forged = tmp_path / "forged-recipient"
    shutil.copytree(folder, forged)
    log_path = forged / ADDENDA_DIR / "1" / ADDENDUM_LOG_NAME
    log_path.write_text(log_path.read_text().replace("late@example.kz", "else@example.kz"))
    status, printed = archive_verify(forged, cert, capsys)
    kinds = {p["kind"] for p in printed["hearing"]["problems"]}
    assert status == 1 and not printed["valid"]
    assert {ProblemKind.LOG_BROKEN.value, ProblemKind.FILE_HASH_CHANGED.value} <= kinds, printed

    # A manifest rewritten to match a forged log breaks the court's signature.
    rewritten = tmp_path / "forged-manifest"
    shutil.copytree(folder, rewritten)
    (rewritten / ADDENDA_DIR / "1" / MANIFEST_NAME).write_text(json.dumps({**manifest, "sealed_at": "x"}))
    status, printed = archive_verify(rewritten, cert, capsys)
    kinds = {p["kind"] for p in printed["hearing"]["problems"]}
    assert status == 1 and ProblemKind.SIGNATURE_INVALID.value in kinds, printed


async def test_an_act_notice_refused_after_the_seal_is_sealed_after_the_acts_addendum(
    start_api: StartApi, smtp: SmtpPeer
) -> None:
    api = await start_api(court_name="Алматы қалалық соты", notify_max_attempts=1)
    operator = await api.who(StaffRole.OPERATOR)
    judge = await api.who(StaffRole.JUDGE)
    hearing = await api.schedule(operator)
    party = await api.add_party(operator, hearing["id"], language="kk")
    await issue_by(api, operator, hearing["id"], party["id"], "email", to="party@example.kz")
    await wait_rows(api, lambda found: found[0].status == "sent")
    async with api.db() as db, db.begin():
        await db.execute(update(Hearing).where(Hearing.id == hearing["id"]).values(status="ended"))
    outcome = await api.app[SEALER].seal(hearing["id"])

    smtp.drop.mode = "refuse"
    signed = await api.call(
        "POST",
        f"/api/v1/hearings/{hearing['id']}/acts?title=Шешім",
        judge,
        data=make_pdf(),
        headers={"Content-Type": "application/pdf"},
    )
    assert signed.status == 201, signed.json
    await wait_rows(api, lambda found: any(r.kind == "act" and r.status == "failed" for r in found))
    act_log = [e["event"] for e in read_chain(outcome.folder / ADDENDA_DIR / "1" / ADDENDUM_LOG_NAME)]
    assert act_log == ["act_signed", "notification_queued"]
    [failed] = read_chain(outcome.folder / ADDENDA_DIR / "2" / ADDENDUM_LOG_NAME)
    assert failed["event"] == "notification_failed" and failed["details"]["kind"] == "act"
    assert failed["details"]["gave_up"] is True and "550" in failed["details"]["reason"]
    report = verify_hearing(outcome.folder, api.app[CONFIG].court_cert_path)
    assert report.valid and report.addenda == 2, report.problems
