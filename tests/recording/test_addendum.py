"""Addendum seals: an act added after the seal is signed, chained to the seal, and every tampering named."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from recording_media import HEARING_ID

from recording.addendum import ADDENDA_DIR, AddendumEvent, seal_addendum, sha256_bytes
from recording.cms import sign_detached
from recording.confirmation_log import ConfirmationLog
from recording.hashchain import canonical_json
from recording.seal import MANIFEST_NAME, SIGNATURE_NAME, CourtSigner, SealError, seal_hearing
from recording.verify import ProblemKind, format_report, verify_hearing

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl CLI not installed")


@pytest.fixture
def sealed(hearing_copy: Path, court: tuple[CourtSigner, Path]) -> Path:
    with ConfirmationLog(hearing_copy, HEARING_ID) as log:
        seal_hearing(hearing_copy, HEARING_ID, court[0], log=log, actor="judge")
    return hearing_copy


def add_act(folder: Path, signer: CourtSigner, name: str, body: bytes) -> Path:
    """Write ``acts/<name>.pdf`` and seal it as the next addendum; returns the addendum folder."""
    (folder / "acts").mkdir(exist_ok=True)
    (folder / "acts" / f"{name}.pdf").write_bytes(body)
    event = AddendumEvent(
        "act_signed",
        "judge",
        {"act_id": name, "path": f"acts/{name}.pdf", "signed_sha256": sha256_bytes(body)},
    )
    return seal_addendum(folder, HEARING_ID, signer, [f"acts/{name}.pdf"], [event]).folder


def openssl_verify(folder: Path, ca: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["openssl", "cms", "-verify", "-binary", "-content", str(folder / MANIFEST_NAME),
         "-in", str(folder / SIGNATURE_NAME), "-inform", "DER", "-CAfile", str(ca), "-purpose", "any",
         "-out", "/dev/null"],
        capture_output=True, text=True,
    )  # fmt: skip


def kinds(folder: Path, ca: Path) -> dict[ProblemKind, list[str | None]]:
    found: dict[ProblemKind, list[str | None]] = {}
    for p in verify_hearing(folder, ca).problems:
        found.setdefault(p.kind, []).append(p.path)
    return found


def test_an_act_after_the_seal_is_sealed_as_a_chained_addendum(
    sealed: Path, court: tuple[CourtSigner, Path]
) -> None:
    signer, ca = court
    seal_manifest = (sealed / MANIFEST_NAME).read_bytes()
    first = add_act(sealed, signer, "a1", b"%PDF-1.7 first act")
    second = add_act(sealed, signer, "a2", b"%PDF-1.7 second act")
    assert first == sealed / ADDENDA_DIR / "1" and second == sealed / ADDENDA_DIR / "2"
    one = json.loads((first / MANIFEST_NAME).read_bytes())
    two = json.loads((second / MANIFEST_NAME).read_bytes())
    assert (first / MANIFEST_NAME).read_bytes() == canonical_json(one)
    assert one["seal"] == {"path": MANIFEST_NAME, "sha256": sha256_bytes(seal_manifest)}
    assert one["previous"] is None
    assert two["previous"] == {
        "path": "addenda/1/manifest.json",
        "sha256": sha256_bytes((first / MANIFEST_NAME).read_bytes()),
    }
    [entry] = one["files"]
    assert entry["path"] == "acts/a1.pdf" and entry["size"] == 18
    assert entry["sha256"] == sha256_bytes(b"%PDF-1.7 first act")
    [event] = [json.loads(line) for line in (first / "log.jsonl").read_bytes().splitlines()]
    assert event["event"] == "act_signed" and event["details"]["act_id"] == "a1"
    assert one["log"] == {
        "path": "addenda/1/log.jsonl",
        "entries": 1,
        "last_hash": event["hash"],
        "size": (first / "log.jsonl").stat().st_size,
        "sha256": sha256_bytes((first / "log.jsonl").read_bytes()),
    }
    assert (sealed / MANIFEST_NAME).read_bytes() == seal_manifest  # the original seal is untouched
    report = verify_hearing(sealed, ca)
    assert report.valid, report.problems
    assert report.addenda == 2 and "Addenda:        2" in format_report(report)
    for folder in (sealed, first, second):
        done = openssl_verify(folder, ca)
        assert done.returncode == 0 and "Verification successful" in done.stderr, done.stderr


def test_an_addendum_needs_a_sealed_hearing(hearing_copy: Path, court: tuple[CourtSigner, Path]) -> None:
    (hearing_copy / "acts").mkdir()
    (hearing_copy / "acts" / "a.pdf").write_bytes(b"%PDF")
    with pytest.raises(SealError, match="not sealed"):
        seal_addendum(
            hearing_copy, HEARING_ID, court[0], ["acts/a.pdf"], [AddendumEvent("act_signed", None, {})]
        )


def test_a_changed_act_file_is_named(sealed: Path, court: tuple[CourtSigner, Path]) -> None:
    add_act(sealed, court[0], "a1", b"%PDF-1.7 first act")
    (sealed / "acts" / "a1.pdf").write_bytes(b"%PDF-1.7 forged act")
    assert kinds(sealed, court[1]) == {ProblemKind.FILE_SIZE_CHANGED: ["acts/a1.pdf"]}
    (sealed / "acts" / "a1.pdf").write_bytes(b"%PDF-1.7 first acT")
    assert kinds(sealed, court[1]) == {ProblemKind.FILE_HASH_CHANGED: ["acts/a1.pdf"]}


def test_an_edited_addendum_manifest_fails_its_signature_here_and_in_openssl(
    sealed: Path, court: tuple[CourtSigner, Path]
) -> None:
    folder = add_act(sealed, court[0], "a1", b"%PDF-1.7 first act")
    manifest = json.loads((folder / MANIFEST_NAME).read_bytes())
    manifest["files"][0]["sha256"] = "0" * 64
    (folder / MANIFEST_NAME).write_bytes(canonical_json(manifest))
    found = kinds(sealed, court[1])
    assert found[ProblemKind.SIGNATURE_INVALID] == ["addenda/1/manifest.json.p7s"]
    assert found[ProblemKind.FILE_HASH_CHANGED] == ["acts/a1.pdf"]
    assert verify_hearing(sealed, court[1]).signature_valid  # the hearing's own seal still holds
    assert openssl_verify(folder, court[1]).returncode != 0


def test_an_edited_addendum_log_is_named_by_line(sealed: Path, court: tuple[CourtSigner, Path]) -> None:
    folder = add_act(sealed, court[0], "a1", b"%PDF-1.7 first act")
    log = folder / "log.jsonl"
    log.write_bytes(log.read_bytes().replace(b'"actor":"judge"', b'"actor":"clerk"'))
    found = kinds(sealed, court[1])
    assert found == {
        ProblemKind.FILE_HASH_CHANGED: ["addenda/1/log.jsonl"],
        ProblemKind.LOG_BROKEN: ["addenda/1/log.jsonl"],
    }


def test_a_removed_addendum_and_an_unlisted_act_are_named(
    sealed: Path, court: tuple[CourtSigner, Path]
) -> None:
    add_act(sealed, court[0], "a1", b"%PDF-1.7 first act")
    add_act(sealed, court[0], "a2", b"%PDF-1.7 second act")
    shutil.rmtree(sealed / ADDENDA_DIR / "1")
    (sealed / "acts" / "a3.pdf").write_bytes(b"%PDF-1.7 never sealed")
    found = kinds(sealed, court[1])
    assert found[ProblemKind.ADDENDUM_MISSING] == ["addenda/1"]
    assert found[ProblemKind.ADDENDUM_CHAIN_BROKEN] == ["addenda/2/manifest.json"]
    assert found[ProblemKind.FILE_UNLISTED] == ["acts/a1.pdf", "acts/a3.pdf"]


def test_a_court_signed_addendum_chained_elsewhere_is_named(
    sealed: Path, court: tuple[CourtSigner, Path]
) -> None:
    """A good court signature is not enough: an addendum chains to this seal and replaces no file."""
    signer, ca = court
    folder = add_act(sealed, signer, "a1", b"%PDF-1.7 first act")
    manifest = json.loads((folder / MANIFEST_NAME).read_bytes())
    manifest["seal"]["sha256"] = "1" * 64
    manifest["files"].append({"path": "confirmation-log.jsonl", "size": 1, "sha256": "2" * 64})
    data = canonical_json(manifest)
    (folder / MANIFEST_NAME).write_bytes(data)
    (folder / SIGNATURE_NAME).write_bytes(sign_detached(data, signer.certificate, signer.key))
    found = kinds(sealed, ca)
    assert found[ProblemKind.ADDENDUM_CHAIN_BROKEN] == ["addenda/1/manifest.json", "confirmation-log.jsonl"]
    assert ProblemKind.SIGNATURE_INVALID not in found


def test_an_addendum_of_events_only_records_a_delivery_after_the_seal(
    sealed: Path, court: tuple[CourtSigner, Path]
) -> None:
    with pytest.raises(SealError, match="at least one event"):
        seal_addendum(sealed, HEARING_ID, court[0], [], [])
    add_act(sealed, court[0], "a1", b"%PDF-1.7 first act")
    sent = AddendumEvent(
        "notification_sent", "system", {"notification_id": "n1", "message_sha256": "ab" * 32}, party_id="p1"
    )
    folder = seal_addendum(sealed, HEARING_ID, court[0], [], [sent]).folder
    manifest = json.loads((folder / MANIFEST_NAME).read_bytes())
    assert manifest["files"] == [] and manifest["number"] == 2 and manifest["log"]["entries"] == 1
    [line] = (folder / "log.jsonl").read_text().splitlines()
    assert json.loads(line)["party_id"] == "p1"
    report = verify_hearing(sealed, court[1])
    assert report.valid and report.addenda == 2, report.problems
    assert openssl_verify(folder, court[1]).returncode == 0
    # Dropping the delivery from its log is found.
    (folder / "log.jsonl").write_text("")
    assert kinds(sealed, court[1]) == {
        ProblemKind.FILE_HASH_CHANGED: ["addenda/2/log.jsonl"],
        ProblemKind.LOG_DIFFERS_FROM_MANIFEST: ["addenda/2/log.jsonl"],
    }
