"""Draining a cluster node: on SIGTERM (or ``hearing-server node drain``) it takes no new hearings, lets its
live hearings run to their end (at most ``drain_limit_s``), then exits as a plain shutdown does."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import AsyncIterator

from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError

from hearing_server.cluster.node import CLUSTER_NODE
from hearing_server.config import CONFIG
from hearing_server.web.ws import LIVE_HEARINGS

log = logging.getLogger(__name__)

DRAIN_TASK: web.AppKey[asyncio.Task[None]] = web.AppKey("drain_task")


async def drain_then_exit(app: web.Application) -> None:
    """Stop taking hearings, wait for the live ones to end (or the limit), then shut down."""
    node, registry = app[CLUSTER_NODE], app[LIVE_HEARINGS]
    registry.drain()
    started = time.monotonic()
    while True:
        try:
            await node.drain()
            break
        except (SQLAlchemyError, OSError):
            await asyncio.sleep(1.0)  # placement on other nodes skips us once the state is written
    limit = app[CONFIG].drain_limit_s
    log.warning("draining: %d live hearing(s), at most %.0f s", len(registry.hosted()), limit)
    # Polled: rooms end one by one, and the limit must hold however they end.
    while not registry.idle and time.monotonic() - started < limit:  # noqa: ASYNC110
        await asyncio.sleep(0.5)
    log.warning(
        "drained after %.1f s (%d hearing(s) left to interrupt)",
        time.monotonic() - started,
        len(registry.hosted()),
    )
    # aiohttp's own SIGINT handler performs the graceful exit (live hearings left are interrupted).
    os.kill(os.getpid(), signal.SIGINT)


def start_drain(app: web.Application) -> None:
    """Begin draining once (SIGTERM, or the node's row set to draining)."""
    if DRAIN_TASK not in app:
        app[DRAIN_TASK] = asyncio.ensure_future(drain_then_exit(app))


async def _drain_on_sigterm(app: web.Application) -> AsyncIterator[None]:
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, start_drain, app)  # replaces aiohttp's immediate exit
    app[CLUSTER_NODE].attach(app[LIVE_HEARINGS].hosted, app[LIVE_HEARINGS].leave, lambda: start_drain(app))
    yield
    loop.remove_signal_handler(signal.SIGTERM)
    if DRAIN_TASK in app and not app[DRAIN_TASK].done():
        app[DRAIN_TASK].cancel()


def setup(app: web.Application) -> None:
    """Drain instead of stopping at once on SIGTERM (cluster nodes only; call after the signaling setup)."""
    if app[CONFIG].clustered:
        app.cleanup_ctx.append(_drain_on_sigterm)
