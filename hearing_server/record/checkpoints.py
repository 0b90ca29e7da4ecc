"""Signed checkpoints of live hearings' confirmation logs (``recording.checkpoints`` has the format).

A checkpoint is written every ``checkpoint_entries`` entries, when ``checkpoint_interval_s`` has passed with
entries not yet signed (the periodic sweep catches a log gone quiet), and at once for a recess, the end and
an interruption.  The sealer holds a hearing's checkpoints while it seals, so none is added behind the seal.

In a cluster (``file_locks``) other nodes write the same hearing's log and checkpoints: the sweep and the
sealer then take the hearing's file lock too (appends hold it already when they call :meth:`after_append`),
and the sweep reads the newest checkpoint from the file before signing, so it never signs behind another
node's checkpoint.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

from hearing_server.domain.events import EventType
from hearing_server.record.locks import HearingFileLocks, HearingLocks
from recording.checkpoints import append_checkpoint, make_checkpoint, read_checkpoints
from recording.confirmation_log import LogEntry, utc_timestamp
from recording.seal import MANIFEST_NAME, CourtSigner

log = logging.getLogger(__name__)

# A hearing that pauses or stops is anchored there and then: the moments an unattended log is most exposed.
IDLE_INTERVALS = 10
SIGN_AT_ONCE = frozenset({EventType.RECESS_CALLED, EventType.HEARING_ENDED, EventType.HEARING_INTERRUPTED})


@dataclass
class _Hearing:
    """What is known of one hearing's checkpoints: the newest signed and the newest unsigned entry."""

    folder: Path
    signed_seq: int
    signed_at: float  # monotonic clock
    pending: LogEntry | None = None


class LogCheckpoints:
    """Signs log positions of live hearings with the court's key."""

    def __init__(
        self,
        signer: Callable[[], Awaitable[CourtSigner]],
        *,
        every_entries: int,
        interval_s: float,
        clock: Callable[[], float] = time.monotonic,
        file_locks: HearingFileLocks | None = None,
    ) -> None:
        self._signer = signer
        self._every = every_entries
        self._interval = interval_s
        self._clock = clock
        self._hearings: dict[str, _Hearing] = {}
        self._locks = HearingLocks()
        self._file_locks = file_locks
        self.signed = 0  # checkpoints written by this process

    def _file_lock(self, hearing_id: str) -> AbstractAsyncContextManager[None]:
        """The hearing's cross-process lock in a cluster; nothing on a single node."""
        return self._file_locks.hold(hearing_id) if self._file_locks is not None else nullcontext()

    async def after_append(self, folder: Path, entry: LogEntry) -> None:
        """Note a durable entry of a hearing's log; sign it now when a checkpoint is due.

        In a cluster the caller holds the hearing's file lock (it has just appended under it).
        """
        async with self._locks.hold(entry.hearing_id):
            state = self._hearings.get(entry.hearing_id)
            if state is None:
                last = await asyncio.to_thread(_newest_signed, folder)
                state = self._hearings[entry.hearing_id] = _Hearing(folder, last, self._clock())
            state.pending = entry
            due = (
                entry.event in SIGN_AT_ONCE
                or entry.seq - state.signed_seq >= self._every
                or self._clock() - state.signed_at >= self._interval
            )
            if due and entry.event != EventType.HEARING_SEALED:  # the seal itself anchors that one
                await self._sign(state)

    async def sweep(self) -> int:
        """Sign every hearing's unsigned entries once the interval has passed; returns how many were signed.

        Hearings with nothing to sign for a long while are forgotten (they are read again from their file
        when they next log), so memory follows the hearings in progress, not every hearing ever seen.
        """
        signed = 0
        for hearing_id in list(self._hearings):
            state = self._hearings.get(hearing_id)
            if state is None:
                continue
            if state.pending is None or state.pending.event == EventType.HEARING_SEALED:
                async with self._locks.hold(hearing_id):
                    self._forget_if_idle(hearing_id)
                continue
            if self._clock() - state.signed_at < self._interval:
                continue
            async with self._file_lock(hearing_id), self._locks.hold(hearing_id):
                state = self._hearings.get(hearing_id)
                if state is None or self._clock() - state.signed_at < self._interval:
                    continue
                if self._file_locks is not None:  # another node may have signed further meanwhile
                    newest = await asyncio.to_thread(_newest_signed, state.folder)
                    state.signed_seq = max(state.signed_seq, newest)
                signed += await self._sign(state)
        return signed

    def _forget_if_idle(self, hearing_id: str) -> None:
        state = self._hearings.get(hearing_id)
        if state is None or (state.pending is not None and state.pending.event != EventType.HEARING_SEALED):
            return
        if self._clock() - state.signed_at >= IDLE_INTERVALS * self._interval:
            del self._hearings[hearing_id]

    async def run(self) -> None:
        """Sweep now and then until cancelled (the application's lifetime)."""
        while True:
            await asyncio.sleep(max(0.05, self._interval / 4))
            try:
                await self.sweep()
            except Exception:
                log.exception("checkpoint sweep failed")

    async def _sign(self, state: _Hearing) -> int:
        entry = state.pending
        if entry is None:
            return 0
        if entry.seq <= state.signed_seq:  # signed already (by another node)
            state.pending = None
            return 0
        try:
            signer = await self._signer()
            written = await asyncio.to_thread(_write, state.folder, entry, signer)
        except Exception:
            # The log entry itself is durable; a missing checkpoint weakens the anchor, it loses nothing.
            log.exception("signing a checkpoint of hearing %s at seq %d failed", entry.hearing_id, entry.seq)
            return 0
        if written:
            state.signed_seq, state.signed_at, state.pending = entry.seq, self._clock(), None
            self.signed += 1
        return int(written)

    @asynccontextmanager
    async def held(self, hearing_id: str) -> AsyncIterator[int]:
        """No checkpoint of ``hearing_id`` is written while held (sealing); afterwards it is forgotten.

        Yields the newest seq this process signed (0 if none): the sealer checks the file still has it.
        """
        async with self._file_lock(hearing_id), self._locks.hold(hearing_id):
            state = self._hearings.get(hearing_id)
            yield state.signed_seq if state is not None else 0
            self._hearings.pop(hearing_id, None)


def _newest_signed(folder: Path) -> int:
    """The highest seq signed in the folder's checkpoints file (0 when none)."""
    lines = read_checkpoints(folder)
    return max((i.checkpoint.seq for i in lines if i.checkpoint is not None), default=0)


def _write(folder: Path, entry: LogEntry, signer: CourtSigner) -> bool:
    if (folder / MANIFEST_NAME).exists():
        return False  # sealed: the seal anchors the log now, and its file list must not change
    checkpoint = make_checkpoint(
        entry.hearing_id, entry.seq, entry.hash, utc_timestamp(), signer.certificate, signer.key
    )
    append_checkpoint(folder, checkpoint)
    return True
