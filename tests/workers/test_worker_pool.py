"""Placement: the live worker with the least load below capacity, and a clear refusal when all are full."""

from __future__ import annotations

import pytest

from hearing_server.media_workers.pool import WorkerPool
from hearing_server.media_workers.worker import WorkerLoad
from media.errors import MediaError, MediaErrorCode


def _pool(loads: list[WorkerLoad], max_hearings: int = 2) -> WorkerPool:
    pool = WorkerPool(len(loads), max_hearings)
    for worker, load in zip(pool.workers, loads, strict=True):
        worker._alive = True  # as after start(); no process is needed to place
        worker.load = load
    return pool


def test_hearings_go_to_the_least_loaded_worker_by_cpu_or_packet_rate() -> None:
    pool = _pool([WorkerLoad(cpu_share=0.6), WorkerLoad(cpu_share=0.1), WorkerLoad(forwarded_per_s=16000.0)])
    assert pool.place("a").index == 1
    pool.workers[1].load = WorkerLoad(cpu_share=0.7)  # it got busy
    assert pool.place("b").index == 0  # 0.6 + one hearing, below 0.7 + one and 0.8 by packet rate


def test_a_dead_worker_gets_nothing_and_full_workers_refuse_with_capacity_exhausted() -> None:
    pool = _pool([WorkerLoad(), WorkerLoad()], max_hearings=1)
    pool.workers[0]._alive = False
    assert pool.place("a").index == 1
    with pytest.raises(MediaError) as refused:
        pool.place("b")
    assert refused.value.code is MediaErrorCode.CAPACITY_EXHAUSTED
    assert "full" in refused.value.message
    pool.release("a", pool.workers[1])
    assert pool.place("b").index == 1
