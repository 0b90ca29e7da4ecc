"""The access audit: every request to the archive — who, role, when, what, from where, with what result.

Entries go to ``DATA_DIR/audit/access-log.jsonl``, a hash chain (``recording.hashchain``) fsynced per
entry, and are mirrored to the ``archive_access_log`` table for reading.  The file is the record of truth.
One middleware records each archive request exactly once, including refused and failed ones; a
streaming handler records when its answer is decided, before the first byte is sent.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from archive.models import AccessAuditEntry
from hearing_server.auth.client import client_ip, user_agent
from hearing_server.auth.staff import current_session
from hearing_server.domain.errors import HearingError
from hearing_server.domain.ids import is_valid_id
from recording.confirmation_log import utc_timestamp
from recording.hashchain import ChainVerification, HashChain, verify_chain

AUDIT_DIR = "audit"
AUDIT_FILE = "access-log.jsonl"
LOCK_FILE = ".access-log.lock"
ARCHIVE_PREFIX = "/api/v1/archive"
_MAX_TEXT = 200

log = logging.getLogger(__name__)


def audit_path(data_dir: Path) -> Path:
    """Where the access-audit chain lives."""
    return data_dir / AUDIT_DIR / AUDIT_FILE


@dataclass(frozen=True)
class AccessRecord:
    """One access to the archive, before it is chained."""

    actor: str
    role: str
    action: str
    status: int
    result: str
    hearing_id: str | None = None
    target: str = ""
    ip: str = ""
    user_agent: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)

    def fields(self, now: datetime) -> dict[str, Any]:
        """The entry's fields as chained (the chain adds seq, prev_hash and hash)."""
        return {
            "time": utc_timestamp(now),
            "actor": self.actor[:64],
            "role": self.role[:16],
            "action": self.action[:32],
            "hearing_id": self.hearing_id,
            "target": self.target[:_MAX_TEXT],
            "status": self.status,
            "result": self.result[:64],
            "ip": self.ip[:64],
            "user_agent": self.user_agent[:400],
            "details": dict(self.details),
        }


class AccessAudit:
    """The access-audit chain of one data directory and its database mirror.

    Appends are serialised in this process by a lock and across processes (the server and the
    ``archive purge`` command) by an advisory file lock; a chain extended by another process is
    reopened (and so re-verified) before the next append.
    """

    def __init__(self, path: Path, sessions: async_sessionmaker[AsyncSession] | None) -> None:
        self.path = path
        self._sessions = sessions
        self._lock = asyncio.Lock()
        self._chain: HashChain | None = None
        self._size = -1

    def _locked(self) -> int:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path.parent / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o640)
        fcntl.flock(fd, fcntl.LOCK_EX)
        return fd

    def _append(self, fields: dict[str, Any]) -> dict[str, Any]:
        fd = self._locked()
        try:
            size = self.path.stat().st_size if self.path.exists() else -1
            if self._chain is None or size != self._size:
                if self._chain is not None:
                    self._chain.close()
                self._chain = HashChain(self.path)
            entry = self._chain.append(fields)
            self._size = self.path.stat().st_size
            return entry
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    async def record(self, access: AccessRecord, now: datetime | None = None) -> dict[str, Any]:
        """Chain one access durably, then mirror it to the database; returns the chained entry."""
        moment = now or datetime.now(UTC)
        async with self._lock:
            entry = await asyncio.to_thread(self._append, access.fields(moment))
            if self._sessions is not None:
                await self._mirror(entry, moment)
        return entry

    async def _mirror(self, entry: dict[str, Any], moment: datetime) -> None:
        assert self._sessions is not None
        try:
            async with self._sessions() as db, db.begin():
                db.add(
                    AccessAuditEntry(
                        seq=entry["seq"],
                        time=moment,
                        actor=entry["actor"],
                        role=entry["role"],
                        action=entry["action"],
                        hearing_id=entry["hearing_id"],
                        target=entry["target"],
                        status=entry["status"],
                        result=entry["result"],
                        ip=entry["ip"],
                        user_agent=entry["user_agent"],
                        details=entry["details"],
                        prev_hash=entry["prev_hash"],
                        hash=entry["hash"],
                    )
                )
        except Exception:
            # The chained file already holds the entry; a failing mirror must not fail the access.
            log.exception("access audit entry %s not mirrored to the database", entry["seq"])

    async def snapshot_size(self) -> int:
        """The file's size between appends: a prefix of whole, chained lines."""
        async with self._lock:
            return self.path.stat().st_size if self.path.exists() else 0

    def verify(self) -> ChainVerification:
        """Check the whole chain file (blocking)."""
        if not self.path.exists():
            return ChainVerification(self.path, 0, "0" * 64, None)
        return verify_chain(self.path)

    def close(self) -> None:
        """Release the chain file."""
        if self._chain is not None:
            self._chain.close()
            self._chain = None


@dataclass
class AuditNote:
    """What the handler of one archive request says about it, for its audit entry."""

    action: str
    hearing_id: str | None = None
    target: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    recorded: bool = False


AUDIT = web.AppKey("archive_audit", AccessAudit)
AUDIT_NOTE = web.RequestKey("archive_audit_note", AuditNote)
ActionOf = Callable[[web.Request], str]


def note(request: web.Request) -> AuditNote:
    """The audit note of an archive request (set by the middleware)."""
    return request[AUDIT_NOTE]


def _clean(value: str, limit: int = 64) -> str:
    text = "".join(ch if ch.isprintable() else "?" for ch in value[:limit])
    return text + ("…" if len(value) > limit else "")


async def record_now(request: web.Request, status: int, result: str) -> None:
    """Write the request's audit entry now (once); later calls do nothing."""
    current = request.get(AUDIT_NOTE)
    if current is None or current.recorded:
        return
    current.recorded = True
    session = await current_session(request)
    hearing_id = current.hearing_id
    if hearing_id is None:
        raw = request.match_info.get("hearing_id")
        if raw is not None:
            hearing_id = raw if is_valid_id(raw) else None
            if hearing_id is None:
                current.details.setdefault("hearing_id_given", _clean(raw))
    if request.query:
        current.details.setdefault(
            "query", {_clean(k, 40): _clean(v, _MAX_TEXT) for k, v in list(request.query.items())[:20]}
        )
    target = current.target or _clean(request.match_info.get("file_id", ""))
    await request.app[AUDIT].record(
        AccessRecord(
            actor=session.user.username if session is not None else "anonymous",
            role=session.user.role if session is not None else "",
            action=current.action,
            status=status,
            result=result,
            hearing_id=hearing_id,
            target=target,
            ip=client_ip(request),
            user_agent=user_agent(request),
            details=current.details,
        )
    )


def audit_middleware(action_of: ActionOf) -> Callable[..., Awaitable[web.StreamResponse]]:
    """A middleware recording every request under ``/api/v1/archive`` once, with its outcome."""

    @web.middleware
    async def middleware(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if not (request.path == ARCHIVE_PREFIX or request.path.startswith(ARCHIVE_PREFIX + "/")):
            return await handler(request)
        request[AUDIT_NOTE] = AuditNote(action=action_of(request))
        try:
            response = await handler(request)
        except HearingError as exc:
            await record_now(request, exc.status, exc.code)
            raise
        except ValidationError:
            await record_now(request, 400, "invalid_input")
            raise
        except web.HTTPException as exc:
            await record_now(request, exc.status, "ok" if exc.status < 400 else f"http_{exc.status}")
            raise
        except Exception:
            await record_now(request, 500, "internal_error")
            raise
        await record_now(
            request, response.status, "ok" if response.status < 400 else f"http_{response.status}"
        )
        return response

    return middleware
