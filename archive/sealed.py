"""A sealed hearing as stored: its manifest and files, the seal checked now, the playback copy and the log.

Files are known only from the hearing's database record (its folder) and the manifest in that folder;
a file is addressed by an id — its index in the manifest, or ``manifest``, ``signature``, ``playback``.
Every function here blocks (storage reads): call it from a worker thread.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any

from cryptography import x509

from archive.storage import ObjectMissing, Storage, StorageError, join_key, validate_key
from hearing_server.domain.errors import NotFound
from recording.addendum import ADDENDA_DIR, ADDENDUM_LOG_NAME
from recording.cms import verify_detached
from recording.composite import OUTPUT_NAME, PROGRESS_NAME
from recording.confirmation_log import LOG_FILE_NAME
from recording.seal import MANIFEST_NAME, PLAYBACK_DIR, SIGNATURE_NAME
from recording.verify import Problem, ProblemKind, VerificationReport, verify_hearing

MANIFEST_LIMIT = 32 * 1024 * 1024
SIGNATURE_LIMIT = 1024 * 1024
LOG_LIMIT = 64 * 1024 * 1024
PROGRESS_LIMIT = 64 * 1024
MANIFEST_ID, SIGNATURE_ID, PLAYBACK_ID = "manifest", "signature", "playback"
PLAYBACK_NAME = f"{PLAYBACK_DIR}/{OUTPUT_NAME}"
_INDEX_ID = re.compile(r"^(0|[1-9][0-9]{0,5})$")

_TYPES = {
    ".webm": ("video/webm", "audio/webm"),
    ".mkv": ("video/x-matroska", "audio/x-matroska"),
    ".mka": ("audio/x-matroska", "audio/x-matroska"),
    ".mp4": ("video/mp4", "audio/mp4"),
    ".m4a": ("audio/mp4", "audio/mp4"),
    ".ogg": ("audio/ogg", "audio/ogg"),
    ".opus": ("audio/ogg", "audio/ogg"),
    ".wav": ("audio/wav", "audio/wav"),
    ".json": ("application/json", "application/json"),
    ".jsonl": ("application/x-ndjson", "application/x-ndjson"),
    ".p7s": ("application/pkcs7-signature", "application/pkcs7-signature"),
    ".pem": ("application/x-pem-file", "application/x-pem-file"),
    ".txt": ("text/plain; charset=utf-8", "text/plain; charset=utf-8"),
    ".pdf": ("application/pdf", "application/pdf"),
}
ACTS_PREFIX = "acts/"


def file_kind(name: str, kind: object) -> str:
    """A file's kind as the manifest gives it; a court act (``acts/…``) is an ``act``."""
    if str(name).startswith(ACTS_PREFIX) and kind in (None, "other"):
        return "act"
    return str(kind or "other")


def content_type_for(name: str, kind: str) -> str:
    """The media type of a hearing file, from its extension and (audio or not) its kind."""
    video, audio = _TYPES.get(PurePosixPath(name).suffix.lower(), ("application/octet-stream",) * 2)
    return audio if kind == "audio" else video


@dataclass(frozen=True)
class ArchivedFile:
    """One servable file of a sealed hearing."""

    id: str
    name: str  # path inside the hearing folder
    key: str  # storage key
    kind: str
    sealed: bool  # listed in the signed manifest
    size: int | None
    sha256: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)  # codec, duration, participant… from the manifest

    @property
    def content_type(self) -> str:
        """The file's media type."""
        return content_type_for(self.name, self.kind)


@dataclass(frozen=True)
class Addendum:
    """One addendum seal as stored: its number, signed manifest bytes and signature."""

    number: int
    manifest_bytes: bytes
    manifest: dict[str, Any]
    signature: bytes | None


@dataclass
class SealedHearing:
    """What the hearing folder holds according to its manifest."""

    prefix: str | None  # the folder's storage key; None when the record names no usable folder
    manifest_bytes: bytes | None = None
    manifest: dict[str, Any] | None = None
    signature: bytes | None = None
    addenda: list[Addendum] = field(default_factory=list)
    files: list[ArchivedFile] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def is_sealed(self) -> bool:
        """Whether the folder has a manifest (signed or not: the check says whether it holds)."""
        return self.manifest_bytes is not None

    @property
    def evidence(self) -> list[ArchivedFile]:
        """The files listed in the manifest."""
        return [f for f in self.files if f.sealed and f.id not in (MANIFEST_ID, SIGNATURE_ID)]

    def file(self, file_id: str) -> ArchivedFile:
        """The file with ``file_id``; :class:`NotFound` for anything else (paths are never accepted)."""
        if _INDEX_ID.match(file_id) or file_id in (MANIFEST_ID, SIGNATURE_ID, PLAYBACK_ID):
            for item in self.files:
                if item.id == file_id:
                    return item
        raise NotFound("no such file in this hearing", code="file_not_found")

    def epoch(self) -> datetime | None:
        """The recording timeline's zero (``epoch_utc`` of the media files), if known."""
        for item in self.evidence:
            value = item.facts.get("epoch_utc")
            if isinstance(value, str):
                try:
                    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
                except ValueError:
                    continue
        return None


def _read_optional(storage: Storage, key: str, limit: int) -> bytes | None:
    try:
        return storage.read_bytes(key, limit)
    except ObjectMissing:
        return None


def load_sealed(storage: Storage, recording_path: str | None) -> SealedHearing:
    """Read the manifest and signature of the folder named in the hearing's record, and list its files."""
    if not recording_path:
        return SealedHearing(None)
    try:
        prefix = validate_key(recording_path)
        manifest_key, signature_key = join_key(prefix, MANIFEST_NAME), join_key(prefix, SIGNATURE_NAME)
    except StorageError:
        return SealedHearing(
            None, problems=[Problem(ProblemKind.MANIFEST_MISSING, "unusable folder in record")]
        )
    hearing = SealedHearing(prefix)
    try:
        hearing.manifest_bytes = _read_optional(storage, manifest_key, MANIFEST_LIMIT)
        hearing.signature = _read_optional(storage, signature_key, SIGNATURE_LIMIT)
    except StorageError as exc:
        hearing.problems.append(Problem(ProblemKind.MANIFEST_UNREADABLE, str(exc), MANIFEST_NAME))
        return hearing
    if hearing.manifest_bytes is None:
        return hearing
    try:
        manifest = json.loads(hearing.manifest_bytes)
        entries = manifest["files"]
        if not isinstance(manifest, dict) or not isinstance(entries, list):
            raise TypeError("files is not a list")
    except (ValueError, KeyError, TypeError) as exc:
        hearing.problems.append(Problem(ProblemKind.MANIFEST_UNREADABLE, str(exc), MANIFEST_NAME))
        return hearing
    hearing.manifest = manifest
    for index, entry in enumerate(entries):
        name = entry.get("path") if isinstance(entry, dict) else None
        try:
            key = join_key(prefix, name)  # type: ignore[arg-type]
        except (StorageError, TypeError):
            hearing.problems.append(
                Problem(ProblemKind.MANIFEST_UNREADABLE, f"entry {index} has an unusable path", MANIFEST_NAME)
            )
            continue
        size = entry.get("size")
        facts = {k: v for k, v in entry.items() if k not in ("path", "size", "sha256", "kind")}
        hearing.files.append(
            ArchivedFile(
                id=str(index),
                name=name,  # type: ignore[arg-type]
                key=key,
                kind=file_kind(name, entry.get("kind")),  # type: ignore[arg-type]
                sealed=True,
                size=size if isinstance(size, int) else None,
                sha256=entry.get("sha256") if isinstance(entry.get("sha256"), str) else None,
                facts=facts,
            )
        )
    _add_addenda(storage, hearing, prefix, len(entries))
    hearing.files.append(
        ArchivedFile(MANIFEST_ID, MANIFEST_NAME, manifest_key, "manifest", True, len(hearing.manifest_bytes))
    )
    if hearing.signature is not None:
        hearing.files.append(
            ArchivedFile(
                SIGNATURE_ID, SIGNATURE_NAME, signature_key, "signature", True, len(hearing.signature)
            )
        )
    try:
        playback = storage.stat(join_key(prefix, PLAYBACK_NAME))
    except ObjectMissing:
        pass
    else:
        hearing.files.append(
            ArchivedFile(PLAYBACK_ID, PLAYBACK_NAME, playback.key, "playback", False, playback.size)
        )
    return hearing


def _add_addenda(storage: Storage, hearing: SealedHearing, prefix: str, next_id: int) -> None:
    """Read each addendum's manifest and signature and list its files (ids go on after the manifest's)."""
    root = f"{prefix}/{ADDENDA_DIR}/"
    numbers = sorted(
        {
            int(parts[0])
            for info in storage.iterate(f"{prefix}/{ADDENDA_DIR}")
            if len(parts := info.key[len(root) :].split("/")) == 2 and parts[0].isdigit()
        }
    )
    for number in numbers:
        base = f"{ADDENDA_DIR}/{number}"
        try:
            data = storage.read_bytes(join_key(prefix, f"{base}/{MANIFEST_NAME}"), MANIFEST_LIMIT)
            signature = _read_optional(storage, join_key(prefix, f"{base}/{SIGNATURE_NAME}"), SIGNATURE_LIMIT)
            manifest = json.loads(data)
            entries = [
                (e["path"], e["size"], e["sha256"], file_kind(e["path"], e.get("kind")))
                for e in manifest["files"]
            ]
        except (StorageError, ValueError, KeyError, TypeError) as exc:
            hearing.problems.append(
                Problem(ProblemKind.ADDENDUM_UNREADABLE, str(exc), f"{base}/{MANIFEST_NAME}")
            )
            continue
        hearing.addenda.append(Addendum(number, data, manifest, signature))
        own: list[tuple[str, Any, Any, str]] = [
            (f"{base}/{MANIFEST_NAME}", len(data), None, "addendum_manifest")
        ]
        if signature is not None:
            own.append((f"{base}/{SIGNATURE_NAME}", len(signature), None, "addendum_signature"))
        log = manifest.get("log") if isinstance(manifest.get("log"), dict) else {}
        own.append((f"{base}/{ADDENDUM_LOG_NAME}", log.get("size"), log.get("sha256"), "addendum_log"))
        for name, size, sha256, kind in entries + own:
            try:
                key = join_key(prefix, name)
            except (StorageError, TypeError):
                hearing.problems.append(
                    Problem(
                        ProblemKind.ADDENDUM_UNREADABLE,
                        "an entry has an unusable path",
                        f"{base}/{MANIFEST_NAME}",
                    )
                )
                continue
            hearing.files.append(
                ArchivedFile(
                    id=str(next_id),
                    name=name,
                    key=key,
                    kind=kind,
                    sealed=True,
                    size=size if isinstance(size, int) else None,
                    sha256=sha256 if isinstance(sha256, str) else None,
                    facts={"addendum": number},
                )
            )
            next_id += 1


@dataclass
class SealCheck:
    """The seal checked now without hashing the media: signature, file presence and sizes, the log's hash."""

    state: str  # valid, invalid, unsealed
    signature_valid: bool
    signer_subject: str | None
    signer_trusted: bool | None
    sealed_at: str | None
    problems: list[Problem]


def check_seal(storage: Storage, hearing: SealedHearing, trusted: x509.Certificate | None) -> SealCheck:
    """Check the signature, every sealed file's presence and size, the log's SHA-256, and no extra file."""
    problems = list(hearing.problems)
    if hearing.manifest_bytes is None or hearing.prefix is None:
        return SealCheck("unsealed", False, None, None, None, problems)
    manifest = hearing.manifest or {}
    check = SealCheck("invalid", False, None, None, manifest.get("sealed_at"), problems)
    if hearing.signature is None:
        problems.append(Problem(ProblemKind.SIGNATURE_MISSING, "no detached signature", SIGNATURE_NAME))
    else:
        result = verify_detached(hearing.manifest_bytes, hearing.signature, trusted)
        check.signature_valid, check.signer_subject, check.signer_trusted = (
            result.valid,
            result.signer_subject,
            result.trusted,
        )
        if not result.valid:
            problems.append(
                Problem(ProblemKind.SIGNATURE_INVALID, result.reason or "invalid", SIGNATURE_NAME)
            )
        elif result.trusted is False:
            problems.append(
                Problem(ProblemKind.SIGNER_UNTRUSTED, f"signed by {result.signer_subject}", SIGNATURE_NAME)
            )
    for addendum in hearing.addenda:
        name = f"{ADDENDA_DIR}/{addendum.number}/{SIGNATURE_NAME}"
        if addendum.signature is None:
            problems.append(Problem(ProblemKind.SIGNATURE_MISSING, "no detached signature", name))
            continue
        signed = verify_detached(addendum.manifest_bytes, addendum.signature, trusted)
        if not signed.valid or signed.trusted is False:
            problems.append(Problem(ProblemKind.SIGNATURE_INVALID, signed.reason or "invalid", name))
    listed = {f.key for f in hearing.files if f.sealed}
    for item in hearing.evidence:
        try:
            size = storage.stat(item.key).size
        except ObjectMissing:
            problems.append(Problem(ProblemKind.FILE_MISSING, "listed in the manifest but absent", item.name))
            continue
        except StorageError:
            problems.append(
                Problem(ProblemKind.FILE_MISSING, "leads outside the archive; not served", item.name)
            )
            continue
        if size != item.size:
            problems.append(
                Problem(ProblemKind.FILE_SIZE_CHANGED, f"{size} bytes, sealed {item.size}", item.name)
            )
        elif item.name == LOG_FILE_NAME:
            data = storage.read_bytes(item.key, LOG_LIMIT)
            if hashlib.sha256(data).hexdigest() != item.sha256:
                problems.append(
                    Problem(
                        ProblemKind.FILE_HASH_CHANGED, "content differs from the sealed SHA-256", item.name
                    )
                )
    playback_prefix = f"{hearing.prefix}/{PLAYBACK_DIR}/"
    for info in storage.iterate(hearing.prefix):
        if info.key not in listed and not info.key.startswith(playback_prefix):
            name = info.key[len(hearing.prefix) + 1 :]
            problems.append(Problem(ProblemKind.FILE_UNLISTED, "not in the manifest", name))
    check.state = "valid" if check.signature_valid and not problems else "invalid"
    return check


def fingerprint(storage: Storage, prefix: str) -> str:
    """SHA-256 over every sealed file's key, size, modification and change times: changes when any file does
    (an edit whose mtime was put back still moves the ctime)."""
    playback_prefix = f"{prefix}/{PLAYBACK_DIR}/"
    items = [
        [info.key, info.size, info.mtime_ns, info.ctime_ns]
        for info in storage.iterate(prefix)
        if not info.key.startswith(playback_prefix)
    ]
    return hashlib.sha256(json.dumps(items).encode()).hexdigest()


def full_verification(
    storage: Storage, prefix: str, trusted: x509.Certificate | None
) -> tuple[VerificationReport, str]:
    """Every file hashed against the signed manifest (``recording.verify``), and the folder's fingerprint."""
    before = fingerprint(storage, prefix)
    with storage.materialize(prefix) as folder:
        report = verify_hearing(folder, trusted)
    # Files that changed while they were hashed: the report cannot vouch for any state, so none is "current".
    return report, before if fingerprint(storage, prefix) == before else ""


def read_playback(storage: Storage, hearing: SealedHearing) -> dict[str, Any]:
    """The playback render's progress (``state`` none/queued/rendering/done/failed) and its file id."""
    if hearing.prefix is None:
        return {"state": "none"}
    status: dict[str, Any] = {"state": "none"}
    try:
        raw = _read_optional(
            storage, join_key(hearing.prefix, f"{PLAYBACK_DIR}/{PROGRESS_NAME}"), PROGRESS_LIMIT
        )
        if raw is not None:
            data = json.loads(raw)
            status = {
                "state": str(data.get("state", "none")),
                "percent": data.get("percent"),
                "error": data.get("error"),
            }
    except (StorageError, ValueError, AttributeError):
        status = {"state": "unknown"}
    if any(f.id == PLAYBACK_ID for f in hearing.files):
        status["file_id"] = PLAYBACK_ID
        if status["state"] in ("none", "unknown"):
            status["state"] = "done"
    return status


def read_log(storage: Storage, prefix: str | None) -> list[dict[str, Any]] | None:
    """The confirmation log's entries from the hearing folder (None when there is no log file)."""
    if prefix is None:
        return None
    try:
        data = _read_optional(storage, join_key(prefix, LOG_FILE_NAME), LOG_LIMIT)
    except StorageError:
        return None
    if data is None:
        return None
    entries = []
    for line in data.split(b"\n"):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # a damaged line is reported by the seal check, not shown on the timeline
        if isinstance(entry, dict) and isinstance(entry.get("seq"), int):
            entries.append(entry)
    return entries
