"""Background rendering of playback copies, one niced render process at a time."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from recording.composite import RenderProgress, RenderState, read_progress, start_composite

log = logging.getLogger(__name__)


class PlaybackJobs:
    """A queue of hearing folders whose composite MP4 is rendered in a separate process, in order."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[Path] = asyncio.Queue()
        self._queued: set[Path] = set()
        self._worker: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Begin working through the queue (on the running loop)."""
        if self._worker is None:
            self._worker = asyncio.create_task(self._run(), name="playback-jobs")

    def enqueue(self, folder: Path, *, only_if_missing: bool = False) -> None:
        """Render the hearing's playback copy; with ``only_if_missing``, skip one already done or running."""
        if folder in self._queued:
            return
        if only_if_missing:
            progress = read_progress(folder)
            if progress is not None and progress.state is not RenderState.FAILED:
                return
        self._queued.add(folder)
        self._queue.put_nowait(folder)

    @staticmethod
    def progress(folder: Path) -> RenderProgress | None:
        """How far the hearing's playback copy is."""
        return read_progress(folder)

    async def _run(self) -> None:
        while True:
            folder = await self._queue.get()
            self._queued.discard(folder)
            try:
                process = await asyncio.to_thread(start_composite, folder)
                # Polled rather than waited for on a thread, so that shutdown never waits for a render.
                while (returncode := process.poll()) is None:  # noqa: ASYNC110
                    await asyncio.sleep(1.0)
                if returncode != 0:
                    log.error("playback copy of %s failed (exit %s)", folder, returncode)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("playback copy of %s could not be started", folder)

    async def close(self) -> None:
        """Stop taking jobs; a running render goes on in its own process (or is redone at the next start)."""
        if self._worker is not None:
            self._worker.cancel()
            try:
                await self._worker
            except asyncio.CancelledError:
                pass
            self._worker = None
