"""Seal and verify: a signed manifest that openssl accepts, and every kind of tampering named."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding, pkcs7
from recording_media import COURT, HEARING_ID

from hearing_server.domain.events import EventType
from recording import cli
from recording.cms import verify_detached
from recording.confirmation_log import LOG_FILE_NAME, ConfirmationLog, LogEvent
from recording.hashchain import canonical_json
from recording.seal import (
    MANIFEST_NAME,
    SIGNATURE_NAME,
    CourtSigner,
    SealError,
    generate_court_certificate,
    seal_hearing,
)
from recording.verify import ProblemKind, verify_hearing

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl CLI not installed")


@pytest.fixture
def sealed(hearing_copy: Path, court: tuple[CourtSigner, Path]) -> Path:
    signer, _ = court
    with ConfirmationLog(hearing_copy, HEARING_ID) as log:
        result = seal_hearing(hearing_copy, HEARING_ID, signer, log=log, actor="judge")
    assert result.signer_subject == signer.subject
    return hearing_copy


def openssl_verify(folder: Path, ca: Path) -> subprocess.CompletedProcess[str]:
    content, signature = str(folder / MANIFEST_NAME), str(folder / SIGNATURE_NAME)
    return subprocess.run(
        ["openssl", "cms", "-verify", "-binary", "-content", content, "-in", signature,
         "-inform", "DER", "-CAfile", str(ca), "-purpose", "any", "-out", "/dev/null"],
        capture_output=True, text=True,
    )  # fmt: skip


def kinds(folder: Path, ca: Path) -> dict[ProblemKind, list]:
    report = verify_hearing(folder, ca)
    found: dict[ProblemKind, list] = {}
    for p in report.problems:
        found.setdefault(p.kind, []).append(p)
    return found


def test_manifest_lists_every_file_with_media_facts(sealed: Path, court: tuple[CourtSigner, Path]) -> None:
    manifest = json.loads((sealed / MANIFEST_NAME).read_bytes())
    assert (sealed / MANIFEST_NAME).read_bytes() == canonical_json(manifest)
    assert manifest["hearing_id"] == HEARING_ID and manifest["signer"] == court[0].subject
    files = {f["path"]: f for f in manifest["files"]}
    assert set(files) == {LOG_FILE_NAME} | {
        p.relative_to(sealed).as_posix() for p in (sealed / "tracks").glob("*.webm")
    }
    video = files["tracks/witness-video-001.webm"]
    assert video["kind"] == "video" and video["codec"] == "vp8" and video["participant_id"] == "witness"
    assert video["duration_s"] == pytest.approx(4.0, abs=0.1) and video["first_timestamp_s"] == pytest.approx(
        1.0, abs=0.01
    )
    assert files["tracks/judge-audio-001.webm"]["codec"] == "opus"
    assert files[LOG_FILE_NAME]["size"] == (sealed / LOG_FILE_NAME).stat().st_size
    entries = ConfirmationLog(sealed, HEARING_ID).entries()
    assert entries[-1].event == LogEvent.HEARING_SEALED
    assert manifest["confirmation_log"] == {
        "path": LOG_FILE_NAME,
        "entries": len(entries),
        "last_hash": entries[-1].hash,
    }


def test_untouched_seal_is_valid_for_us_and_for_openssl(
    sealed: Path, court: tuple[CourtSigner, Path]
) -> None:
    report = verify_hearing(sealed, court[1])
    assert report.valid, report.problems
    assert report.signature_valid and report.signer_trusted is True
    assert COURT in (report.signer_subject or "")
    assert report.files_checked == 7
    done = openssl_verify(sealed, court[1])
    assert done.returncode == 0, done.stderr
    assert "Verification successful" in done.stderr


def test_changed_recording_byte_is_named(sealed: Path, court: tuple[CourtSigner, Path]) -> None:
    target = sealed / "tracks" / "lawyer-video-001.webm"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    found = kinds(sealed, court[1])
    assert list(found) == [ProblemKind.FILE_HASH_CHANGED]
    assert [p.path for p in found[ProblemKind.FILE_HASH_CHANGED]] == ["tracks/lawyer-video-001.webm"]
    assert openssl_verify(sealed, court[1]).returncode == 0  # the manifest itself is untouched


def test_edited_log_line_is_named_by_line(sealed: Path, court: tuple[CourtSigner, Path]) -> None:
    path = sealed / LOG_FILE_NAME
    lines = path.read_bytes().splitlines(keepends=True)
    lines[2] = lines[2].replace(b"127.0.0.1", b"127.0.0.2")
    path.write_bytes(b"".join(lines))
    found = kinds(sealed, court[1])
    assert [p.path for p in found[ProblemKind.FILE_HASH_CHANGED]] == [LOG_FILE_NAME]
    [broken] = found[ProblemKind.LOG_BROKEN]
    assert (broken.line, broken.seq) == (3, 3) and "bad_hash" in broken.detail


def test_log_extended_after_the_seal_is_named(sealed: Path, court: tuple[CourtSigner, Path]) -> None:
    with ConfirmationLog(sealed, HEARING_ID) as log:
        sealed_count = log.entry_count
        log.append(EventType.PARTY_JOINED, party_id="intruder")
    found = kinds(sealed, court[1])
    [differs] = found[ProblemKind.LOG_DIFFERS_FROM_MANIFEST]
    assert differs.line == sealed_count + 1
    assert ProblemKind.FILE_SIZE_CHANGED in found


def test_tampered_manifest_fails_the_signature_here_and_in_openssl(
    sealed: Path, court: tuple[CourtSigner, Path]
) -> None:
    path = sealed / MANIFEST_NAME
    manifest = json.loads(path.read_bytes())
    manifest["files"][1]["sha256"] = "0" * 64
    path.write_bytes(canonical_json(manifest))
    report = verify_hearing(sealed, court[1])
    assert not report.valid and not report.signature_valid
    [problem] = [p for p in report.problems if p.kind is ProblemKind.SIGNATURE_INVALID]
    assert "digest" in problem.detail
    assert openssl_verify(sealed, court[1]).returncode != 0


def test_missing_and_unlisted_files_are_named(sealed: Path, court: tuple[CourtSigner, Path]) -> None:
    (sealed / "tracks" / "judge-audio-001.webm").rename(sealed / "tracks" / "judge-audio-999.webm")
    (sealed / "playback").mkdir()
    (sealed / "playback" / "composite.mp4").write_bytes(b"derived copy, not evidence")
    found = kinds(sealed, court[1])
    assert [p.path for p in found[ProblemKind.FILE_MISSING]] == ["tracks/judge-audio-001.webm"]
    assert [p.path for p in found[ProblemKind.FILE_UNLISTED]] == ["tracks/judge-audio-999.webm"]


def test_signer_other_than_the_trusted_court_is_named(sealed: Path, tmp_path: Path) -> None:
    other = generate_court_certificate(tmp_path / "other.pem", tmp_path / "other.key", "Some Other Court")
    report = verify_hearing(sealed, other.certificate)
    assert report.signature_valid and report.signer_trusted is False
    assert [p.kind for p in report.problems] == [ProblemKind.SIGNER_UNTRUSTED]
    assert openssl_verify(sealed, tmp_path / "other.pem").returncode != 0


def test_signature_is_checked_without_openssl_in_der_and_pem(court: tuple[CourtSigner, Path]) -> None:
    signer, _ = court
    data = b'{"a":1}'
    pem = (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(data)
        .add_signer(signer.certificate, signer.key, hashes.SHA256())
        .sign(Encoding.PEM, [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary])
    )
    assert verify_detached(data, pem, signer.certificate).valid
    assert not verify_detached(data + b" ", pem).valid
    assert not verify_detached(data, b"garbage").valid


def test_sealing_twice_is_refused(sealed: Path, court: tuple[CourtSigner, Path]) -> None:
    with pytest.raises(SealError):
        seal_hearing(sealed, HEARING_ID, court[0])


def test_generated_certificate_is_reused(tmp_path: Path) -> None:
    first = generate_court_certificate(tmp_path / "c.pem", tmp_path / "c.key", "Court A")
    again = generate_court_certificate(tmp_path / "c.pem", tmp_path / "c.key", "Court B")
    assert again.certificate == first.certificate and "Court A" in again.subject
    assert (tmp_path / "c.key").stat().st_mode & 0o777 == 0o600


def test_cli_reports_and_exits_by_validity(
    sealed: Path, court: tuple[CourtSigner, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main([str(sealed), "--trusted-cert", str(court[1])]) == 0
    out = capsys.readouterr().out
    assert "RESULT: VALID" in out and COURT in out
    (sealed / "tracks" / "judge-video-001.webm").write_bytes(b"gone")
    assert cli.main([str(sealed), "--trusted-cert", str(court[1])]) == 1
    out = capsys.readouterr().out
    assert "NOT VALID" in out and "tracks/judge-video-001.webm" in out
    assert cli.main([str(sealed), "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["problems"][0]["kind"] == "file_size_changed"


def test_a_long_kazakh_court_name_fits_the_development_certificate(tmp_path: Path) -> None:
    from cryptography.x509.oid import NameOID

    from recording.seal import generate_court_certificate

    court = "Алматы қаласының мамандандырылған ауданаралық экономикалық соты"  # 121 bytes in UTF-8
    signer = generate_court_certificate(tmp_path / "court.pem", tmp_path / "court-key.pem", court)
    [cn] = signer.certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    [org] = signer.certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    assert org.value == court
    assert court.startswith(str(cn.value)) and len(str(cn.value).encode()) <= 64
