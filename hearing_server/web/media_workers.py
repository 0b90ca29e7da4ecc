"""Media worker processes in the application: the pool's lifecycle, the media factory, crash handling."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from hearing_server.api.metrics import METRICS, WorkerSample
from hearing_server.config import CONFIG
from hearing_server.domain.ids import new_id
from hearing_server.media_workers.pool import WorkerPool
from hearing_server.media_workers.remote_recorder import WorkerRecorder
from hearing_server.media_workers.remote_router import RemoteRouter
from hearing_server.record.live_recording import LiveRecording
from hearing_server.web.ws import LIVE_HEARINGS, MEDIA_FACTORY
from media.aiortc_adapter import install_port_range, uninstall_port_range
from media.contract import MediaEvents, MediaRouter, MediaSettings, PacketSink
from media.errors import MediaError
from signaling.room.media_session import MediaFactory

log = logging.getLogger(__name__)

WORKER_POOL = web.AppKey("worker_pool", WorkerPool)


def worker_media_factory(pool: WorkerPool) -> MediaFactory:
    """Places each hearing's media (and recorder) on a worker of ``pool``; refuses when all are full."""

    def make(settings: MediaSettings, events: MediaEvents, sink: PacketSink | None) -> MediaRouter:
        hearing_id = settings.hearing_id or new_id()
        try:
            worker = pool.place(hearing_id)
        except MediaError:  # capacity_exhausted: the recording made for this attempt records nothing
            if isinstance(sink, LiveRecording) and sink.on_stopped is not None:
                sink.on_stopped(sink)
            raise
        router = RemoteRouter(
            worker, hearing_id, settings, events, on_closed=lambda r: pool.release(r.hearing_id, r.worker)
        )
        if isinstance(sink, LiveRecording):
            sink.recorder_factory = functools.partial(WorkerRecorder, router)
        remote: MediaRouter = router
        return remote

    return make


def _samples(pool: WorkerPool) -> list[WorkerSample]:
    return [
        WorkerSample(
            name=worker.name,
            pid=worker.pid,
            up=worker.alive,
            hearings=len(pool.hearings_on(worker)),
            participants=worker.load.participants,
            forwarded_per_s=worker.load.forwarded_per_s,
            forwarded_total=worker.load.forwarded_total,
            cpu_seconds=worker.load.cpu_seconds,
            restarts=pool.restarts_of(worker.index),
            media=worker.load.media,
        )
        for worker in pool.workers
    ]


def _interrupt(app: web.Application, hearing_ids: list[str]) -> None:
    """A worker died: its hearings become ``interrupted``, as after a server restart."""
    hearings = app[LIVE_HEARINGS]
    for hearing_id in hearing_ids:
        room = hearings.get(hearing_id)
        if room is not None:
            log.error("hearing %s lost its media worker: interrupting it", hearing_id)
            hearings.track(asyncio.ensure_future(room.interrupt()))


async def worker_pool_context(app: web.Application) -> AsyncIterator[None]:
    """Start the configured media workers before the live hearings, stop them after."""
    config = app[CONFIG]
    count = config.effective_media_workers
    ports = (
        (config.ice_port_min, config.ice_port_max)
        if config.ice_port_min is not None and config.ice_port_max is not None
        else None
    )
    if count == 0:
        if ports is not None:  # media in this process binds in the range too
            install_port_range(*ports)
        try:
            yield
        finally:
            if ports is not None:
                uninstall_port_range()
        return
    pool = WorkerPool(
        count,
        config.worker_max_hearings,
        on_lost=lambda ids: _interrupt(app, ids),
        log_level=config.log_level,
        ice_ports=ports,
    )
    await pool.start()
    app[WORKER_POOL] = pool
    app[MEDIA_FACTORY] = worker_media_factory(pool)
    app[METRICS].watch_workers(lambda: _samples(pool))
    app[METRICS].watch_media(pool.media_totals)  # the server-wide series count the workers' media too
    try:
        yield
    finally:
        await pool.close()


def setup(app: web.Application) -> None:
    """Add the worker pool; call before ``ws.setup`` so that the live hearings find its media factory."""
    app.cleanup_ctx.append(worker_pool_context)
