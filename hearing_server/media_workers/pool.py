"""The media workers of one server: started, restarted when they die, and hearings placed on them by load."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from media.errors import MediaError, MediaErrorCode
from media.stats import MediaStats, summed

from .worker import WorkerProcess

log = logging.getLogger(__name__)

RESTART_DELAY_S = 0.5
FORWARDED_PER_CORE = 20_000.0  # frames (or packets) per second one worker can carry, roughly: for the score


class WorkerPool:
    """Starts ``count`` workers, restarts any that dies, and places hearings on the least loaded.

    ``on_lost`` hears the ids of the hearings a dead worker hosted (the control plane interrupts them).
    """

    def __init__(
        self,
        count: int,
        max_hearings: int,
        on_lost: Callable[[list[str]], None] | None = None,
        log_level: str = "INFO",
        ice_ports: tuple[int, int] | None = None,
    ) -> None:
        if count < 1:
            raise ValueError("a worker pool needs at least one worker")
        self.max_hearings = max_hearings
        self.on_lost = on_lost
        self._restarts = [0] * count
        self._log_level = log_level
        self._ice_ports = ice_ports
        self._workers: list[WorkerProcess] = [self._new(index) for index in range(count)]
        self._placed: dict[str, WorkerProcess] = {}  # hearing id → its worker
        self._closing = False
        self._restarting: set[asyncio.Task[None]] = set()
        self._retired = MediaStats()  # what dead workers had last reported: the totals never go back

    def _new(self, index: int) -> WorkerProcess:
        return WorkerProcess(index, self._worker_exited, self._log_level, self._ice_ports)

    @property
    def workers(self) -> list[WorkerProcess]:
        """The current worker of every slot."""
        return list(self._workers)

    def restarts_of(self, index: int) -> int:
        """How often the worker of slot ``index`` was restarted."""
        return self._restarts[index]

    def media_totals(self) -> MediaStats:
        """The media counters and transit histogram of every worker this pool ran, as last reported."""
        return summed([self._retired, *(worker.load.media for worker in self._workers)])

    def hearings_on(self, worker: WorkerProcess) -> list[str]:
        """The hearings placed on ``worker``."""
        return [hearing for hearing, placed in self._placed.items() if placed is worker]

    def worker_of(self, hearing_id: str) -> WorkerProcess | None:
        """Where a live hearing's media runs."""
        return self._placed.get(hearing_id)

    async def start(self) -> None:
        """Start every worker."""
        await asyncio.gather(*(worker.start() for worker in self._workers))

    def place(self, hearing_id: str) -> WorkerProcess:
        """The worker to host a new hearing: live, below capacity, least loaded (CPU and media rate).

        Raises :class:`MediaError` ``capacity_exhausted`` when every worker is full (or down).
        """
        candidates = [
            worker
            for worker in self._workers
            if worker.alive and len(self.hearings_on(worker)) < self.max_hearings
        ]
        if not candidates:
            raise MediaError(
                MediaErrorCode.CAPACITY_EXHAUSTED,
                f"every media worker is full ({len(self._workers)} × {self.max_hearings} hearings)",
            )
        worker = min(candidates, key=self._score)
        self._placed[hearing_id] = worker
        return worker

    def _score(self, worker: WorkerProcess) -> tuple[float, int]:
        load = worker.load
        busy = max(load.cpu_share, load.forwarded_per_s / FORWARDED_PER_CORE)
        # Hearings just placed have not shown in the load yet: each counts as a little load.
        return (busy + 0.05 * len(self.hearings_on(worker)), worker.index)

    def release(self, hearing_id: str, worker: WorkerProcess) -> None:
        """A hearing's media closed: its place is free."""
        if self._placed.get(hearing_id) is worker:
            del self._placed[hearing_id]

    def _worker_exited(self, worker: WorkerProcess) -> None:
        # Its figures move to the retired ones (its own series restart from zero, as its process does).
        self._retired = summed([self._retired, worker.load.media])
        worker.load.media = MediaStats()
        lost = self.hearings_on(worker)
        for hearing_id in lost:
            del self._placed[hearing_id]
        if self._closing:
            return
        if lost and self.on_lost is not None:
            try:
                self.on_lost(lost)
            except Exception:
                log.exception("handling the hearings of a dead media worker failed")
        if not worker.ready:
            return  # it died starting: the restart that started it tries again
        task = asyncio.ensure_future(self._restart(worker))
        self._restarting.add(task)
        task.add_done_callback(self._restarting.discard)

    async def _restart(self, dead: WorkerProcess) -> None:
        delay = RESTART_DELAY_S
        while not self._closing:
            await asyncio.sleep(delay)
            worker = self._new(dead.index)
            self._workers[dead.index] = worker
            try:
                await worker.start()
            except Exception:
                log.exception("restarting media %s failed; trying again", worker.name)
                delay = min(delay * 2, 10.0)
                continue
            self._restarts[dead.index] += 1
            return

    async def close(self) -> None:
        """Stop every worker (their hearings should have been interrupted first)."""
        self._closing = True
        for task in list(self._restarting):
            task.cancel()
        await asyncio.gather(*(worker.stop() for worker in self._workers), return_exceptions=True)
