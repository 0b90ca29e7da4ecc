"""Signed checkpoints of the confirmation log: the court's signature over a log position while it is live.

The hash chain alone is unkeyed: whoever can write the hearing folder can rewrite the whole chain
consistently, and only the seal (signed at the end) fixes it for good.  A checkpoint is the court key's
detached CMS signature over ``(hearing id, seq, entry hash, time)``, appended to
``<hearing folder>/log-checkpoints.jsonl``.  A log rewritten after a checkpoint no longer matches it, and
nobody without the court key can sign a new one.  Sealing refuses such a log; the seal lists the checkpoints
and the verifier checks each against the log.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509

from recording.cms import SignerKey, sign_detached, verify_detached
from recording.durable import fsync_dir
from recording.hashchain import canonical_json

CHECKPOINTS_NAME = "log-checkpoints.jsonl"
CHECKPOINT_FORMAT = "hearing-server/log-checkpoint/1"


@dataclass(frozen=True)
class Checkpoint:
    """One signed log position, as written on a line of the checkpoints file."""

    hearing_id: str
    seq: int
    entry_hash: str
    time: str
    signature: bytes

    def signed_bytes(self) -> bytes:
        """What the signature covers: the canonical JSON of the signed fields."""
        return signed_payload(self.hearing_id, self.seq, self.entry_hash, self.time)

    def to_line(self) -> bytes:
        """The checkpoint as one line of the file."""
        data = json.loads(self.signed_bytes())
        data["signature"] = base64.b64encode(self.signature).decode("ascii")
        return canonical_json(data) + b"\n"


def signed_payload(hearing_id: str, seq: int, entry_hash: str, time: str) -> bytes:
    """The canonical bytes a checkpoint signs."""
    return canonical_json(
        {
            "format": CHECKPOINT_FORMAT,
            "hearing_id": hearing_id,
            "seq": seq,
            "entry_hash": entry_hash,
            "time": time,
        }
    )


def make_checkpoint(
    hearing_id: str, seq: int, entry_hash: str, time: str, certificate: x509.Certificate, key: SignerKey
) -> Checkpoint:
    """Sign one log position with the court's certificate and key."""
    payload = signed_payload(hearing_id, seq, entry_hash, time)
    return Checkpoint(hearing_id, seq, entry_hash, time, sign_detached(payload, certificate, key))


def append_checkpoint(folder: Path, checkpoint: Checkpoint) -> None:
    """Append ``checkpoint`` to the folder's checkpoints file and fsync it.

    A torn last line (a crash mid-write) is cut first: half a signature anchors nothing.
    """
    path = folder / CHECKPOINTS_NAME
    created = not path.exists()
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o640)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":  # torn: keep up to the last whole line
            size = path.read_bytes().rfind(b"\n") + 1
            os.ftruncate(fd, size)
        os.lseek(fd, size, os.SEEK_SET)
        line = checkpoint.to_line()
        if os.write(fd, line) != len(line):
            os.ftruncate(fd, size)
            raise OSError(f"short write to {path}")
        os.fsync(fd)
    finally:
        os.close(fd)
    if created:
        fsync_dir(folder)


@dataclass(frozen=True)
class CheckpointLine:
    """One line of a checkpoints file: the checkpoint, or why it cannot be read."""

    line: int
    checkpoint: Checkpoint | None
    error: str | None = None


def read_checkpoints(folder: Path) -> list[CheckpointLine]:
    """Every line of the folder's checkpoints file (none when there is no file)."""
    path = folder / CHECKPOINTS_NAME
    if not path.exists():
        return []
    found = []
    for number, raw in enumerate(path.read_bytes().split(b"\n"), start=1):
        if not raw.strip():
            continue
        found.append(_parse(number, raw))
    return found


def _parse(number: int, raw: bytes) -> CheckpointLine:
    try:
        data = json.loads(raw)
        if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
            return CheckpointLine(number, None, "not a checkpoint of this format")
        checkpoint = Checkpoint(
            hearing_id=_typed(data, "hearing_id", str),
            seq=_typed(data, "seq", int),
            entry_hash=_typed(data, "entry_hash", str),
            time=_typed(data, "time", str),
            signature=base64.b64decode(_typed(data, "signature", str), validate=True),
        )
    except (ValueError, TypeError, binascii.Error) as exc:
        return CheckpointLine(number, None, f"unreadable: {exc}")
    return CheckpointLine(number, checkpoint)


def _typed(data: Mapping[str, Any], name: str, kind: type) -> Any:
    value = data.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise TypeError(f"{name} is not a {kind.__name__}")
    return value


@dataclass(frozen=True)
class CheckpointFinding:
    """Something wrong between the checkpoints and the log (``line``: the checkpoints file's line)."""

    line: int
    seq: int | None
    detail: str
    contradicts_log: bool  # the log differs from what the court signed (rather than a bad checkpoint)


def check_checkpoints(
    lines: Sequence[CheckpointLine],
    hearing_id: str,
    entries: Sequence[Mapping[str, Any]],
    signer: x509.Certificate | None,
    trusted: x509.Certificate | None = None,
) -> list[CheckpointFinding]:
    """Check every checkpoint's signature and that the log ``entries`` still hold the signed position.

    A signature counts when it verifies and its signer is ``signer`` (the seal's, or the court's own
    certificate while live) or, with ``trusted`` given, is trusted by it.
    """
    findings: list[CheckpointFinding] = []
    last_seq = 0
    for item in lines:
        cp = item.checkpoint
        if cp is None:
            findings.append(CheckpointFinding(item.line, None, item.error or "unreadable", False))
            continue
        result = verify_detached(cp.signed_bytes(), cp.signature, trusted)
        if not result.valid:
            findings.append(CheckpointFinding(item.line, cp.seq, f"signature: {result.reason}", False))
            continue
        if trusted is not None and not result.trusted:
            findings.append(CheckpointFinding(item.line, cp.seq, "signed by an untrusted key", False))
            continue
        if signer is not None and result.signer != signer:
            findings.append(
                CheckpointFinding(item.line, cp.seq, "signed by another key than the seal", False)
            )
            continue
        if cp.hearing_id != hearing_id:
            findings.append(CheckpointFinding(item.line, cp.seq, f"of hearing {cp.hearing_id}", False))
            continue
        if cp.seq <= last_seq:
            findings.append(CheckpointFinding(item.line, cp.seq, f"out of order after seq {last_seq}", False))
            continue
        last_seq = cp.seq
        if cp.seq > len(entries):
            findings.append(
                CheckpointFinding(
                    item.line, cp.seq, f"the log has only {len(entries)} entries; signed entry missing", True
                )
            )
        elif entries[cp.seq - 1].get("hash") != cp.entry_hash:
            findings.append(
                CheckpointFinding(
                    item.line,
                    cp.seq,
                    f"log entry {cp.seq} differs from the one the court signed at {cp.time}",
                    True,
                )
            )
    return findings


def summary(lines: Sequence[CheckpointLine]) -> dict[str, Any]:
    """What the seal manifest records about the checkpoints: path, count and the newest position."""
    good = [item.checkpoint for item in lines if item.checkpoint is not None]
    last = good[-1] if good else None
    return {
        "path": CHECKPOINTS_NAME,
        "count": len(lines),
        "last_seq": last.seq if last else None,
        "last_entry_hash": last.entry_hash if last else None,
    }
