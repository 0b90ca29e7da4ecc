"""Stopping the server while a hearing is live: the hearing becomes interrupted and can be resumed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from signaling_harness import Bench, types_of
from sqlalchemy import select

from hearing_server.config import Config
from hearing_server.store.db import create_engine, sessionmaker
from hearing_server.store.models import Hearing, HearingEvent, Party


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
