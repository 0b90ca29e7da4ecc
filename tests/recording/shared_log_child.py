"""Child process of the shared-log test: one cluster node's event recorder and checkpoint sweep, appending
``count`` events to one hearing whose log another process appends to at the same time.

Usage: python shared_log_child.py RECORDINGS FOLDER HEARING CERT KEY COUNT NAME.  Prints the seqs it got.
"""

from __future__ import annotations

import asyncio
import random
import sys
from pathlib import Path
from typing import Any

from hearing_server.domain.events import EventType
from hearing_server.record.checkpoints import LogCheckpoints
from hearing_server.record.event_log import EventRecorder
from recording.seal import CourtSigner


async def main(
    recordings: Path, folder: Path, hearing: str, signer: CourtSigner, count: int, name: str
) -> None:
    async def get_signer() -> CourtSigner:
        return signer

    sessions: Any = None  # the folder is given: appending needs no database
    recorder = EventRecorder(sessions, recordings, shared=True)
    # Signed by time only: an append signs when the interval has passed, the sweep a log gone quiet meanwhile.
    checkpoints = LogCheckpoints(
        get_signer, every_entries=1000, interval_s=0.06, file_locks=recorder.file_locks
    )
    recorder.checkpoints = checkpoints
    sweeping = asyncio.create_task(checkpoints.run())
    rng = random.Random(name)
    seqs = []
    for number in range(count):
        entry = await recorder.append(
            hearing, EventType.PARTY_MUTED, actor=name, details={"n": number}, folder=folder
        )
        seqs.append(entry.seq)
        if rng.random() < 0.4:  # bursts of appends, then a pause the sweep may fall into
            await asyncio.sleep(rng.random() * 0.12)
    await asyncio.sleep(0.05)
    await checkpoints.sweep()
    sweeping.cancel()
    await asyncio.gather(sweeping, return_exceptions=True)
    print(" ".join(map(str, seqs)), flush=True)


if __name__ == "__main__":
    recordings, folder, hearing, cert, key, count, name = sys.argv[1:8]
    asyncio.run(main(Path(recordings), Path(folder), hearing, CourtSigner.load(cert, key), int(count), name))
