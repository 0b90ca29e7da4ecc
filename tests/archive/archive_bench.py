"""The archive test bench: staff sessions by role, hearing rows, sealed hearing folders with real media."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from hearing_server.auth.staff import SESSION_COOKIE, new_session
from hearing_server.config import Config
from hearing_server.domain.events import EventType
from hearing_server.domain.ids import new_id
from hearing_server.record.folder import relative_folder
from hearing_server.store.db import SESSIONS
from hearing_server.store.models import Hearing, Party, User
from recording.confirmation_log import ConfirmationLog
from recording.seal import CourtSigner, seal_hearing

ROLES = ("admin", "archivist", "operator", "judge")


def days_ago(days: float) -> datetime:
    """A moment ``days`` before now."""
    return datetime.now(UTC) - timedelta(days=days)


@dataclass(frozen=True)
class Clips:
    """Encoded media to copy into hearing folders."""

    video: bytes
    audio: bytes


@dataclass
class Staff:
    """A logged-in staff member: cookie and CSRF token."""

    username: str
    role: str
    token: str
    csrf: str

    def headers(self, **extra: str) -> dict[str, str]:
        """Request headers carrying the session (and the CSRF token, harmless on reads)."""
        return {"Cookie": f"{SESSION_COOKIE}={self.token}", "X-CSRF-Token": self.csrf, **extra}


@dataclass
class ArchiveBench:
    """The app under test and what the tests make in it."""

    client: TestClient
    app: web.Application
    config: Config
    clips: Clips
    signer: CourtSigner
    staff: dict[str, Staff] = field(default_factory=dict)

    async def add_staff(self) -> None:
        """One account and session per role."""
        now = datetime.now(UTC)
        async with self.app[SESSIONS]() as db, db.begin():
            for role in ROLES:
                user = User(
                    username=role,
                    display_name=role.title(),
                    role=role,
                    password_hash="x",
                    disabled=False,
                    created_at=now,
                )
                db.add(user)
                await db.flush()
                token, row = new_session(
                    user, ip="127.0.0.1", user_agent="test", now=now, lifetime=timedelta(hours=1)
                )
                db.add(row)
                self.staff[role] = Staff(role, role, token, row.csrf_token)

    def app_sessions(self) -> Any:
        """A database session of the app."""
        return self.app[SESSIONS]()

    def headers(self, role: str | None, **extra: str) -> dict[str, str]:
        """Headers of a request made as ``role`` (None: anonymous)."""
        return self.staff[role].headers(**extra) if role else dict(extra)

    async def get(self, path: str, role: str | None = "archivist", **kwargs: Any) -> Any:
        """GET as ``role``."""
        headers = self.headers(role, **kwargs.pop("headers", {}))
        return await self.client.get(path, headers=headers, **kwargs)

    async def send(self, method: str, path: str, role: str | None = "archivist", **kwargs: Any) -> Any:
        """A write as ``role``."""
        headers = self.headers(role, **kwargs.pop("headers", {}))
        return await self.client.request(method, path, headers=headers, **kwargs)

    async def make_hearing(
        self,
        *,
        case_number: str = "2-100/2026",
        court: str | None = None,
        courtroom: str = "Зал 1",
        judge: str = "Ахметов Болат Серикович",
        parties: list[tuple[str, str]] | None = None,
        start: datetime | None = None,
        status: str = "sealed",
        sealed_at: datetime | None = None,
        legal_hold: bool = False,
        files: bool = False,
        ended_by: str = "judge",
    ) -> str:
        """A hearing row (and, with ``files``, a sealed folder with a video, an audio track and the log,
        whose last entry ``ended_by`` wrote, e.g. ``user:<id>``)."""
        hearing_id = new_id()
        court = court or self.config.court_name
        start = start or datetime(2026, 3, 2, 5, 0, tzinfo=UTC)
        now = datetime.now(UTC)
        folder = relative_folder(court, start, hearing_id) if files else None
        party_rows = [
            Party(id=new_id(), role=role, display_name=name, state="left", created_at=now)
            for role, name in (
                parties
                if parties is not None
                else [("plaintiff", "Иванова Мария"), ("defendant", "Петров Иван")]
            )
        ]
        if folder is not None:
            self.write_folder(
                folder, hearing_id, [p.id for p in party_rows], sealed=status == "sealed", ended_by=ended_by
            )
        async with self.app[SESSIONS]() as db, db.begin():
            db.add(
                Hearing(
                    id=hearing_id,
                    court=court,
                    courtroom=courtroom,
                    case_number=case_number,
                    title=f"Case {case_number}",
                    scheduled_start=start,
                    duration_minutes=60,
                    presiding_judge=judge,
                    notice_language="ru",
                    status=status,
                    created_at=now,
                    updated_at=now,
                    started_at=start,
                    ended_at=start + timedelta(minutes=50) if status in ("ended", "sealed") else None,
                    sealed_at=(sealed_at or start + timedelta(hours=1)) if status == "sealed" else None,
                    recording_path=folder,
                    legal_hold=legal_hold,
                )
            )
            await db.flush()
            for party in party_rows:
                party.hearing_id = hearing_id
                db.add(party)
        return hearing_id

    def folder(self, relative: str) -> Path:
        """The absolute hearing folder."""
        return self.config.recordings_dir / relative

    def write_folder(
        self, relative: str, hearing_id: str, party_ids: list[str], *, sealed: bool, ended_by: str = "judge"
    ) -> Path:
        """A hearing folder: judge video and audio tracks, a confirmation log, and (``sealed``) the seal."""
        folder = self.folder(relative)
        (folder / "tracks").mkdir(parents=True)
        (folder / "tracks" / "judge-video-001.webm").write_bytes(self.clips.video)
        (folder / "tracks" / "judge-audio-001.webm").write_bytes(self.clips.audio)
        times = iter(datetime(2026, 3, 2, 5, 0, tzinfo=UTC) + timedelta(seconds=s) for s in range(0, 100, 2))
        log = ConfirmationLog(folder, hearing_id, clock=lambda: next(times))
        log.append(EventType.RECORDING_STARTED, actor="system")
        for party_id in party_ids:
            log.append(
                EventType.NOTICE_CONFIRMED,
                actor=f"party:{party_id}",
                party_id=party_id,
                details={"ip": "127.0.0.1"},
            )
            log.append(EventType.PARTY_JOINED, actor="system", party_id=party_id)
        log.append(EventType.RECORDING_STOPPED, actor="system")
        log.append(EventType.HEARING_ENDED, actor=ended_by)
        if sealed:
            seal_hearing(folder, hearing_id, self.signer, log=log, actor="judge")
        else:
            log.close()
        return folder

    async def hearing_folder(self, hearing_id: str) -> Path:
        """The folder of a hearing made with ``files``."""
        async with self.app[SESSIONS]() as db:
            hearing = await db.get(Hearing, hearing_id)
        assert hearing is not None and hearing.recording_path
        return self.folder(hearing.recording_path)
