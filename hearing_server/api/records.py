"""A hearing's record: its confirmation log as it grows, the recording and seal status, sealing by hand."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy import select

from hearing_server.api.call import Call
from hearing_server.api.hearing_guard import hearing_staff_only
from hearing_server.api.registry import endpoint
from hearing_server.api.schemas import Out, Query
from hearing_server.auth.access import HEARING_MANAGERS, HEARING_READERS
from hearing_server.domain.errors import Conflict
from hearing_server.domain.hearing import HearingStatus
from hearing_server.record.context import LIVE_RECORDINGS, SEAL_CHECKS, SEALER
from hearing_server.record.folder import resolve_folder
from hearing_server.services import hearings
from hearing_server.store.models import Hearing, HearingEvent
from recording.composite import RenderProgress, read_progress
from recording.seal import MANIFEST_NAME, SIGNATURE_NAME

TAG = "records"
ITEM = "/api/v1/hearings/{hearing_id}"


class EventQuery(Query):
    """Which log entries to return: those after ``after_seq``, oldest first."""

    after_seq: Annotated[int, Field(ge=0, le=2**31)] = 0
    limit: Annotated[int, Field(ge=1, le=1000)] = 500


class EventOut(Out):
    """One confirmation-log entry as mirrored in the database."""

    seq: int
    time: datetime
    event: str
    actor: str
    party_id: str | None
    details: dict[str, Any]
    prev_hash: str
    hash: str


class EventPage(BaseModel):
    """Log entries after ``after_seq``; ``last_seq`` is the one to ask after next time."""

    items: list[EventOut]
    last_seq: int


class RecordingOut(BaseModel):
    """The recording of the hearing as it runs now (``live`` false: nobody is recording it)."""

    live: bool
    status: Literal["off", "recording", "paused", "failed"]
    failure: str | None = None
    epoch: datetime | None = None
    frames_written: int = 0
    frames_lost: int = 0


class FileOut(BaseModel):
    """A file in the hearing folder."""

    path: str
    size: int


class ProblemOut(BaseModel):
    """One problem found when checking the seal."""

    kind: str
    detail: str
    path: str | None = None
    line: int | None = None


class SealOut(BaseModel):
    """Whether and by whom the hearing is sealed, and whether the seal holds now."""

    sealed: bool
    sealed_at: datetime | None = None
    signer_subject: str | None = None
    valid: bool | None = None  # None: not sealed
    signature_valid: bool | None = None
    signer_trusted: bool | None = None
    files_checked: int | None = None
    log_entries: int | None = None
    problems: list[ProblemOut] = Field(default_factory=list)


class PlaybackOut(BaseModel):
    """How far the playback copy is (``none``: not started)."""

    state: Literal["none", "queued", "rendering", "done", "failed"]
    percent: float = 0.0
    speed_x: float | None = None
    duration_s: float | None = None
    output: str | None = None
    error: str | None = None
    updated_at: str | None = None


class RecordOut(BaseModel):
    """A hearing's record: its recording, the files of its folder, its seal and its playback copy."""

    hearing_id: str
    status: HearingStatus
    folder: str | None
    recording: RecordingOut
    files: list[FileOut]
    seal: SealOut
    playback: PlaybackOut


@endpoint(
    "GET",
    ITEM + "/events",
    access=HEARING_READERS,
    tag=TAG,
    query=EventQuery,
    response=EventPage,
    summary="The hearing's confirmation log (database mirror) after a sequence number, oldest first.",
)
async def list_events(call: Call) -> EventPage:
    query: EventQuery = call.query
    async with call.reading() as db:
        hearing = await hearings.get_visible(db, call.path_id("hearing_id"), call.config.court_name)
        rows = (
            await db.execute(
                select(HearingEvent)
                .where(HearingEvent.hearing_id == hearing.id, HearingEvent.seq > query.after_seq)
                .order_by(HearingEvent.seq)
                .limit(query.limit)
            )
        ).scalars()
        items = [EventOut.model_validate(row) for row in rows]
    return EventPage(items=items, last_seq=items[-1].seq if items else query.after_seq)


@endpoint(
    "GET",
    ITEM + "/record",
    access=HEARING_READERS,
    tag=TAG,
    response=RecordOut,
    summary="Recording status, the files of the hearing folder, the seal (checked now), the playback copy.",
)
async def get_record(call: Call) -> RecordOut:
    async with call.reading() as db:
        hearing = await hearings.get_visible(db, call.path_id("hearing_id"), call.config.court_name)
    return await _record(call, hearing)


@endpoint(
    "POST",
    ITEM + "/seal",
    access=HEARING_MANAGERS,
    guard=hearing_staff_only,
    tag=TAG,
    response=RecordOut,
    summary="Seal an ended hearing now (when the automatic seal failed); 409 for any other hearing.",
)
async def seal_hearing(call: Call) -> RecordOut:
    app = call.request.app
    async with call.reading() as db:
        hearing = await hearings.get_visible(db, call.path_id("hearing_id"), call.config.court_name)
    if HearingStatus(hearing.status) is not HearingStatus.ENDED:
        raise Conflict(f"only an ended hearing can be sealed; this one is {hearing.status}", code="not_ended")
    if app[LIVE_RECORDINGS].get(hearing.id) is not None:
        raise Conflict(
            "the hearing's recording is still being closed; try again shortly", code="still_closing"
        )
    await app[SEALER].seal(hearing.id, actor=call.user.username)
    async with call.reading() as db:
        sealed = await hearings.get_visible(db, hearing.id, call.config.court_name)
    return await _record(call, sealed)


async def _record(call: Call, hearing: Hearing) -> RecordOut:
    app = call.request.app
    folder = (
        resolve_folder(call.config.recordings_dir, hearing.recording_path) if hearing.recording_path else None
    )
    files = await asyncio.to_thread(_files, folder) if folder is not None else []
    live = app[LIVE_RECORDINGS].get(hearing.id)
    recording = RecordingOut(live=False, status="off")
    if live is not None:
        recording = RecordingOut(
            live=True,
            status=live.status,
            failure=live.failure or live.last_failure,
            epoch=datetime.fromtimestamp(live.epoch, UTC) if live.epoch is not None else None,
            frames_written=live.frames_written,
            frames_lost=live.frames_lost,
        )
    seal = SealOut(sealed=False)
    if folder is not None and (folder / MANIFEST_NAME).exists() and (folder / SIGNATURE_NAME).exists():
        report = await app[SEAL_CHECKS].check(folder)
        seal = SealOut(
            sealed=True,
            sealed_at=hearing.sealed_at,
            signer_subject=report.signer_subject,
            valid=report.valid,
            signature_valid=report.signature_valid,
            signer_trusted=report.signer_trusted,
            files_checked=report.files_checked,
            log_entries=report.log_entries,
            problems=[
                ProblemOut(kind=p.kind.value, detail=p.detail, path=p.path, line=p.line)
                for p in report.problems
            ],
        )
    progress = await asyncio.to_thread(read_progress, folder) if folder is not None else None
    return RecordOut(
        hearing_id=hearing.id,
        status=HearingStatus(hearing.status),
        folder=hearing.recording_path,
        recording=recording,
        files=files,
        seal=seal,
        playback=_playback(progress),
    )


def _files(folder: Path) -> list[FileOut]:
    found = []
    for path in sorted(folder.rglob("*")) if folder.is_dir() else []:
        try:
            if path.is_file():
                found.append(FileOut(path=path.relative_to(folder).as_posix(), size=path.stat().st_size))
        except FileNotFoundError:
            continue  # a temporary file renamed as we looked
    return found


def _playback(progress: RenderProgress | None) -> PlaybackOut:
    if progress is None:
        return PlaybackOut(state="none")
    return PlaybackOut(
        state=progress.state.value,
        percent=progress.percent,
        speed_x=progress.speed_x,
        duration_s=progress.duration_s,
        output=progress.output,
        error=progress.error,
        updated_at=progress.updated_at,
    )


ENDPOINTS = (list_events, get_record, seal_hearing)
