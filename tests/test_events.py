"""Hearing events reach the fsynced, hash-chained log file first and its database mirror second."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from hearing_server.config import Config
from hearing_server.domain.events import EventType
from hearing_server.domain.ids import new_id
from hearing_server.record.event_log import EventRecorder
from hearing_server.store.db import create_engine, sessionmaker
from hearing_server.store.models import Hearing
from recording.confirmation_log import LOG_FILE_NAME
from recording.hashchain import read_chain, verify_chain


async def _hearing(config: Config, count: int = 1, **options: int) -> tuple[EventRecorder, str]:
    engine = create_engine(config.effective_database_url)
    sessions = sessionmaker(engine)
    now = datetime.now(UTC)
    hearing_id = ""
    for index in range(count):
        hearing_id = await _add_hearing(sessions, now, f"2-{100 + index}/2026")
    return EventRecorder(sessions, config.recordings_dir, **options), hearing_id


async def _add_hearing(sessions: Any, now: datetime, case_number: str) -> str:
    hearing_id = new_id()
    async with sessions() as session:
        session.add(
            Hearing(
                id=hearing_id,
                court="Алматы қалалық соты",
                courtroom="3",
                case_number=case_number,
                title="Claim",
                scheduled_start=datetime(2026, 3, 5, 4, 0, tzinfo=UTC),
                duration_minutes=60,
                presiding_judge="Judge",
                notice_language="kk",
                status="scheduled",
                created_at=now,
                updated_at=now,
            )
        )
        await session.commit()
    return hearing_id


async def test_events_are_chained_in_the_hearing_folder_and_mirrored(config: Config) -> None:
    recorder, hearing_id = await _hearing(config)
    await recorder.record(hearing_id, EventType.PARTY_INVITED, actor="operator1", details={"ip": "127.0.0.1"})
    await recorder.record(hearing_id, EventType.NOTICE_CONFIRMED, actor="party", party_id=new_id())
    folder = await recorder.folder(hearing_id)
    assert folder.relative_to(config.recordings_dir.resolve()) == Path(
        "алматы-қалалық-соты/2026/03", hearing_id
    )
    chain = verify_chain(folder / LOG_FILE_NAME)
    assert chain.valid and chain.entries == 2
    mirrored = await recorder.entries(hearing_id)
    on_disk = read_chain(folder / LOG_FILE_NAME)
    assert [(m.seq, m.event, m.hash) for m in mirrored] == [
        (e["seq"], e["event"], e["hash"]) for e in on_disk
    ]
    assert mirrored[0].details == {"ip": "127.0.0.1"}
    await recorder.close()


async def test_database_outage_loses_no_event(config: Config, monkeypatch: object) -> None:
    recorder, hearing_id = await _hearing(config)
    await recorder.record(hearing_id, EventType.HEARING_STARTED, actor="operator1")
    real_sessions = recorder._sessions

    def unreachable() -> object:
        raise OperationalError("connect", {}, ConnectionRefusedError("database down"))

    recorder._sessions = unreachable  # type: ignore[assignment]
    await recorder.record(hearing_id, EventType.PARTY_MUTED, actor="operator1", party_id=new_id())
    recorder._sessions = real_sessions
    assert [e.event for e in await recorder.entries(hearing_id)] == ["hearing_started"]
    assert await recorder.flush_mirror()
    assert [e.event for e in await recorder.entries(hearing_id)] == ["hearing_started", "party_muted"]
    await recorder.close()


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def test_idle_logs_are_closed_and_reopened_where_they_left_off(config: Config) -> None:
    """#12.8: a log stays open only while among the most recently used; a reopened log resumes its chain."""
    recorder, _ = await _hearing(config, count=0, max_open_logs=8)
    async with recorder._sessions() as session:
        ids = [await _add_hearing(recorder._sessions, datetime.now(UTC), f"2-{i}/2026") for i in range(200)]
        assert len((await session.execute(select(Hearing.id))).all()) == 200
    baseline = _open_fds()
    for hearing_id in ids:
        await recorder.record(hearing_id, EventType.HEARING_SCHEDULED, actor="operator1")
        assert recorder.open_logs <= 8
    assert _open_fds() - baseline <= 8
    assert len(recorder._locks) == 0  # no lock kept for hearings nobody is writing to
    # the first hearing's log was closed long ago: its next event continues the chain
    await recorder.record(ids[0], EventType.HEARING_UPDATED, actor="operator1")
    folder = await recorder.folder(ids[0])
    chain = verify_chain(folder / LOG_FILE_NAME)
    assert chain.valid and chain.entries == 2
    assert [m.event for m in await recorder.entries(ids[0])] == ["hearing_scheduled", "hearing_updated"]
    await recorder.close()
    assert recorder.open_logs == 0
