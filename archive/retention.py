"""Retention: how long each court keeps sealed hearings, and the purge that deletes expired ones.

Only a hearing that is sealed, not on legal hold and past its court's retention period is deleted.
Before any file goes, a deletion record — what is deleted, when, under which rule, the SHA-256 of every
file and of the manifest — is written and signed by the court (detached CMS, like the seal) under
``DATA_DIR/deletions/``.  The hold is re-checked under a row claim right before the files are deleted.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from archive.audit import AccessAudit, AccessRecord
from archive.catalogue import catalogue_hearing
from archive.models import ArchiveRecord, CourtRetention
from archive.storage import Storage, StorageError, validate_key
from hearing_server.domain.hearing import HearingStatus
from hearing_server.store.models import Hearing
from recording.cms import sign_detached
from recording.confirmation_log import utc_timestamp
from recording.durable import write_durably
from recording.hashchain import canonical_json
from recording.seal import MANIFEST_NAME, SIGNATURE_NAME, CourtSigner

DELETIONS_DIR = "deletions"
DELETION_FORMAT = "hearing-server/deletion/1"
SYSTEM_ACTOR = "system"
_CHUNK = 1 << 20

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetentionRule:
    """The retention period that applies to one court."""

    court: str
    days: int
    source: str  # "court" (its own row) or "default" (the configuration)

    def describe(self) -> str:
        """The rule in words, as written in deletion records."""
        return f"retention {self.days} days ({self.source} rule, court {self.court})"


async def court_periods(db: AsyncSession) -> dict[str, int]:
    """Every court's own retention period in days."""
    rows = await db.execute(select(CourtRetention.court, CourtRetention.retention_days))
    return {row.court: row.retention_days for row in rows}


async def rule_for(db: AsyncSession, court: str, default_days: int) -> RetentionRule:
    """The retention rule of ``court``."""
    row = await db.get(CourtRetention, court)
    if row is None:
        return RetentionRule(court, default_days, "default")
    return RetentionRule(court, row.retention_days, "court")


@dataclass(frozen=True)
class Expired:
    """A sealed hearing past its retention period."""

    hearing_id: str
    case_number: str
    court: str
    sealed_at: datetime
    expired_at: datetime
    rule: RetentionRule


async def expired_hearings(
    db: AsyncSession, default_days: int, now: datetime, limit: int = 1000
) -> list[Expired]:
    """Sealed hearings, not on hold and not deleted, whose retention has run out (oldest seal first)."""
    periods = await court_periods(db)
    windows = [
        and_(Hearing.court == court, Hearing.sealed_at < now - timedelta(days=days))
        for court, days in periods.items()
    ]
    others = Hearing.sealed_at < now - timedelta(days=default_days)
    if periods:
        others = and_(Hearing.court.not_in(list(periods)), others)
    deleted = select(ArchiveRecord.hearing_id).where(ArchiveRecord.deleted_at.is_not(None))
    rows = await db.execute(
        select(Hearing)
        .where(
            Hearing.status == HearingStatus.SEALED.value,
            Hearing.sealed_at.is_not(None),
            Hearing.legal_hold.is_(False),
            Hearing.id.not_in(deleted),
            or_(others, *windows),
        )
        .order_by(Hearing.sealed_at, Hearing.id)
        .limit(limit)
    )
    found = []
    for hearing in rows.scalars():
        assert hearing.sealed_at is not None
        days = periods.get(hearing.court, default_days)
        rule = RetentionRule(hearing.court, days, "court" if hearing.court in periods else "default")
        found.append(
            Expired(
                hearing.id,
                hearing.case_number,
                hearing.court,
                hearing.sealed_at,
                hearing.sealed_at + timedelta(days=days),
                rule,
            )
        )
    return found


@dataclass
class PurgeReport:
    """What a purge run found and did."""

    dry_run: bool
    candidates: list[Expired] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)


def _sha256(storage: Storage, key: str) -> str:
    digest = hashlib.sha256()
    with storage.open(key) as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _inventory(storage: Storage, prefix: str) -> list[dict[str, Any]]:
    return [
        {"path": info.key[len(prefix) + 1 :], "size": info.size, "sha256": _sha256(storage, info.key)}
        for info in storage.iterate(prefix)
    ]


def deletion_record(
    hearing: Hearing, expired: Expired, files: list[dict[str, Any]], *, actor: str, now: datetime
) -> dict[str, Any]:
    """The deletion record of one hearing: what goes, when, under which rule, with every file's hash."""
    by_path = {f["path"]: f for f in files}
    return {
        "format": DELETION_FORMAT,
        "deleted_at": utc_timestamp(now),
        "deleted_by": actor,
        "hearing": {
            "id": hearing.id,
            "case_number": hearing.case_number,
            "title": hearing.title,
            "court": hearing.court,
            "courtroom": hearing.courtroom,
            "presiding_judge": hearing.presiding_judge,
            "scheduled_start": utc_timestamp(hearing.scheduled_start),
            "sealed_at": utc_timestamp(hearing.sealed_at) if hearing.sealed_at else None,
            "recording_path": hearing.recording_path,
        },
        "rule": {
            "kind": "retention",
            "court": expired.rule.court,
            "days": expired.rule.days,
            "source": expired.rule.source,
            "expired_at": utc_timestamp(expired.expired_at),
            "legal_hold": False,
        },
        "manifest_sha256": by_path.get(MANIFEST_NAME, {}).get("sha256"),
        "signature_sha256": by_path.get(SIGNATURE_NAME, {}).get("sha256"),
        "files": files,
    }


@dataclass(frozen=True)
class Purger:
    """Everything the purge needs: database, storage, the court's signing key, records folder, audit."""

    sessions: async_sessionmaker[AsyncSession]
    storage: Storage
    signer: CourtSigner
    deletions_dir: Path
    audit: AccessAudit | None
    default_days: int

    async def run(
        self, now: datetime | None = None, *, dry_run: bool, actor: str = SYSTEM_ACTOR
    ) -> PurgeReport:
        """Find expired hearings and (unless ``dry_run``) delete each, one at a time."""
        now = now or datetime.now(UTC)
        async with self.sessions() as db:
            report = PurgeReport(dry_run, await expired_hearings(db, self.default_days, now))
        if dry_run:
            return report
        for expired in report.candidates:
            try:
                if await self.purge_one(expired, now, actor=actor):
                    report.deleted.append(expired.hearing_id)
                else:
                    report.failed.append((expired.hearing_id, "put on hold or changed meanwhile; kept"))
            except (OSError, StorageError) as exc:
                log.exception("purge of hearing %s failed", expired.hearing_id)
                report.failed.append((expired.hearing_id, f"{type(exc).__name__}: {exc}"))
        return report

    async def purge_one(self, expired: Expired, now: datetime, *, actor: str) -> bool:
        """Record, sign and delete one expired hearing; False if it was put on hold (or changed) meanwhile."""
        async with self.sessions() as db:
            hearing = await db.get(Hearing, expired.hearing_id)
        if hearing is None or hearing.legal_hold or hearing.status != HearingStatus.SEALED.value:
            return False
        prefix = validate_key(hearing.recording_path) if hearing.recording_path else None
        files = await asyncio.to_thread(_inventory, self.storage, prefix) if prefix else []
        record = deletion_record(hearing, expired, files, actor=actor, now=now)
        data = canonical_json(record)
        name = f"{hearing.id}-{now.strftime('%Y%m%dT%H%M%S%fZ')}.json"
        record_path = self.deletions_dir / name
        signature = sign_detached(data, self.signer.certificate, self.signer.key)
        await asyncio.to_thread(write_durably, record_path, data)
        await asyncio.to_thread(write_durably, record_path.with_name(name + ".p7s"), signature)
        async with self.sessions() as db, db.begin():
            # Claims the row (a write lock on both databases): a hold set from now on waits for this
            # transaction, and a hold set before it makes the claim match nothing.
            claimed = await db.execute(
                update(Hearing)
                .where(
                    Hearing.id == hearing.id,
                    Hearing.legal_hold.is_(False),
                    Hearing.status == HearingStatus.SEALED.value,
                    Hearing.id.not_in(
                        select(ArchiveRecord.hearing_id).where(ArchiveRecord.deleted_at.is_not(None))
                    ),
                )
                .values(legal_hold=False)
                .execution_options(synchronize_session=False)
            )
            if getattr(claimed, "rowcount", 0) != 1:
                await asyncio.to_thread(_discard, record_path)
                return False
            if prefix:
                await asyncio.to_thread(_delete_all, self.storage, prefix)
            current = await db.get(Hearing, hearing.id)
            assert current is not None
            archive_record = await catalogue_hearing(db, current, now)
            archive_record.deleted_at = now
            archive_record.deletion_rule = expired.rule.describe()[:200]
            archive_record.deletion_record = f"{DELETIONS_DIR}/{name}"
        if self.audit is not None:
            await self.audit.record(
                AccessRecord(
                    actor=actor,
                    role=SYSTEM_ACTOR if actor == SYSTEM_ACTOR else "admin",
                    action="purge_deleted",
                    status=200,
                    result="ok",
                    hearing_id=hearing.id,
                    target=f"{DELETIONS_DIR}/{name}",
                    details={"rule": expired.rule.describe(), "files": len(files)},
                ),
                now,
            )
        return True


def _discard(record_path: Path) -> None:
    for path in (record_path, record_path.with_name(record_path.name + ".p7s")):
        path.unlink(missing_ok=True)


def _delete_all(storage: Storage, prefix: str) -> None:
    for info in list(storage.iterate(prefix)):
        storage.delete(info.key)
