"""Export packages: one ZIP per sealed hearing, written as a stream, and their offline verification.

Layout (``ROOT`` is the package's name)::

    ROOT/hearing/manifest.json, manifest.json.p7s, confirmation-log.jsonl, tracks/…   (the sealed folder)
    ROOT/hearing/playback/composite.mp4                                              (if rendered)
    ROOT/court-certificate.pem                                                       (the court's certificate)
    ROOT/summary.txt                                                                 (for people; last)

Entries are stored, not deflated (media does not compress), with data descriptors so that nothing is
ever seeked back to, and ZIP64 wherever a file needs it.  ``ROOT/hearing`` is exactly the sealed
folder, so verification is ``recording.verify`` on it after a careful extraction.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import struct
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO
from zoneinfo import ZoneInfo

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from archive.sealed import SealCheck, SealedHearing
from archive.storage import Storage, StorageError
from recording.cms import verify_detached
from recording.seal import MANIFEST_NAME
from recording.verify import VerificationReport, format_report, verify_hearing

HEARING_DIR = "hearing"
SUMMARY_NAME = "summary.txt"
CERTIFICATE_NAME = "court-certificate.pem"
_CHUNK = 1 << 20
_FLUSH_BYTES = 256 * 1024
_LOCAL_HEADER = struct.Struct("<4s5H3L2H")
_LOCAL_SIGNATURE = b"PK\x03\x04"


class ChunkWriter:
    """A write-only stream handing fixed-size chunks to ``push`` (zipfile wraps it to count offsets)."""

    def __init__(self, push: Callable[[bytes], None]) -> None:
        self._push = push
        self._buffer = bytearray()

    def write(self, data: bytes) -> int:
        """Buffer ``data``; push whenever a chunk is full."""
        self._buffer += data
        if len(self._buffer) >= _FLUSH_BYTES:
            self.flush()
        return len(data)

    def flush(self) -> None:
        """Push whatever is buffered."""
        if self._buffer:
            chunk, self._buffer = bytes(self._buffer), bytearray()
            self._push(chunk)

    def close(self) -> None:
        """Push the rest."""
        self.flush()


@dataclass(frozen=True)
class HearingFacts:
    """What the summary says about the hearing, from the database."""

    id: str
    case_number: str
    title: str
    court: str
    courtroom: str
    presiding_judge: str
    scheduled_start: datetime
    sealed_at: datetime | None
    parties: list[tuple[str, str]]  # (role, name)
    timezone: str


def package_name(facts: HearingFacts) -> str:
    """``hearing-<case>-<date>-<id8>``, safe as a file name on every system."""
    case = re.sub(r"[^A-Za-z0-9._-]+", "-", facts.case_number).strip("-.") or "case"
    return f"hearing-{case[:40]}-{facts.scheduled_start:%Y-%m-%d}-{facts.id[:8]}"


@dataclass
class ExportResult:
    """What went into a package: each file's SHA-256 as read while streaming, and any mismatch."""

    files: list[tuple[str, int, str]] = field(default_factory=list)  # (name, size, sha256)
    mismatches: list[str] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)  # listed files that could not be read


def _zip_time(moment: datetime | None) -> tuple[int, int, int, int, int, int]:
    moment = (moment or datetime.now(UTC)).astimezone(UTC)
    if moment.year < 1980:
        moment = datetime(1980, 1, 1, tzinfo=UTC)
    return (moment.year, moment.month, moment.day, moment.hour, moment.minute, moment.second)


def _add_stream(
    archive: zipfile.ZipFile, name: str, size: int, when: tuple[int, ...], source: BinaryIO
) -> tuple[int, str]:
    info = zipfile.ZipInfo(name, when)  # type: ignore[arg-type]
    info.compress_type = zipfile.ZIP_STORED
    info.file_size = size  # decides ZIP64 before the first byte is written
    info.external_attr = 0o644 << 16
    digest = hashlib.sha256()
    written = 0
    with archive.open(info, "w") as entry:
        while chunk := source.read(_CHUNK):
            digest.update(chunk)
            entry.write(chunk)
            written += len(chunk)
    return written, digest.hexdigest()


def write_package(
    out: ChunkWriter,
    storage: Storage,
    facts: HearingFacts,
    sealed: SealedHearing,
    check: SealCheck,
    certificate_pem: bytes | None,
) -> ExportResult:
    """Write the whole package to ``out`` (blocking; reads each file once, hashing it on the way)."""
    root = package_name(facts)
    when = _zip_time(facts.sealed_at)
    result = ExportResult()
    with zipfile.ZipFile(out, "w", allowZip64=True) as archive:
        for item in sealed.files:
            try:
                source, size = storage.open(item.key), storage.stat(item.key).size
            except StorageError as exc:
                result.left_out.append(f"{item.name}: {exc}")
                continue
            with source:
                size, digest = _add_stream(archive, f"{root}/{HEARING_DIR}/{item.name}", size, when, source)
            result.files.append((item.name, size, digest))
            if item.sealed and item.sha256 is not None and digest != item.sha256:
                result.mismatches.append(item.name)
        if certificate_pem is not None:
            archive.writestr(_text_info(f"{root}/{CERTIFICATE_NAME}", when), certificate_pem)
        summary = summary_text(facts, sealed, check, result)
        archive.writestr(_text_info(f"{root}/{SUMMARY_NAME}", when), summary.encode("utf-8"))
    out.close()
    return result


def _text_info(name: str, when: tuple[int, ...]) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, when)  # type: ignore[arg-type]
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    return info


def summary_text(facts: HearingFacts, sealed: SealedHearing, check: SealCheck, result: ExportResult) -> str:
    """The package's human summary: case, court, date, parties, files with hashes, seal status."""
    zone = ZoneInfo(facts.timezone)
    start = facts.scheduled_start.astimezone(zone)
    lines = [
        "HEARING RECORD — EXPORT PACKAGE",
        "",
        f"Case number:     {facts.case_number}",
        f"Title:           {facts.title}",
        f"Court:           {facts.court}",
        f"Courtroom:       {facts.courtroom}",
        f"Presiding judge: {facts.presiding_judge}",
        f"Scheduled start: {start:%Y-%m-%d %H:%M} ({facts.timezone}), "
        f"{facts.scheduled_start.astimezone(UTC):%Y-%m-%d %H:%M} UTC",
        f"Sealed at:       {facts.sealed_at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"
        if facts.sealed_at
        else "Sealed at:       -",
        f"Hearing id:      {facts.id}",
        "",
        "Parties:",
    ]
    lines += [f"  - {name} ({role})" for role, name in facts.parties] or ["  (none recorded)"]
    lines += ["", "Files (SHA-256 as exported):"]
    for name, size, digest in result.files:
        lines.append(f"  {HEARING_DIR}/{name}  {size} bytes  {digest}")
    lines += [
        "",
        f"Seal: {check.state.upper()}"
        + (f", signed by {check.signer_subject}" if check.signer_subject else ""),
    ]
    lines += [f"  problem: {p.describe()}" for p in check.problems]
    lines += [f"  WARNING: not in this package: {text}" for text in result.left_out]
    if result.mismatches:
        lines += [f"  WARNING: read content differs from the seal: {name}" for name in result.mismatches]
    elif check.state == "valid":
        lines.append("  Every sealed file matched its sealed SHA-256 while this package was written.")
    lines += [
        "",
        "How to check this package:",
        "  hearing-server archive verify THIS.zip --trusted-cert COURT-CERTIFICATE.pem",
        f"  or, without our software, in {HEARING_DIR}/:",
        f"    openssl cms -verify -binary -content {MANIFEST_NAME} -in {MANIFEST_NAME}.p7s -inform DER \\",
        "      -CAfile ../court-certificate.pem -purpose any -out /dev/null",
        "    sha256sum each file and compare with manifest.json.",
        "This summary is not covered by the seal; manifest.json and its signature are the record.",
        "",
    ]
    return "\n".join(lines)


# -- verification ------------------------------------------------------------------------------


class PackageProblemKind(StrEnum):
    """What can be wrong with the package itself (as opposed to the sealed hearing inside)."""

    UNREADABLE = "package_unreadable"
    LAYOUT = "package_layout"
    UNSAFE_ENTRY = "unsafe_entry"
    CRC_MISMATCH = "zip_crc_mismatch"
    TOO_LARGE = "package_too_large"
    CERTIFICATE_MISMATCH = "certificate_mismatch"


@dataclass(frozen=True)
class PackageProblem:
    """One problem with the package, naming the entry."""

    kind: PackageProblemKind
    detail: str
    entry: str | None = None

    def describe(self) -> str:
        """One human line."""
        return f"{self.kind.value}: {self.entry + ': ' if self.entry else ''}{self.detail}"


@dataclass
class PackageReport:
    """The verification of one package or folder: the package's own problems and the sealed hearing's."""

    source: Path
    hearing: VerificationReport | None = None
    problems: list[PackageProblem] = field(default_factory=list)
    certificate_subject: str | None = None
    certificate_matches_signer: bool | None = None

    @property
    def valid(self) -> bool:
        """True when the package is intact and the hearing inside verifies."""
        return self.hearing is not None and self.hearing.valid and not self.problems

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        return {
            "source": str(self.source),
            "valid": self.valid,
            "certificate_subject": self.certificate_subject,
            "certificate_matches_signer": self.certificate_matches_signer,
            "package_problems": [
                {"kind": p.kind.value, "detail": p.detail, "entry": p.entry} for p in self.problems
            ],
            "hearing": self.hearing.to_dict() if self.hearing is not None else None,
        }


def format_package_report(report: PackageReport) -> str:
    """A human report: what is valid and what is not."""
    lines = [f"Package:        {report.source}"]
    if report.certificate_subject:
        match = {True: "matches the signer", False: "DOES NOT match the signer", None: "not compared"}
        lines.append(
            f"Certificate:    {report.certificate_subject} ({match[report.certificate_matches_signer]})"
        )
    if report.problems:
        lines.append(f"PACKAGE PROBLEMS ({len(report.problems)}):")
        lines += [f"  - {p.describe()}" for p in report.problems]
    if report.hearing is not None:
        lines.append(format_report(report.hearing))
    lines.append("PACKAGE RESULT: " + ("VALID" if report.valid else "NOT VALID"))
    return "\n".join(lines)


def _safe_name(name: str) -> str | None:
    """The entry name if it is a clean relative path, else None."""
    if not name or "\\" in name or "\x00" in name or name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return None
    parts = PurePosixPath(name.rstrip("/")).parts
    if not parts or any(p in ("", ".", "..") for p in parts):
        return None
    return name


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    return (info.external_attr >> 16) & 0o170000 == 0o120000


def _stored_data(handle: BinaryIO, info: zipfile.ZipInfo) -> Iterator[bytes]:
    """The raw bytes of a stored entry, read past its local header (so a bad CRC loses no byte)."""
    handle.seek(info.header_offset)
    header = handle.read(_LOCAL_HEADER.size)
    fields = _LOCAL_HEADER.unpack(header)
    if fields[0] != _LOCAL_SIGNATURE:
        raise zipfile.BadZipFile(f"bad local header for {info.filename}")
    handle.seek(info.header_offset + _LOCAL_HEADER.size + fields[-2] + fields[-1])
    remaining = info.file_size
    while remaining > 0:
        chunk = handle.read(min(_CHUNK, remaining))
        if not chunk:
            raise zipfile.BadZipFile(f"{info.filename} is truncated")
        remaining -= len(chunk)
        yield chunk


def _extract(path: Path, target: Path, report: PackageReport) -> str | None:
    """Extract the package safely into ``target``; returns its root folder name (None when unusable)."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        report.problems.append(PackageProblem(PackageProblemKind.UNREADABLE, str(exc)))
        return None
    with archive, path.open("rb") as handle:
        infos = archive.infolist()
        total = sum(i.file_size for i in infos)
        free = shutil.disk_usage(target).free
        if total > free:
            report.problems.append(
                PackageProblem(
                    PackageProblemKind.TOO_LARGE, f"{total} bytes to extract, {free} free in {target}"
                )
            )
            return None
        roots = {PurePosixPath(i.filename).parts[0] for i in infos if _safe_name(i.filename)}
        if len(roots) != 1:
            report.problems.append(
                PackageProblem(PackageProblemKind.LAYOUT, f"expected one top folder, found {sorted(roots)}")
            )
            return None
        root = roots.pop()
        for info in infos:
            name = _safe_name(info.filename)
            if name is None or _is_symlink(info):
                report.problems.append(
                    PackageProblem(
                        PackageProblemKind.UNSAFE_ENTRY, "not extracted (path or link)", info.filename[:200]
                    )
                )
                continue
            destination = target / name
            if info.is_dir():
                destination.mkdir(parents=True, exist_ok=True)
                continue
            destination.parent.mkdir(parents=True, exist_ok=True)
            try:
                _extract_member(archive, handle, info, destination, report)
            except (zipfile.BadZipFile, OSError, zlib.error, EOFError) as exc:
                report.problems.append(PackageProblem(PackageProblemKind.UNREADABLE, str(exc), info.filename))
        return root


def _extract_member(
    archive: zipfile.ZipFile,
    handle: BinaryIO,
    info: zipfile.ZipInfo,
    destination: Path,
    report: PackageReport,
) -> None:
    if info.compress_type != zipfile.ZIP_STORED:
        with archive.open(info) as source, destination.open("wb") as out:
            shutil.copyfileobj(source, out, _CHUNK)  # small texts; zipfile checks their CRC
        return
    crc = 0
    with destination.open("wb") as out:
        for chunk in _stored_data(handle, info):
            crc = zlib.crc32(chunk, crc)
            out.write(chunk)
    if crc != info.CRC:
        report.problems.append(
            PackageProblem(
                PackageProblemKind.CRC_MISMATCH, "the bytes differ from the ZIP's own checksum", info.filename
            )
        )


def _load_certificate(data: bytes) -> x509.Certificate | None:
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError:
        return None


def _compare_certificate(report: PackageReport, package_dir: Path) -> None:
    cert_path = package_dir / CERTIFICATE_NAME
    if not cert_path.exists():
        return
    certificate = _load_certificate(cert_path.read_bytes())
    if certificate is None:
        report.problems.append(
            PackageProblem(PackageProblemKind.UNREADABLE, "not a PEM certificate", CERTIFICATE_NAME)
        )
        return
    report.certificate_subject = certificate.subject.rfc4514_string()
    hearing = report.hearing
    if hearing is not None and hearing.signer_subject is not None:
        signer_pem = _signer_pem(package_dir / HEARING_DIR)
        report.certificate_matches_signer = signer_pem == certificate.public_bytes(serialization.Encoding.PEM)
        if not report.certificate_matches_signer:
            report.problems.append(
                PackageProblem(
                    PackageProblemKind.CERTIFICATE_MISMATCH,
                    "the enclosed certificate is not the signer's",
                    CERTIFICATE_NAME,
                )
            )


def _signer_pem(folder: Path) -> bytes | None:
    manifest, signature = folder / MANIFEST_NAME, folder / f"{MANIFEST_NAME}.p7s"
    if not manifest.exists() or not signature.exists():
        return None
    result = verify_detached(manifest.read_bytes(), signature.read_bytes())
    return result.signer.public_bytes(serialization.Encoding.PEM) if result.signer is not None else None


def verify_package(
    path: Path | str,
    trusted_cert: Path | str | x509.Certificate | None = None,
    *,
    workdir: Path | None = None,
) -> PackageReport:
    """Check an export package (ZIP) or an extracted package or hearing folder, offline.

    ZIP entries are extracted safely to a temporary folder (no absolute paths, no ``..``, no links;
    stored entries copied raw so a bad ZIP checksum is reported and the bytes still checked), then
    the sealed folder is checked by ``recording.verify``: signature, every file's SHA-256, the log chain.
    """
    path = Path(path)
    report = PackageReport(path)
    if path.is_dir():
        package_dir = path if (path / HEARING_DIR / MANIFEST_NAME).exists() else None
        folder = package_dir / HEARING_DIR if package_dir is not None else path
        report.hearing = verify_hearing(folder, trusted_cert)
        if package_dir is not None:
            _compare_certificate(report, package_dir)
        return report
    if not path.is_file():
        report.problems.append(PackageProblem(PackageProblemKind.UNREADABLE, "no such file or folder"))
        return report
    with tempfile.TemporaryDirectory(prefix="package-", dir=workdir) as tmp:
        root = _extract(path, Path(tmp), report)
        if root is None:
            return report
        package_dir = Path(tmp) / root
        if not (package_dir / HEARING_DIR).is_dir():
            report.problems.append(
                PackageProblem(PackageProblemKind.LAYOUT, f"no {HEARING_DIR}/ folder in {root}/")
            )
            return report
        report.hearing = verify_hearing(package_dir / HEARING_DIR, trusted_cert)
        report.hearing.folder = Path(f"{path.name}:{root}/{HEARING_DIR}")
        _compare_certificate(report, package_dir)
    return report
