"""Signed checkpoints anchor a live confirmation log: a chain rewritten consistently after a checkpoint
passes the unkeyed hash-chain check, but sealing refuses it, and the verifier (and ``hearing-server archive
verify``) names it in a folder sealed anyway."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from hearing_server.cli import main
from recording.checkpoints import (
    CHECKPOINTS_NAME,
    append_checkpoint,
    make_checkpoint,
    read_checkpoints,
    summary,
)
from recording.cms import sign_detached
from recording.confirmation_log import LOG_FILE_NAME, ConfirmationLog, utc_timestamp
from recording.hashchain import GENESIS_HASH, canonical_json, entry_hash, read_chain, verify_chain
from recording.seal import (
    MANIFEST_NAME,
    SIGNATURE_NAME,
    CourtSigner,
    SealError,
    describe_file,
    evidence_files,
    generate_court_certificate,
    seal_hearing,
)
from recording.verify import ProblemKind, verify_hearing

HEARING = "4f1c2a9e-0000-4000-8000-000000000001"


def _live_log(folder: Path, entries: int) -> ConfirmationLog:
    folder.mkdir(parents=True, exist_ok=True)
    log = ConfirmationLog(folder, HEARING)
    log.append("hearing_started", actor="clerk")
    for index in range(entries - 1):
        log.append("party_joined", actor="system", party_id=f"p{index}", details={"ip": f"203.0.113.{index}"})
    return log


def _checkpoint(folder: Path, seq: int, signer: CourtSigner) -> None:
    entry = read_chain(folder / LOG_FILE_NAME)[seq - 1]
    append_checkpoint(
        folder, make_checkpoint(HEARING, seq, entry["hash"], utc_timestamp(), signer.certificate, signer.key)
    )


def _rewrite_consistently(folder: Path, change_seq: int, keep: int | None = None) -> None:
    """What someone with write access to the folder (but not the court key) can do: edit one entry and
    recompute every hash after it, so that the chain is whole again."""
    path = folder / LOG_FILE_NAME
    entries = read_chain(path)[:keep]
    entries[change_seq - 1]["details"] = {"ip": "198.51.100.66"}
    previous = GENESIS_HASH
    lines = []
    for entry in entries:
        entry["prev_hash"] = previous
        entry["hash"] = previous = entry_hash(entry)
        lines.append(canonical_json(entry) + b"\n")
    path.write_bytes(b"".join(lines))


def _seal_without_checking(folder: Path, signer: CourtSigner) -> None:
    """A seal made by a sealer that does not look at checkpoints (an old version, or a careless one)."""
    manifest_data = {
        "format": "hearing-server/manifest/1",
        "hearing_id": HEARING,
        "sealed_at": utc_timestamp(),
        "signer": signer.subject,
    }
    chain = verify_chain(folder / LOG_FILE_NAME)
    manifest_data["confirmation_log"] = {
        "path": LOG_FILE_NAME,
        "entries": chain.entries,
        "last_hash": chain.last_hash,
    }
    manifest_data["files"] = [describe_file(folder, p) for p in evidence_files(folder)]
    manifest_data["checkpoints"] = summary(read_checkpoints(folder))
    data = canonical_json(manifest_data)
    (folder / MANIFEST_NAME).write_bytes(data)
    (folder / SIGNATURE_NAME).write_bytes(sign_detached(data, signer.certificate, signer.key))


def test_an_honest_log_with_checkpoints_seals_and_verifies(
    tmp_path: Path, court: tuple[CourtSigner, Path]
) -> None:
    signer, cert = court
    folder = tmp_path / "hearing"
    with _live_log(folder, 6) as log:
        _checkpoint(folder, 3, signer)
        log.append("recess_called", actor="clerk")
        _checkpoint(folder, 7, signer)
        result = seal_hearing(folder, HEARING, signer, log=log, actor="clerk")
    assert result.manifest["checkpoints"] == {
        "path": CHECKPOINTS_NAME,
        "count": 2,
        "last_seq": 7,
        "last_entry_hash": read_chain(folder / LOG_FILE_NAME)[6]["hash"],
    }
    assert CHECKPOINTS_NAME in [f["path"] for f in result.manifest["files"]]
    report = verify_hearing(folder, cert)
    assert report.valid, [p.describe() for p in report.problems]


def test_a_chain_rewritten_consistently_after_a_checkpoint_is_caught(
    tmp_path: Path, court: tuple[CourtSigner, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    signer, cert = court
    folder = tmp_path / "hearing"
    _live_log(folder, 8).close()
    _checkpoint(folder, 5, signer)
    _rewrite_consistently(folder, change_seq=2)
    assert verify_chain(folder / LOG_FILE_NAME).valid  # the unkeyed chain alone cannot tell

    with pytest.raises(SealError, match=r"seq 5.*differs from the one the court signed"):
        seal_hearing(folder, HEARING, signer)
    assert not (folder / MANIFEST_NAME).exists()

    _seal_without_checking(folder, signer)
    report = verify_hearing(folder, cert)
    assert report.signature_valid and not report.valid
    assert [(p.kind, p.path, p.seq) for p in report.problems] == [
        (ProblemKind.LOG_CONTRADICTS_CHECKPOINT, LOG_FILE_NAME, 5)
    ]
    assert main(["archive", "verify", str(folder), "--trusted-cert", str(cert), "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert "log_contradicts_checkpoint" in json.dumps(out)


def test_a_log_cut_back_below_a_checkpoint_is_caught(tmp_path: Path, court: tuple[CourtSigner, Path]) -> None:
    signer, _ = court
    folder = tmp_path / "hearing"
    _live_log(folder, 8).close()
    _checkpoint(folder, 8, signer)
    _rewrite_consistently(folder, change_seq=1, keep=6)
    with pytest.raises(SealError, match="only 6 entries"):
        seal_hearing(folder, HEARING, signer)


def test_a_checkpoint_signed_with_another_key_is_invalid(
    tmp_path: Path, court: tuple[CourtSigner, Path]
) -> None:
    signer, cert = court
    other = generate_court_certificate(tmp_path / "o.pem", tmp_path / "o.key", "Someone Else")
    folder = tmp_path / "hearing"
    _live_log(folder, 4).close()
    _checkpoint(folder, 2, other)
    with pytest.raises(SealError, match="another key"):
        seal_hearing(folder, HEARING, signer)
    _seal_without_checking(folder, signer)
    kinds = [p.kind for p in verify_hearing(folder, cert).problems]
    assert kinds == [ProblemKind.CHECKPOINT_INVALID]
    assert isinstance(other.key, ec.EllipticCurvePrivateKey)


def test_a_torn_checkpoint_line_is_cut_before_the_next_one(
    tmp_path: Path, court: tuple[CourtSigner, Path]
) -> None:
    signer, cert = court
    folder = tmp_path / "hearing"
    _live_log(folder, 4).close()
    _checkpoint(folder, 2, signer)
    with (folder / CHECKPOINTS_NAME).open("ab") as f:
        f.write(b'{"entry_hash":"abc","format":"hearing-ser')  # a crash mid-write
    _checkpoint(folder, 4, signer)
    lines = read_checkpoints(folder)
    assert [(i.checkpoint.seq if i.checkpoint else None) for i in lines] == [2, 4]
    seal_hearing(folder, HEARING, signer)
    assert verify_hearing(folder, cert).valid


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl CLI not installed")
def test_openssl_checks_a_checkpoint_without_our_code(
    tmp_path: Path, court: tuple[CourtSigner, Path]
) -> None:
    signer, cert = court
    folder = tmp_path / "hearing"
    _live_log(folder, 3).close()
    _checkpoint(folder, 3, signer)
    checkpoint = read_checkpoints(folder)[0].checkpoint
    assert checkpoint is not None
    (tmp_path / "payload").write_bytes(checkpoint.signed_bytes())
    (tmp_path / "sig.der").write_bytes(checkpoint.signature)
    done = subprocess.run(
        ["openssl", "cms", "-verify", "-binary", "-content", str(tmp_path / "payload"), "-in",
         str(tmp_path / "sig.der"), "-inform", "DER", "-CAfile", str(cert), "-purpose", "any",
         "-out", "/dev/null"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
