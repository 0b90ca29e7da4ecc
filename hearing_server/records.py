"""Hearing records in the app: recording live hearings, sealing ended ones, rendering playback copies."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from aiohttp import web

from hearing_server.keys import CONFIG, EVENTS, SESSIONS
from hearing_server.live_recording import LiveRecording
from hearing_server.playback import PlaybackJobs
from hearing_server.sealing import Sealer
from hearing_server.store.models import Hearing

SEALER = web.AppKey("sealer", Sealer)
PLAYBACK = web.AppKey("playback", PlaybackJobs)


def recording_factory(app: web.Application) -> Callable[[Hearing], LiveRecording]:
    """Makes the recording of each hearing that goes live in ``app``."""

    def make(hearing: Hearing) -> LiveRecording:
        config = app[CONFIG]
        return LiveRecording(hearing.id, app[EVENTS], min_free_bytes=config.min_free_disk_mb << 20)

    return make


async def seal_when_ended(app: web.Application, hearing_id: str) -> None:
    """Seal a hearing once its live room has closed after ``end``."""
    await app[SEALER].seal(hearing_id)


async def records_context(app: web.Application) -> AsyncIterator[None]:
    """Start the playback worker and put right what a previous crash left (after the database is up)."""
    playback = PlaybackJobs()
    app[PLAYBACK] = playback
    app[SEALER] = Sealer(app[CONFIG], app[SESSIONS], app[EVENTS], playback)
    playback.start()
    await app[SEALER].recover()
    yield
    await playback.close()
