"""Sealing ended hearings with the court's key, checking seals, and putting things right after a crash."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hearing_server.config import Config
from hearing_server.domain.errors import Conflict, EventLogUnavailable, NotFound
from hearing_server.domain.events import EventType
from hearing_server.domain.hearing import LIVE, HearingStatus, check_transition
from hearing_server.record.event_log import EventRecorder
from hearing_server.record.folder import resolve_folder
from hearing_server.record.playback import PlaybackJobs
from hearing_server.store.models import Hearing
from recording.addendum import AddendumEvent, AddendumResult, seal_addendum
from recording.checkpoints import CHECKPOINTS_NAME, read_checkpoints
from recording.confirmation_log import LOG_FILE_NAME
from recording.hashchain import read_chain
from recording.seal import (
    MANIFEST_NAME,
    SIGNATURE_NAME,
    CourtSigner,
    SealError,
    evidence_files,
    generate_court_certificate,
    seal_hearing,
)
from recording.verify import VerificationReport, verify_hearing

log = logging.getLogger(__name__)

PLAYBACK_RECOVERY_WINDOW = timedelta(days=7)


@asynccontextmanager
async def _nothing_signed() -> AsyncIterator[int]:
    yield 0


def load_signer(config: Config) -> CourtSigner:
    """The court's signer from configuration; a self-signed development pair when none is configured."""
    if config.court_cert is not None or config.court_key is not None:
        return CourtSigner.load(config.court_cert_path, config.court_key_path)
    config.court_cert_path.parent.mkdir(parents=True, exist_ok=True)
    return generate_court_certificate(config.court_cert_path, config.court_key_path, config.court_name)


@dataclass(frozen=True)
class SealOutcome:
    """A sealed hearing: its folder, who signed and when."""

    hearing_id: str
    folder: Path
    signer_subject: str
    sealed_at: datetime


class Sealer:
    """Seals ended hearings and recovers hearings a crash left live or unsealed."""

    def __init__(
        self,
        config: Config,
        sessions: async_sessionmaker[AsyncSession],
        events: EventRecorder,
        playback: PlaybackJobs,
    ) -> None:
        self._config = config
        self._sessions = sessions
        self._events = events
        self._playback = playback
        self._signer: CourtSigner | None = None
        self._signer_lock = asyncio.Lock()
        self._lock = asyncio.Lock()
        self._background: set[asyncio.Task[None]] = set()

    async def signer(self) -> CourtSigner:
        """The court's signer, loaded (or generated for development) once."""
        # One loader at a time: checkpoints and a seal may ask together, and two threads generating the
        # development pair at once could leave one's certificate beside the other's key.
        async with self._signer_lock:
            if self._signer is None:
                self._signer = await asyncio.to_thread(load_signer, self._config)
        return self._signer

    async def seal(self, hearing_id: str, actor: str = "system") -> SealOutcome:
        """Seal an ended hearing: log ``hearing_sealed``, write and sign the manifest, mark it sealed.

        Safe to repeat after a crash or a failed attempt: a ``hearing_sealed`` entry left last in the
        log is not written twice, and a seal already on disk is kept (the hearing is only marked).
        """
        async with self._lock:
            async with self._sessions() as session:
                hearing = await session.get(Hearing, hearing_id)
                if hearing is None:
                    raise NotFound("no such hearing", code="hearing_not_found")
                check_transition(HearingStatus(hearing.status), HearingStatus.SEALED)
            signer = await self.signer()
            folder = await self._events.folder(hearing_id)
            manifest, signature = folder / MANIFEST_NAME, folder / SIGNATURE_NAME
            if manifest.exists() and signature.exists():
                log.warning("hearing %s was sealed on disk before a crash; marking it sealed", hearing_id)
                await self._events.close_log(hearing_id)
            else:
                for orphan in (manifest, signature):
                    if orphan.exists():  # half a seal (a crash between the two writes) seals nothing
                        log.warning("removing %s, left without its counterpart", orphan)
                        await asyncio.to_thread(orphan.unlink)
                await self._log_sealed(hearing_id, actor, signer)
                await self._events.close_log(hearing_id)
                await self._seal_files(folder, hearing_id, signer)
            now = datetime.now(UTC)
            async with self._sessions() as session:
                await session.execute(
                    update(Hearing)
                    .where(Hearing.id == hearing_id)
                    .values(status=HearingStatus.SEALED.value, sealed_at=now, updated_at=now)
                )
                await session.commit()
        log.info("hearing %s sealed by %s", hearing_id, signer.subject)
        self._playback.enqueue(folder)
        return SealOutcome(hearing_id, folder, signer.subject, now)

    async def seal_addendum(
        self, hearing_id: str, files: list[str], events: list[AddendumEvent]
    ) -> AddendumResult:
        """Seal files added to a sealed hearing's folder as its next addendum, chained to the seal."""
        async with self._lock:
            return await self._seal_addendum(hearing_id, files, events)

    async def _seal_addendum(
        self, hearing_id: str, files: list[str], events: list[AddendumEvent]
    ) -> AddendumResult:
        # The caller holds the seal lock.
        signer = await self.signer()
        folder = await self._events.folder(hearing_id)
        what = ", ".join(files) or ", ".join(e.event for e in events)
        try:
            result = await asyncio.to_thread(seal_addendum, folder, hearing_id, signer, files, events)
        except (SealError, OSError) as exc:
            log.exception("hearing %s: addendum for %s not sealed", hearing_id, what)
            raise EventLogUnavailable(
                f"the addition could not be sealed as an addendum: {exc}", code="addendum_unavailable"
            ) from exc
        log.info("hearing %s: addendum %d sealed (%s)", hearing_id, result.number, what)
        return result

    async def record_or_seal(
        self,
        hearing_id: str,
        event: EventType,
        *,
        actor: str,
        party_id: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> AddendumResult | None:
        """Write ``event`` to the hearing's confirmation log; once the hearing is sealed (its log cannot
        grow) seal it as an addendum of its own instead (returned). Decided under the seal lock, so no event
        slips in between a seal's last log entry and the hearing being marked sealed."""
        async with self._lock:
            async with self._sessions() as session:
                status = (
                    await session.execute(select(Hearing.status).where(Hearing.id == hearing_id))
                ).scalar()
            if status != HearingStatus.SEALED.value:
                await self._events.record(
                    hearing_id, event, actor=actor, party_id=party_id, details=details or {}
                )
                return None
            item = AddendumEvent(event.value, actor, details or {}, party_id=party_id)
            return await self._seal_addendum(hearing_id, [], [item])

    async def _seal_files(self, folder: Path, hearing_id: str, signer: CourtSigner) -> None:
        """Write and sign the manifest with no checkpoint added meanwhile.

        Not sealed: a log that contradicts its database mirror or a signed checkpoint, or a checkpoints file
        that lost one this server signed.
        """
        await self._check_mirror(folder, hearing_id)
        checkpoints = self._events.checkpoints
        async with checkpoints.held(hearing_id) if checkpoints else _nothing_signed() as signed_seq:
            lines = await asyncio.to_thread(read_checkpoints, folder)
            kept = max((i.checkpoint.seq for i in lines if i.checkpoint is not None), default=0)
            try:
                if kept < signed_seq:
                    raise SealError(f"{CHECKPOINTS_NAME} lost the checkpoint signed at seq {signed_seq}")
                await asyncio.to_thread(seal_hearing, folder, hearing_id, signer)
            except SealError as exc:
                log.error("hearing %s not sealed: %s", hearing_id, exc)
                raise Conflict(f"the hearing cannot be sealed: {exc}", code="seal_failed") from exc

    async def _check_mirror(self, folder: Path, hearing_id: str) -> None:
        """The log file must still hold every entry the database mirrored, hash for hash (the mirror may lag
        behind the file after an outage or a crash, never the other way round)."""
        await self._events.flush_mirror()
        mirrored = {row.seq: row.hash for row in await self._events.entries(hearing_id)}
        entries = await asyncio.to_thread(read_chain, folder / LOG_FILE_NAME)
        in_file = {int(entry["seq"]): entry.get("hash") for entry in entries}
        differs = sorted(seq for seq, digest in mirrored.items() if in_file.get(seq) != digest)
        if differs:
            log.error("hearing %s not sealed: log entries %s differ from the database", hearing_id, differs)
            raise Conflict(
                f"the hearing cannot be sealed: confirmation log entry {differs[0]} differs from its "
                f"database mirror ({len(differs)} entries differ)",
                code="seal_failed",
            )

    async def _log_sealed(self, hearing_id: str, actor: str, signer: CourtSigner) -> None:
        confirmation_log = await self._events.confirmation_log(hearing_id)
        entries = await asyncio.to_thread(confirmation_log.entries)
        if entries and entries[-1].event == EventType.HEARING_SEALED.value:
            return  # an earlier attempt logged it and then failed or crashed
        await self._events.record(
            hearing_id, EventType.HEARING_SEALED, actor=actor, details={"signer": signer.subject}
        )

    async def recover(self, hosted_elsewhere: frozenset[str] = frozenset()) -> None:
        """At start-up: live hearings become interrupted (now); ended ones are sealed and missing playback
        copies of sealed ones rendered in the background, so that start-up does not wait for hashing.

        In a cluster, hearings another node hosts (``hosted_elsewhere``) are left to it."""
        unfinished = [s.value for s in (*LIVE, HearingStatus.ENDED)]
        # Only recently sealed hearings may still lack a playback copy; older ones were seen before.
        recent = datetime.now(UTC) - PLAYBACK_RECOVERY_WINDOW
        async with self._sessions() as session:
            rows = (
                await session.execute(
                    select(Hearing.id, Hearing.status, Hearing.recording_path).where(
                        Hearing.status.in_(unfinished)
                        | ((Hearing.status == HearingStatus.SEALED.value) & (Hearing.sealed_at >= recent))
                    )
                )
            ).all()
        to_finish: list[tuple[str, HearingStatus, str | None]] = []
        for hearing_id, raw, relative in rows:
            status = HearingStatus(raw)
            if hearing_id in hosted_elsewhere:
                continue
            if status in LIVE:
                try:
                    await self.interrupt(hearing_id)
                except Exception:
                    log.exception("marking hearing %s interrupted failed", hearing_id)
            else:
                to_finish.append((hearing_id, status, relative))
        if to_finish:
            task = asyncio.create_task(self._finish(to_finish), name="seal-recovery")
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _finish(self, hearings: list[tuple[str, HearingStatus, str | None]]) -> None:
        for hearing_id, status, relative in hearings:
            try:
                if status is HearingStatus.ENDED:
                    await self.seal(hearing_id)
                elif relative is not None:
                    folder = resolve_folder(self._config.recordings_dir, relative)
                    # Only real sealed folders: a hearing without one has nothing to render.
                    if await asyncio.to_thread((folder / MANIFEST_NAME).exists):
                        self._playback.enqueue(folder, only_if_missing=True)
            except Exception:
                log.exception("recovering hearing %s (%s) failed", hearing_id, status.value)

    async def close(self) -> None:
        """Stop recovery work still running (it is redone at the next start)."""
        for task in list(self._background):
            task.cancel()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)

    async def interrupt(self, hearing_id: str, reason: str = "server_restarted") -> bool:
        """Mark a live hearing ``interrupted`` as a server restart does (False: it was not live)."""
        now = datetime.now(UTC)
        async with self._sessions() as session:
            hearing = await session.get(Hearing, hearing_id, with_for_update=True)
            if hearing is None or HearingStatus(hearing.status) not in LIVE:
                return False
            previous = hearing.status
            hearing.status = HearingStatus.INTERRUPTED.value
            hearing.updated_at = now
            await session.commit()
        await self._events.record(
            hearing_id,
            EventType.HEARING_INTERRUPTED,
            actor="system",
            details={"reason": reason, "previous_status": previous},
        )
        return True


# File system timestamps can be coarse (a tick of a few ms, whole seconds on some file systems): a change made
# within this margin of a check may carry the same ctime as the state the check saw, so it is not trusted.
SETTLE_NS = 2_000_000_000


@dataclass(frozen=True)
class FolderState:
    """What the file system says about every sealed file of a folder, and the newest change among them."""

    files: tuple[object, ...]
    newest_change_ns: int


@dataclass(frozen=True)
class _Checked:
    state: FolderState
    report: VerificationReport
    settled: bool


class SealChecks:
    """Checks sealed hearing folders against the court certificate, once per state of their files.

    A file's state is its size, mtime, ctime, inode and device: a same-size edit with the mtime put back
    (``os.utime``) still moves the ctime, which no system call can set back.  A result is reused only when
    the folder did not change while it was being checked and every file was last changed well before the
    check began; on any doubt the folder is verified again.
    """

    def __init__(self, court_cert: Path, remembered: int = 256, *, settle_ns: int = SETTLE_NS) -> None:
        self._court_cert = court_cert
        self._remembered = remembered
        self._settle_ns = settle_ns
        self._cache: dict[Path, _Checked] = {}
        self.verifications = 0  # full checks run (each hashes every file)

    async def check(self, folder: Path) -> VerificationReport:
        """The verification of a sealed folder; redone whenever any of its files changes."""
        before = await asyncio.to_thread(folder_state, folder)
        cached = self._cache.get(folder)
        if cached is not None and cached.settled and cached.state == before:
            return cached.report
        started_ns = time.time_ns()
        trusted = self._court_cert if self._court_cert.exists() else None
        report = await asyncio.to_thread(verify_hearing, folder, trusted)
        self.verifications += 1
        after = await asyncio.to_thread(folder_state, folder)
        settled = after == before and before.newest_change_ns < started_ns - self._settle_ns
        self._cache.pop(folder, None)
        self._cache[folder] = _Checked(before, report, settled)
        while len(self._cache) > self._remembered:
            del self._cache[next(iter(self._cache))]  # the longest unchecked
        return report


def folder_state(folder: Path) -> FolderState:
    """The state of every sealed file of ``folder`` (absent files included) as the file system reports it."""
    parts: list[object] = []
    newest = 0
    for path in [*evidence_files(folder), folder / MANIFEST_NAME, folder / SIGNATURE_NAME]:
        try:
            stat = path.stat()
        except FileNotFoundError:
            parts.append((str(path), None))
            continue
        parts.append((str(path), stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino, stat.st_dev))
        newest = max(newest, stat.st_mtime_ns, stat.st_ctime_ns)
    return FolderState(tuple(parts), newest)
