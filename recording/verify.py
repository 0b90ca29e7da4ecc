"""Checks a sealed hearing folder: signature, every file against the manifest, and the log chain."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from cryptography import x509

from recording.addendum import ADDENDA_DIR, ADDENDUM_LOG_NAME, addendum_numbers, sha256_bytes
from recording.checkpoints import CHECKPOINTS_NAME, check_checkpoints, read_checkpoints
from recording.cms import verify_detached
from recording.confirmation_log import LOG_FILE_NAME
from recording.hashchain import ChainVerification, read_chain, verify_chain
from recording.seal import MANIFEST_NAME, PLAYBACK_DIR, SIGNATURE_NAME, evidence_files, sha256_file


class ProblemKind(StrEnum):
    """What can be wrong with a sealed hearing."""

    MANIFEST_MISSING = "manifest_missing"
    MANIFEST_UNREADABLE = "manifest_unreadable"
    SIGNATURE_MISSING = "signature_missing"
    SIGNATURE_INVALID = "signature_invalid"
    SIGNER_UNTRUSTED = "signer_untrusted"
    FILE_MISSING = "file_missing"
    FILE_SIZE_CHANGED = "file_size_changed"
    FILE_HASH_CHANGED = "file_hash_changed"
    FILE_UNLISTED = "file_unlisted"
    LOG_MISSING = "log_missing"
    LOG_BROKEN = "log_broken"
    LOG_DIFFERS_FROM_MANIFEST = "log_differs_from_manifest"
    CHECKPOINT_INVALID = "checkpoint_invalid"
    LOG_CONTRADICTS_CHECKPOINT = "log_contradicts_checkpoint"
    ADDENDUM_MISSING = "addendum_missing"
    ADDENDUM_UNREADABLE = "addendum_unreadable"
    ADDENDUM_CHAIN_BROKEN = "addendum_chain_broken"


@dataclass(frozen=True)
class Problem:
    """One thing found wrong, naming the file and, for the log, the line."""

    kind: ProblemKind
    detail: str
    path: str | None = None
    line: int | None = None
    seq: int | None = None

    def describe(self) -> str:
        """One human line."""
        where = self.path or ""
        if self.line is not None:
            where += f" line {self.line}"
        if self.seq is not None:
            where += f" (seq {self.seq})"
        return (
            f"{self.kind.value}: {where.strip()}: {self.detail}"
            if where
            else f"{self.kind.value}: {self.detail}"
        )


@dataclass
class VerificationReport:
    """Everything learnt about one sealed hearing folder; valid only when no problem was found."""

    folder: Path
    hearing_id: str | None = None
    sealed_at: str | None = None
    signature_valid: bool = False
    signer_subject: str | None = None
    signer_trusted: bool | None = None  # None: no trusted certificate was given
    files_checked: int = 0
    log_entries: int | None = None
    addenda: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        """True when the signature holds and every file and log line matches the seal."""
        return self.signature_valid and not self.problems

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        return {
            "folder": str(self.folder),
            "valid": self.valid,
            "hearing_id": self.hearing_id,
            "sealed_at": self.sealed_at,
            "signature_valid": self.signature_valid,
            "signer_subject": self.signer_subject,
            "signer_trusted": self.signer_trusted,
            "files_checked": self.files_checked,
            "log_entries": self.log_entries,
            "addenda": self.addenda,
            "problems": [
                {"kind": p.kind.value, "detail": p.detail, "path": p.path, "line": p.line, "seq": p.seq}
                for p in self.problems
            ],
        }


def _load_trusted(trusted_cert: Path | str | x509.Certificate | None) -> x509.Certificate | None:
    if trusted_cert is None or isinstance(trusted_cert, x509.Certificate):
        return trusted_cert
    data = Path(trusted_cert).read_bytes()
    return (
        x509.load_pem_x509_certificate(data)
        if b"-----BEGIN" in data
        else x509.load_der_x509_certificate(data)
    )


def verify_hearing(
    folder: Path | str, trusted_cert: Path | str | x509.Certificate | None = None
) -> VerificationReport:
    """Check a sealed hearing folder and name every problem found."""
    folder = Path(folder)
    report = VerificationReport(folder)
    manifest_path, signature_path = folder / MANIFEST_NAME, folder / SIGNATURE_NAME
    if not manifest_path.exists():
        report.problems.append(
            Problem(ProblemKind.MANIFEST_MISSING, "the hearing is not sealed", MANIFEST_NAME)
        )
        return report
    manifest_bytes = manifest_path.read_bytes()
    trusted = _load_trusted(trusted_cert)
    seal_signer = _check_signature(report, manifest_bytes, signature_path, trusted)
    try:
        manifest = json.loads(manifest_bytes)
        files = {f["path"]: f for f in manifest["files"]}
        log_seal = manifest["confirmation_log"]
    except (ValueError, KeyError, TypeError) as exc:
        report.problems.append(Problem(ProblemKind.MANIFEST_UNREADABLE, str(exc), MANIFEST_NAME))
        return report
    report.hearing_id = manifest.get("hearing_id")
    report.sealed_at = manifest.get("sealed_at")
    added = _check_addenda(report, folder, manifest_bytes, set(files), trusted)
    _check_files(report, folder, files, added)
    _check_log(report, folder, log_seal)
    _check_checkpoints(report, folder, manifest, seal_signer, trusted)
    return report


def _check_signature(
    report: VerificationReport,
    manifest: bytes,
    signature_path: Path,
    trusted: x509.Certificate | None,
    name: str = SIGNATURE_NAME,
) -> x509.Certificate | None:
    """Check a seal's signature (the hearing's, or an addendum's when ``name`` says so).

    Returns the signer's certificate when the signature holds.
    """
    if not signature_path.exists():
        report.problems.append(Problem(ProblemKind.SIGNATURE_MISSING, "no detached signature", name))
        return None
    result = verify_detached(manifest, signature_path.read_bytes(), trusted)
    if name == SIGNATURE_NAME:
        report.signature_valid = result.valid
        report.signer_subject = result.signer_subject
        report.signer_trusted = result.trusted
    if not result.valid:
        report.problems.append(Problem(ProblemKind.SIGNATURE_INVALID, result.reason or "invalid", name))
    elif result.trusted is False:
        report.problems.append(
            Problem(
                ProblemKind.SIGNER_UNTRUSTED,
                f"signed by {result.signer_subject}, not the trusted court",
                name,
            )
        )
    return result.signer if result.valid else None


def _check_addenda(
    report: VerificationReport,
    folder: Path,
    seal_manifest: bytes,
    sealed_files: set[str],
    trusted: x509.Certificate | None,
) -> set[str]:
    """Check every addendum: signature, chain to the seal and the one before, files, own log.

    Returns every path an addendum covers (its listed files and its own manifest, signature and log).
    """
    covered: set[str] = set()
    previous: bytes | None = None
    for expected, number in enumerate(addendum_numbers(folder), start=1):
        base = f"{ADDENDA_DIR}/{number}"
        if number != expected:
            report.problems.append(
                Problem(
                    ProblemKind.ADDENDUM_MISSING,
                    f"addendum {expected} is absent",
                    f"{ADDENDA_DIR}/{expected}",
                )
            )
        manifest_rel = f"{base}/{MANIFEST_NAME}"
        covered |= {manifest_rel, f"{base}/{SIGNATURE_NAME}", f"{base}/{ADDENDUM_LOG_NAME}"}
        path = folder / manifest_rel
        if not path.exists():
            report.problems.append(Problem(ProblemKind.MANIFEST_MISSING, "addendum not sealed", manifest_rel))
            previous = None
            continue
        data = path.read_bytes()
        _check_signature(report, data, folder / base / SIGNATURE_NAME, trusted, f"{base}/{SIGNATURE_NAME}")
        try:
            manifest = json.loads(data)
            files = {f["path"]: f for f in manifest["files"]}
            seal, log_seal, prev = manifest["seal"], manifest["log"], manifest["previous"]
        except (ValueError, KeyError, TypeError) as exc:
            report.problems.append(Problem(ProblemKind.ADDENDUM_UNREADABLE, str(exc), manifest_rel))
            previous = data
            continue
        report.addenda += 1
        if seal.get("sha256") != sha256_bytes(seal_manifest):
            report.problems.append(
                Problem(
                    ProblemKind.ADDENDUM_CHAIN_BROKEN,
                    f"not chained to this hearing's {MANIFEST_NAME}",
                    manifest_rel,
                )
            )
        want_prev = sha256_bytes(previous) if previous is not None else None
        if (prev or {}).get("sha256") != want_prev:
            report.problems.append(
                Problem(
                    ProblemKind.ADDENDUM_CHAIN_BROKEN, "not chained to the previous addendum", manifest_rel
                )
            )
        for rel in sorted(files.keys() & (sealed_files | covered)):
            report.problems.append(
                Problem(ProblemKind.ADDENDUM_CHAIN_BROKEN, "an addendum may not replace a sealed file", rel)
            )
        covered |= files.keys()
        _check_listed(report, folder, files)
        _check_addendum_log(report, folder, f"{base}/{ADDENDUM_LOG_NAME}", log_seal)
        previous = data
    return covered


def _check_addendum_log(report: VerificationReport, folder: Path, rel: str, log_seal: dict[str, Any]) -> None:
    path = folder / rel
    if not path.exists():
        report.problems.append(Problem(ProblemKind.LOG_MISSING, "addendum log absent", rel))
        return
    chain = verify_chain(path)
    if log_seal.get("size") != path.stat().st_size or log_seal.get("sha256") != sha256_file(path):
        report.problems.append(Problem(ProblemKind.FILE_HASH_CHANGED, "differs from the sealed log", rel))
    if chain.problem is not None:
        p = chain.problem
        report.problems.append(
            Problem(ProblemKind.LOG_BROKEN, f"{p.fault.value}: {p.detail}", rel, line=p.line, seq=p.seq)
        )
    elif chain.last_hash != log_seal.get("last_hash") or chain.entries != log_seal.get("entries"):
        report.problems.append(
            Problem(
                ProblemKind.LOG_DIFFERS_FROM_MANIFEST,
                f"log has {chain.entries} entries, sealed {log_seal.get('entries')}",
                rel,
            )
        )


def _check_files(
    report: VerificationReport, folder: Path, files: dict[str, dict[str, Any]], added: set[str]
) -> None:
    present = {p.relative_to(folder).as_posix(): p for p in evidence_files(folder)}
    _check_listed(report, folder, files, present)
    for rel in sorted(present.keys() - files.keys() - added):
        report.problems.append(
            Problem(
                ProblemKind.FILE_UNLISTED,
                f"not in the manifest or an addendum (playback copies belong in {PLAYBACK_DIR}/)",
                rel,
            )
        )


def _check_listed(
    report: VerificationReport,
    folder: Path,
    files: dict[str, dict[str, Any]],
    present: dict[str, Path] | None = None,
) -> None:
    """Each listed file must be present with its sealed size and SHA-256."""
    for rel, entry in files.items():
        path = present.get(rel) if present is not None else _inside(folder, rel)
        if path is None:
            report.problems.append(
                Problem(ProblemKind.FILE_MISSING, "listed in the manifest but absent", rel)
            )
            continue
        report.files_checked += 1
        size = path.stat().st_size
        if size != entry.get("size"):
            report.problems.append(
                Problem(ProblemKind.FILE_SIZE_CHANGED, f"{size} bytes, sealed {entry.get('size')}", rel)
            )
        elif sha256_file(path) != entry.get("sha256"):
            report.problems.append(
                Problem(ProblemKind.FILE_HASH_CHANGED, "content differs from the sealed SHA-256", rel)
            )


def _inside(folder: Path, rel: str) -> Path | None:
    """The file ``rel`` names inside ``folder``; None when absent or when it points outside."""
    path = (folder / rel).resolve()
    if not path.is_relative_to(folder.resolve()) or not path.is_file():
        return None
    return path


def _check_log(report: VerificationReport, folder: Path, log_seal: dict[str, Any]) -> None:
    path = folder / LOG_FILE_NAME
    if not path.exists():
        report.problems.append(Problem(ProblemKind.LOG_MISSING, "confirmation log absent", LOG_FILE_NAME))
        return
    chain: ChainVerification = verify_chain(path)
    report.log_entries = chain.entries
    if chain.problem is not None:
        p = chain.problem
        report.problems.append(
            Problem(
                ProblemKind.LOG_BROKEN, f"{p.fault.value}: {p.detail}", LOG_FILE_NAME, line=p.line, seq=p.seq
            )
        )
        return
    if chain.last_hash != log_seal.get("last_hash") or chain.entries != log_seal.get("entries"):
        report.problems.append(
            Problem(
                ProblemKind.LOG_DIFFERS_FROM_MANIFEST,
                f"log has {chain.entries} entries ending {chain.last_hash[:16]}…, "
                f"sealed {log_seal.get('entries')} ending {str(log_seal.get('last_hash'))[:16]}…",
                LOG_FILE_NAME,
                line=min(chain.entries, int(log_seal.get("entries") or 0)) + 1,
            )
        )


def _check_checkpoints(
    report: VerificationReport,
    folder: Path,
    manifest: dict[str, Any],
    seal_signer: x509.Certificate | None,
    trusted: x509.Certificate | None,
) -> None:
    """Each signed checkpoint must verify (by the seal's signer) and the log must hold what it signed."""
    lines = read_checkpoints(folder)
    sealed = manifest.get("checkpoints")
    if isinstance(sealed, dict) and sealed.get("count") != len(lines):
        report.problems.append(
            Problem(
                ProblemKind.CHECKPOINT_INVALID,
                f"{len(lines)} checkpoints, sealed {sealed.get('count')}",
                CHECKPOINTS_NAME,
            )
        )
    if not lines:
        return
    hearing_id = str(manifest.get("hearing_id", ""))
    try:
        entries = read_chain(folder / LOG_FILE_NAME)
    except (OSError, ValueError):
        entries = []
    for finding in check_checkpoints(lines, hearing_id, entries, seal_signer, trusted):
        kind = (
            ProblemKind.LOG_CONTRADICTS_CHECKPOINT
            if finding.contradicts_log
            else ProblemKind.CHECKPOINT_INVALID
        )
        path = LOG_FILE_NAME if finding.contradicts_log else CHECKPOINTS_NAME
        line = finding.seq if finding.contradicts_log else finding.line
        report.problems.append(Problem(kind, finding.detail, path, line=line, seq=finding.seq))


def format_report(report: VerificationReport) -> str:
    """A human report for the CLI."""
    lines = [f"Hearing folder: {report.folder}"]
    if report.hearing_id:
        lines.append(f"Hearing:        {report.hearing_id} (sealed {report.sealed_at})")
    signature = "valid" if report.signature_valid else "INVALID"
    lines.append(
        f"Signature:      {signature}"
        + (f", signed by {report.signer_subject}" if report.signer_subject else "")
    )
    if report.signer_trusted is not None:
        lines.append(f"Signer trusted: {'yes' if report.signer_trusted else 'NO'}")
    lines.append(f"Files checked:  {report.files_checked}")
    if report.log_entries is not None:
        lines.append(f"Log entries:    {report.log_entries}")
    if report.addenda:
        lines.append(f"Addenda:        {report.addenda}")
    if report.problems:
        lines.append(f"PROBLEMS ({len(report.problems)}):")
        lines.extend(f"  - {p.describe()}" for p in report.problems)
    lines.append("RESULT: " + ("VALID — the hearing is intact as sealed" if report.valid else "NOT VALID"))
    return "\n".join(lines)
