"""Stopping the server while a hearing is live: the hearing becomes interrupted and can be resumed."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from signaling_harness import Bench, types_of
from sqlalchemy import select, text

from hearing_server.config import Config
from hearing_server.record.event_log import EVENTS
from hearing_server.record.sealer import Sealer, SealOutcome
from hearing_server.store.db import create_engine, sessionmaker
from hearing_server.store.models import Hearing, HearingEvent, Party
from recording.seal import MANIFEST_NAME


async def test_shutdown_interrupts_a_live_hearing(
    make_bench: Callable[..., Awaitable[Bench]], config: Config
) -> None:
    bench = await make_bench()
    await bench.make_hearing()
    operator = await bench.operator(await bench.make_staff())
    await operator.send("open_waiting_room")
    party_id, token = await bench.make_party("Witness")
    party = await bench.waiting_party(token)
    await operator.send("admit", party_id=party_id)
    await party.expect_state("in_hearing")
    await operator.send("start")
    await party.expect("state", lambda m: m["hearing"]["status"] == "in_session")

    await bench.client.server.close()
    assert await party.expect_closed() == 1001
    assert await operator.expect_closed() == 1001

    engine = create_engine(config.effective_database_url)
    try:
        async with sessionmaker(engine)() as db:
            hearing = await db.get(Hearing, bench.hearing_id)
            assert hearing is not None and hearing.status == "interrupted"
            assert (await db.get(Party, party_id)).state == "disconnected"  # type: ignore[union-attr]
            rows = await db.execute(
                select(HearingEvent)
                .where(HearingEvent.hearing_id == bench.hearing_id)
                .order_by(HearingEvent.seq)
            )
            kinds = types_of(list(rows.scalars()))
    finally:
        await engine.dispose()
    # Everyone disconnected, the hearing interrupted, then its recording closed durably.
    assert kinds[-4:] == [
        "party_disconnected",
        "party_disconnected",
        "hearing_interrupted",
        "recording_stopped",
    ]


async def _end_hearing(bench: Bench) -> None:
    operator = await bench.operator(await bench.make_staff())
    await operator.send("open_waiting_room")
    await operator.send("start")
    await operator.expect("state", lambda m: m["hearing"]["status"] == "in_session")
    await operator.send("end")
    await operator.expect("hearing_ended")


async def _status(config: Config, hearing_id: str) -> str:
    engine = create_engine(config.effective_database_url)
    try:
        async with sessionmaker(engine)() as db:
            hearing = await db.get(Hearing, hearing_id)
            assert hearing is not None
            return hearing.status
    finally:
        await engine.dispose()


async def test_shutdown_right_after_the_end_still_seals_the_hearing(
    make_bench: Callable[..., Awaitable[Bench]], config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    seal = Sealer.seal

    async def slow_seal(self: Sealer, hearing_id: str, actor: str = "system") -> SealOutcome:
        await asyncio.sleep(0.5)  # the server is told to stop meanwhile
        return await seal(self, hearing_id, actor)

    monkeypatch.setattr(Sealer, "seal", slow_seal)
    bench = await make_bench()
    await bench.make_hearing()
    await _end_hearing(bench)
    folder = await bench.app[EVENTS].folder(bench.hearing_id)

    await bench.client.server.close()
    assert await _status(config, bench.hearing_id) == "sealed"
    assert (folder / MANIFEST_NAME).is_file()


async def test_a_seal_outlasting_the_grace_is_cancelled_cleanly_and_done_at_the_next_start(
    make_bench: Callable[..., Awaitable[Bench]], config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    inside, released = asyncio.Event(), asyncio.Event()

    async def stuck_seal(self: Sealer, hearing_id: str, actor: str = "system") -> SealOutcome:
        async with self._sessions() as db:  # a transaction open, as a real seal has at times
            await db.get(Hearing, hearing_id)
            try:
                inside.set()
                await asyncio.Event().wait()
            finally:
                released.set()
        raise AssertionError("unreachable")

    monkeypatch.setattr(Sealer, "seal", stuck_seal)
    bench = await make_bench(shutdown_grace_s=0.3)
    await bench.make_hearing()
    await _end_hearing(bench)
    folder = await bench.app[EVENTS].folder(bench.hearing_id)
    await asyncio.wait_for(inside.wait(), 10)

    await bench.client.server.close()
    # The stuck seal was cancelled and its session closed: nothing holds a lock another start would wait on.
    assert released.is_set()
    assert await _status(config, bench.hearing_id) == "ended"
    if config.effective_database_url.startswith("postgresql"):
        engine = create_engine(config.effective_database_url)
        try:
            async with engine.connect() as conn:
                idle_in_transaction = await conn.scalar(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                        " AND state LIKE 'idle in transaction%' AND pid <> pg_backend_pid()"
                    )
                )
            assert idle_in_transaction == 0
        finally:
            await engine.dispose()

    monkeypatch.undo()
    await make_bench()  # the next start seals what the last one could not
    for _ in range(100):
        if await _status(config, bench.hearing_id) == "sealed":
            break
        await asyncio.sleep(0.05)
    assert await _status(config, bench.hearing_id) == "sealed"
    assert (folder / MANIFEST_NAME).is_file()
