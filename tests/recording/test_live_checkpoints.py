"""The server's checkpoint writer: due by count, by time (with a clock under the test's control) and at a
recess; concurrent appends and sweeps keep the file in log order; quiet hearings are forgotten."""

from __future__ import annotations

import asyncio
from pathlib import Path

from hearing_server.domain.events import EventType
from hearing_server.record.checkpoints import IDLE_INTERVALS, LogCheckpoints
from recording.checkpoints import check_checkpoints, read_checkpoints
from recording.confirmation_log import LOG_FILE_NAME, ConfirmationLog
from recording.hashchain import read_chain
from recording.seal import CourtSigner

HEARING = "4f1c2a9e-0000-4000-8000-000000000002"


class Clock:
    """A monotonic clock moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_checkpoints_are_due_by_count_time_and_recess_and_stay_in_order(
    tmp_path: Path, court: tuple[CourtSigner, Path]
) -> None:
    signer, _ = court
    clock = Clock()

    async def get_signer() -> CourtSigner:
        return signer

    checkpoints = LogCheckpoints(get_signer, every_entries=3, interval_s=10, clock=clock)
    log = ConfirmationLog(tmp_path, HEARING)

    async def append(event: str = "party_muted") -> None:
        entry = await log.append_async(event, actor="clerk")
        await checkpoints.after_append(tmp_path, entry)

    def signed() -> list[int]:
        return [i.checkpoint.seq for i in read_checkpoints(tmp_path) if i.checkpoint is not None]

    for _ in range(4):
        await append()
    assert signed() == [3]
    await append(EventType.RECESS_CALLED.value)
    assert signed() == [3, 5]
    await append()
    assert await checkpoints.sweep() == 0 and signed() == [3, 5]  # not yet: the interval has not passed
    clock.now += 10
    # many appends racing the sweep: the file stays in log order and every checkpoint holds
    await asyncio.gather(checkpoints.sweep(), *(append() for _ in range(7)))
    await checkpoints.sweep()
    seqs = signed()
    assert seqs == sorted(set(seqs)) and seqs[-1] >= 12
    entries = read_chain(tmp_path / LOG_FILE_NAME)
    assert check_checkpoints(read_checkpoints(tmp_path), HEARING, entries, signer.certificate) == []
    # a hearing with nothing to sign for long is forgotten; its next entry reads the file again
    clock.now += 10
    await checkpoints.sweep()  # whatever the race left unsigned
    assert signed()[-1] == len(read_chain(tmp_path / LOG_FILE_NAME))
    clock.now += 10 * IDLE_INTERVALS
    await checkpoints.sweep()
    assert HEARING not in checkpoints._hearings
    await append(EventType.HEARING_ENDED.value)
    assert signed()[-1] == len(read_chain(tmp_path / LOG_FILE_NAME))
    log.close()
