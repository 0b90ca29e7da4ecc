"""Hearing records in the app: recording live hearings, sealing ended ones, rendering playback copies."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from hearing_server.config import CONFIG
from hearing_server.record.checkpoints import LogCheckpoints
from hearing_server.record.event_log import EVENTS
from hearing_server.record.live_recording import LiveRecording
from hearing_server.record.playback import PlaybackJobs
from hearing_server.record.sealer import SealChecks, Sealer
from hearing_server.store.db import SESSIONS

SEALER = web.AppKey("sealer", Sealer)
PLAYBACK = web.AppKey("playback", PlaybackJobs)
SEAL_CHECKS = web.AppKey("seal_checks", SealChecks)
# In a cluster: live hearings other nodes host, which this node's start-up recovery must not interrupt.
LEFT_TO_OTHER_NODES = web.AppKey("left_to_other_nodes", frozenset)


class LiveRecordings:
    """The recordings of this process's live hearings, by hearing (for status and for sealing safely)."""

    def __init__(self) -> None:
        self._by_hearing: dict[str, LiveRecording] = {}

    def add(self, recording: LiveRecording) -> None:
        """Remember a hearing's recording until it stops."""
        self._by_hearing[recording.hearing_id] = recording
        recording.on_stopped = self._forget

    def get(self, hearing_id: str) -> LiveRecording | None:
        """The recording of a live hearing, if it has one."""
        return self._by_hearing.get(hearing_id)

    def _forget(self, recording: LiveRecording) -> None:
        if self._by_hearing.get(recording.hearing_id) is recording:
            del self._by_hearing[recording.hearing_id]


LIVE_RECORDINGS = web.AppKey("live_recordings", LiveRecordings)


def recording_factory(app: web.Application) -> Callable[[str], LiveRecording]:
    """Makes the recording of each hearing that goes live in ``app``."""
    app[LIVE_RECORDINGS] = LiveRecordings()

    def make(hearing_id: str) -> LiveRecording:
        config = app[CONFIG]
        recording = LiveRecording(hearing_id, app[EVENTS], min_free_bytes=config.min_free_disk_mb << 20)
        app[LIVE_RECORDINGS].add(recording)
        return recording

    return make


async def seal_when_ended(app: web.Application, hearing_id: str) -> None:
    """Seal a hearing once its live room has closed after ``end``."""
    await app[SEALER].seal(hearing_id)


async def records_context(app: web.Application) -> AsyncIterator[None]:
    """Start the playback worker and put right what a previous crash left (after the database is up)."""
    config = app[CONFIG]
    playback = PlaybackJobs()
    app[PLAYBACK] = playback
    app[SEALER] = Sealer(config, app[SESSIONS], app[EVENTS], playback)
    app[SEAL_CHECKS] = SealChecks(config.court_cert_path)
    checkpoints = LogCheckpoints(
        app[SEALER].signer,
        every_entries=config.checkpoint_entries,
        interval_s=config.checkpoint_interval_s,
        file_locks=app[EVENTS].file_locks,
    )
    app[EVENTS].checkpoints = checkpoints
    sweeping = asyncio.create_task(checkpoints.run(), name="log-checkpoints")
    playback.start()
    await app[SEALER].recover(app.get(LEFT_TO_OTHER_NODES, frozenset()))
    yield
    sweeping.cancel()
    await asyncio.gather(sweeping, return_exceptions=True)
    await app[SEALER].close()
    await playback.close()
