"""Sealing ended hearings with the court's key, and putting things right after a crash."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hearing_server.config import Config
from hearing_server.domain.errors import Conflict, NotFound
from hearing_server.domain.events import EventType
from hearing_server.domain.hearing import LIVE, HearingStatus, check_transition
from hearing_server.events import EventRecorder
from hearing_server.playback import PlaybackJobs
from hearing_server.store.models import Hearing
from recording.seal import MANIFEST_NAME, CourtSigner, SealResult, generate_court_certificate, seal_hearing

log = logging.getLogger(__name__)


def load_signer(config: Config) -> CourtSigner:
    """The court's signer from configuration; a self-signed development pair when none is configured."""
    if config.court_cert is not None or config.court_key is not None:
        return CourtSigner.load(config.court_cert_path, config.court_key_path)
    config.court_cert_path.parent.mkdir(parents=True, exist_ok=True)
    return generate_court_certificate(config.court_cert_path, config.court_key_path, config.court_name)


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
        self._lock = asyncio.Lock()

    async def signer(self) -> CourtSigner:
        """The court's signer, loaded (or generated for development) once."""
        if self._signer is None:
            self._signer = await asyncio.to_thread(load_signer, self._config)
        return self._signer

    async def seal(self, hearing_id: str, actor: str = "system") -> SealResult:
        """Seal an ended hearing: log ``hearing_sealed``, write and sign the manifest, mark it sealed."""
        async with self._lock:
            async with self._sessions() as session:
                hearing = await session.get(Hearing, hearing_id)
                if hearing is None:
                    raise NotFound("no such hearing")
                check_transition(HearingStatus(hearing.status), HearingStatus.SEALED)
            signer = await self.signer()
            folder = await self._events.folder(hearing_id)
            if (folder / MANIFEST_NAME).exists():
                raise Conflict("the hearing is already sealed", code="already_sealed")
            await self._events.record(
                hearing_id, EventType.HEARING_SEALED, actor=actor, details={"signer": signer.subject}
            )
            await self._events.close_log(hearing_id)
            result = await asyncio.to_thread(seal_hearing, folder, hearing_id, signer)
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
        return result

    async def recover(self) -> None:
        """At start-up: live hearings become interrupted, ended ones are sealed, playback copies resume."""
        async with self._sessions() as session:
            rows = (await session.execute(select(Hearing.id, Hearing.status))).all()
        for hearing_id, status in rows:
            status = HearingStatus(status)
            try:
                if status in LIVE:
                    await self._interrupt(hearing_id)
                elif status is HearingStatus.ENDED:
                    await self.seal(hearing_id)
                elif status is HearingStatus.SEALED:
                    self._playback.enqueue(await self._events.folder(hearing_id), only_if_missing=True)
            except Exception:
                log.exception("recovering hearing %s (%s) failed", hearing_id, status.value)

    async def _interrupt(self, hearing_id: str) -> None:
        now = datetime.now(UTC)
        async with self._sessions() as session:
            hearing = await session.get(Hearing, hearing_id)
            if hearing is None:
                return
            previous = hearing.status
            hearing.status = HearingStatus.INTERRUPTED.value
            hearing.updated_at = now
            await session.commit()
        await self._events.record(
            hearing_id,
            EventType.HEARING_INTERRUPTED,
            actor="system",
            details={"reason": "server_restarted", "previous_status": previous},
        )
