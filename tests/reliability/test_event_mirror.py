"""The database mirror of hearing events under concurrency and outage, without media.

The confirmation log on disk is the record of truth; the mirror must end up equal to it, without
duplicate inserts when several hearings record at once.
"""

from __future__ import annotations

import asyncio
import logging

import pytest
from live_media import hearing_folder
from reliability_harness import MakeBench

from hearing_server.domain.events import EventType
from hearing_server.record.event_log import EVENTS
from recording.hashchain import read_chain


async def test_concurrent_events_of_several_hearings_are_mirrored_once(
    make_bench: MakeBench, caplog: pytest.LogCaptureFixture
) -> None:
    bench = await make_bench()
    hearings = [await bench.make_hearing() for _ in range(3)]
    recorder = bench.app[EVENTS]
    caplog.set_level(logging.WARNING, logger="hearing_server.record.event_log")

    async def burst(hearing_id: str) -> None:
        for number in range(15):
            await recorder.record(hearing_id, EventType.HEARING_UPDATED, actor="test", details={"n": number})

    await asyncio.gather(*(burst(h) for h in hearings))
    assert await recorder.flush_mirror()
    deferred = [r.getMessage() for r in caplog.records if "mirror deferred" in r.getMessage()]
    assert not deferred, deferred  # concurrent flushes used to insert the same entries twice
    for hearing_id in hearings:
        chain = read_chain((await hearing_folder(bench, hearing_id)) / "confirmation-log.jsonl")
        mirrored = await bench.events(hearing_id)
        assert [(e.seq, e.hash) for e in mirrored] == [(e["seq"], e["hash"]) for e in chain]
        assert len(chain) == 15
