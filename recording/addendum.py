"""Addendum seals: what is added to a sealed hearing (a court act, or the outcome of a message sent to a
party after the seal), signed and chained to the original seal.

``addenda/<n>/manifest.json`` lists the new files (size, SHA-256), the SHA-256 of the hearing's
``manifest.json`` and of the previous addendum's manifest, and its own small hash-chained log
(``addenda/<n>/log.jsonl``) of the events that added them (an addendum may hold events only, no file);
``manifest.json.p7s`` is the court's detached CMS signature over it, checked by ``openssl cms -verify`` as
the original seal is.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from recording.cms import sign_detached
from recording.confirmation_log import utc_timestamp
from recording.durable import write_durably
from recording.hashchain import HashChain, canonical_json, verify_chain
from recording.seal import MANIFEST_NAME, SIGNATURE_NAME, CourtSigner, SealError, describe_file, sha256_file

ADDENDA_DIR = "addenda"
ADDENDUM_LOG_NAME = "log.jsonl"
ADDENDUM_FORMAT = "hearing-server/addendum/1"


@dataclass(frozen=True)
class AddendumEvent:
    """One event recorded in an addendum's log (e.g. ``act_signed``, ``notification_sent``)."""

    event: str
    actor: str | None
    details: Mapping[str, Any]
    party_id: str | None = None


@dataclass(frozen=True)
class AddendumResult:
    """A sealed addendum: its number, folder and manifest."""

    number: int
    folder: Path
    manifest: dict[str, Any]


def addendum_numbers(folder: Path) -> list[int]:
    """The numbers of the addenda folders present, ascending (names that are not numbers are ignored)."""
    root = folder / ADDENDA_DIR
    if not root.is_dir():
        return []
    return sorted(int(p.name) for p in root.iterdir() if p.is_dir() and p.name.isdigit())


def sha256_bytes(data: bytes) -> str:
    """SHA-256 (hex) of bytes."""
    return hashlib.sha256(data).hexdigest()


def seal_addendum(
    folder: Path | str,
    hearing_id: str,
    signer: CourtSigner,
    files: Sequence[str],
    events: Sequence[AddendumEvent],
    *,
    sealed_at: datetime | None = None,
) -> AddendumResult:
    """Seal ``files`` (paths relative to the sealed hearing folder, already written; may be none) and
    ``events`` as the next addendum."""
    folder = Path(folder)
    original = folder / MANIFEST_NAME
    if not original.exists() or not (folder / SIGNATURE_NAME).exists():
        raise SealError(f"{folder} is not sealed; an addendum follows a seal")
    if not events:
        raise SealError("an addendum needs at least one event")
    numbers = addendum_numbers(folder)
    number = (numbers[-1] if numbers else 0) + 1
    target = folder / ADDENDA_DIR / str(number)
    if target.exists():
        raise SealError(f"{target} exists already")
    previous = (
        {
            "path": f"{ADDENDA_DIR}/{numbers[-1]}/{MANIFEST_NAME}",
            "sha256": sha256_bytes((folder / ADDENDA_DIR / str(numbers[-1]) / MANIFEST_NAME).read_bytes()),
        }
        if numbers
        else None
    )
    log_path = target / ADDENDUM_LOG_NAME
    with HashChain(log_path) as chain:
        for item in events:
            chain.append(
                {
                    "time": utc_timestamp(),
                    "hearing_id": hearing_id,
                    "event": item.event,
                    "actor": item.actor,
                    "party_id": item.party_id,
                    "details": dict(item.details),
                }
            )
    log = verify_chain(log_path)
    manifest: dict[str, Any] = {
        "format": ADDENDUM_FORMAT,
        "hearing_id": hearing_id,
        "number": number,
        "sealed_at": utc_timestamp(sealed_at),
        "signer": signer.subject,
        "seal": {"path": MANIFEST_NAME, "sha256": sha256_bytes(original.read_bytes())},
        "previous": previous,
        "log": {
            "path": f"{ADDENDA_DIR}/{number}/{ADDENDUM_LOG_NAME}",
            "entries": log.entries,
            "last_hash": log.last_hash,
            "size": log_path.stat().st_size,
            "sha256": sha256_file(log_path),
        },
        "files": [describe_file(folder, folder / rel) for rel in sorted(files)],
    }
    data = canonical_json(manifest)
    write_durably(target / MANIFEST_NAME, data)
    write_durably(target / SIGNATURE_NAME, sign_detached(data, signer.certificate, signer.key))
    return AddendumResult(number, target, manifest)
