"""An append-only, hash-chained JSON-lines file: each entry seals the one before it.

Every line is the canonical JSON of one entry carrying ``seq`` (1, 2, ...),
``prev_hash`` (the previous entry's ``hash``; :data:`GENESIS_HASH` for the
first) and ``hash`` (SHA-256 over the canonical JSON of the entry without
``hash``).  Each append is fsynced; reopening resumes the chain.  A torn last
line (a crash mid-write) is cut off on reopen and the cut is itself recorded
as an entry, so nothing disappears without trace.  Used by the confirmation
log and the archive's access audit.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from recording.durable import fsync_dir

GENESIS_HASH = "0" * 64
RESERVED_FIELDS = frozenset({"seq", "prev_hash", "hash"})
_TORN_PREVIEW_CHARS = 2000


def canonical_json(value: Any) -> bytes:
    """The one byte encoding that hashes are taken over: sorted keys, no whitespace, UTF-8."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def entry_hash(entry: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of an entry's canonical encoding without its ``hash`` field."""
    body = {k: v for k, v in entry.items() if k != "hash"}
    return hashlib.sha256(canonical_json(body)).hexdigest()


class ChainFault(StrEnum):
    """Why an entry breaks the chain."""

    UNPARSEABLE = "unparseable"
    BAD_HASH = "bad_hash"
    SEQ_MISMATCH = "seq_mismatch"
    BROKEN_LINK = "broken_link"
    TORN_TAIL = "torn_tail"


@dataclass(frozen=True)
class ChainProblem:
    """The first place where a chain file stops being trustworthy."""

    line: int  # 1-based line number in the file
    seq: int | None  # the seq the line claims, if it could be read
    fault: ChainFault
    detail: str

    def describe(self) -> str:
        """One human line naming the entry and the fault."""
        seq = f", seq {self.seq}" if self.seq is not None else ""
        return f"line {self.line}{seq}: {self.fault.value} ({self.detail})"


@dataclass(frozen=True)
class ChainVerification:
    """Outcome of checking a chain file from its first line to its last."""

    path: Path
    entries: int  # entries verified good before any problem
    last_hash: str  # hash of the last good entry (GENESIS_HASH when none)
    problem: ChainProblem | None

    @property
    def valid(self) -> bool:
        """True when every line is intact and linked."""
        return self.problem is None


@dataclass(frozen=True)
class TornTail:
    """Bytes after the last complete line, found when a chain was reopened."""

    offset: int  # where the torn bytes began (the file was truncated here)
    data: bytes

    def describe(self) -> dict[str, Any]:
        """Fields that record the cut in the repair entry."""
        return {
            "torn_offset": self.offset,
            "torn_bytes": len(self.data),
            "torn_sha256": hashlib.sha256(self.data).hexdigest(),
            "torn_text": self.data.decode("utf-8", errors="replace")[:_TORN_PREVIEW_CHARS],
        }


class ChainCorruptedError(Exception):
    """The chain file is broken somewhere before its end; it must not be extended."""

    def __init__(self, problem: ChainProblem) -> None:
        super().__init__(problem.describe())
        self.problem = problem


def _default_repair_fields(torn: TornTail) -> dict[str, Any]:
    return {"type": "chain_repaired", **torn.describe()}


def _split_lines(data: bytes) -> tuple[list[bytes], bytes]:
    """Complete lines (without newline) and whatever follows the last newline."""
    parts = data.split(b"\n")
    return parts[:-1], parts[-1]


def _check_entry(
    raw: bytes, line_no: int, expected_seq: int, prev_hash: str
) -> tuple[dict[str, Any] | None, ChainProblem | None]:
    try:
        entry = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, ChainProblem(line_no, None, ChainFault.UNPARSEABLE, str(exc))
    if not isinstance(entry, dict):
        return None, ChainProblem(line_no, None, ChainFault.UNPARSEABLE, "not a JSON object")
    seq = entry.get("seq")
    seq_claimed = seq if isinstance(seq, int) and not isinstance(seq, bool) else None
    if (
        seq_claimed is None
        or not isinstance(entry.get("hash"), str)
        or not isinstance(entry.get("prev_hash"), str)
    ):
        return None, ChainProblem(
            line_no, seq_claimed, ChainFault.UNPARSEABLE, "seq, prev_hash or hash missing"
        )
    if entry_hash(entry) != entry["hash"]:
        return None, ChainProblem(
            line_no, seq_claimed, ChainFault.BAD_HASH, "content does not match its hash"
        )
    if seq_claimed != expected_seq:
        return None, ChainProblem(
            line_no, seq_claimed, ChainFault.SEQ_MISMATCH, f"expected seq {expected_seq}, found {seq_claimed}"
        )
    if entry["prev_hash"] != prev_hash:
        return None, ChainProblem(
            line_no, seq_claimed, ChainFault.BROKEN_LINK, "prev_hash is not the previous entry's hash"
        )
    return entry, None


def _walk(data: bytes, path: Path) -> tuple[list[dict[str, Any]], ChainVerification]:
    lines, tail = _split_lines(data)
    entries: list[dict[str, Any]] = []
    prev = GENESIS_HASH
    for index, raw in enumerate(lines):
        entry, problem = _check_entry(raw, index + 1, len(entries) + 1, prev)
        if problem is not None:
            return entries, ChainVerification(path, len(entries), prev, problem)
        assert entry is not None
        entries.append(entry)
        prev = entry["hash"]
    if tail:
        problem = ChainProblem(
            len(lines) + 1, None, ChainFault.TORN_TAIL, f"{len(tail)} bytes after the last complete line"
        )
        return entries, ChainVerification(path, len(entries), prev, problem)
    return entries, ChainVerification(path, len(entries), prev, None)


def verify_chain(path: Path | str) -> ChainVerification:
    """Check every line of a chain file; the result names the first broken entry."""
    path = Path(path)
    return _walk(path.read_bytes(), path)[1]


def read_chain(path: Path | str) -> list[dict[str, Any]]:
    """The entries of a chain file up to (not including) the first broken one."""
    path = Path(path)
    return _walk(path.read_bytes(), path)[0]


class HashChain:
    """An open chain file that entries are appended to, each fsynced before append returns.

    Appends are serialised by a lock, so threads may share one chain.  Opening
    verifies the existing file: a chain broken before its end raises
    :class:`ChainCorruptedError`; a torn last line is truncated and a repair
    entry (built by ``repair_fields``) is appended.
    """

    def __init__(
        self,
        path: Path | str,
        *,
        repair_fields: Callable[[TornTail], Mapping[str, Any]] = _default_repair_fields,
    ) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._repair_fields = repair_fields
        self.repaired: TornTail | None = None
        created = not self.path.exists()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o640)
        try:
            if created:
                os.fsync(self._fd)
                fsync_dir(self.path.parent)
            self._resume()
        except BaseException:
            os.close(self._fd)
            raise

    def _resume(self) -> None:
        data = self.path.read_bytes()
        entries, result = _walk(data, self.path)
        self._count = result.entries
        self._last_hash = result.last_hash
        if result.problem is None:
            return
        if result.problem.fault is not ChainFault.TORN_TAIL:
            raise ChainCorruptedError(result.problem)
        offset = data.rfind(b"\n") + 1
        torn = TornTail(offset=offset, data=data[offset:])
        os.ftruncate(self._fd, offset)
        os.fsync(self._fd)
        self.repaired = torn
        self.append(self._repair_fields(torn))

    @property
    def last_hash(self) -> str:
        """Hash of the newest entry (GENESIS_HASH for an empty chain)."""
        return self._last_hash

    @property
    def count(self) -> int:
        """Number of entries, which is also the newest entry's seq."""
        return self._count

    def append(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Chain, write and fsync one entry; returns it with seq, prev_hash and hash."""
        clash = RESERVED_FIELDS & fields.keys()
        if clash:
            raise ValueError(f"fields reserved for the chain: {sorted(clash)}")
        with self._lock:
            if self._fd < 0:
                raise ValueError("chain is closed")
            entry = dict(fields)
            entry["seq"] = self._count + 1
            entry["prev_hash"] = self._last_hash
            entry["hash"] = entry_hash(entry)
            line = canonical_json(entry) + b"\n"
            size_before = os.fstat(self._fd).st_size
            try:
                written = os.write(self._fd, line)
                if written != len(line):
                    raise OSError(f"short write to {self.path}: {written} of {len(line)} bytes")
            except OSError:
                # Leave no half line behind: the chain stays extendable once the cause is fixed.
                os.ftruncate(self._fd, size_before)
                raise
            os.fsync(self._fd)
            self._count += 1
            self._last_hash = entry["hash"]
            return entry

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(read_chain(self.path))

    def close(self) -> None:
        """Release the file; further appends fail."""
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1

    def __enter__(self) -> HashChain:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
