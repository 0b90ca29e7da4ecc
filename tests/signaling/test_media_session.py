"""The media session's quality reports when the media plane refuses: an expected refusal is one log line."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from hearing_server.domain.hearing import HearingStatus
from media.errors import MediaError, MediaErrorCode
from signaling.room import media_session
from signaling.room.media_session import MediaSession
from signaling.room.store import RoomSettings


class _Staff:
    def __init__(self) -> None:
        self.sent: list[Any] = []

    def send(self, message: Any) -> None:
        self.sent.append(message)


class _Room:
    def __init__(self) -> None:
        self.staff = _Staff()

    def participant(self, party_id: str) -> None:
        return None

    def staff_connections(self) -> list[_Staff]:
        return [self.staff]

    def broadcast(self) -> None:
        pass

    def alert_staff(self, code: str, message: str) -> None:
        pass


class _LostWorkerRouter:
    """A hearing's router whose media worker dies while it is asked for stats, then answers again."""

    def __init__(self) -> None:
        self.asked = 0

    def set_paused(self, paused: bool) -> None:
        pass

    async def stats(self) -> list[Any]:
        self.asked += 1
        if self.asked == 1:
            raise MediaError(MediaErrorCode.WORKER_LOST, "media worker-0 stopped")
        return []

    async def close(self) -> None:
        pass


async def test_a_media_worker_lost_while_asked_for_stats_is_logged_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The server log must not show a traceback for an expected condition (the browser test of a killed
    worker reads the whole log for one); the quality reports carry on."""
    monkeypatch.setattr(media_session, "QUALITY_INTERVAL_S", 0.01)
    router = _LostWorkerRouter()
    room = _Room()
    session = MediaSession("h1", RoomSettings(), room, lambda *args: router, None)  # type: ignore[arg-type,return-value]
    caplog.set_level(logging.WARNING, logger=media_session.__name__)
    session.ensure(HearingStatus.IN_SESSION)
    for _ in range(100):
        await asyncio.sleep(0.01)
        if router.asked >= 3:
            break
    await session.close("test")
    assert router.asked >= 3, "the quality loop stopped after the refusal"
    failures = [r for r in caplog.records if "media stats of hearing h1 failed" in r.getMessage()]
    assert len(failures) == 1 and "worker_lost" in failures[0].getMessage()
    assert failures[0].exc_info is None
    assert room.staff.sent, "quality reports went on to the staff"
