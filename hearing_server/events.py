"""Records hearing events: the single entry point through which every state change reaches the confirmation log."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hearing_server.domain.events import EventType
from hearing_server.store.models import HearingEvent

GENESIS_HASH = "0" * 64


def canonical_json(value: dict[str, Any]) -> bytes:
    """The canonical encoding that entry hashes are computed over."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


class EventRecorder:
    """Appends hearing events, hash-chained per hearing, in order, one hearing at a time."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    async def record(
        self,
        hearing_id: str,
        event: EventType,
        *,
        actor: str,
        party_id: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Append one event to the hearing's log and return the stored entry."""
        async with self._locks[hearing_id], self._sessions() as session:
            last = (
                await session.execute(
                    select(HearingEvent)
                    .where(HearingEvent.hearing_id == hearing_id)
                    .order_by(HearingEvent.seq.desc())
                    .limit(1)
                )
            ).scalar_one_or_none()
            now = datetime.now(UTC)
            entry: dict[str, Any] = {
                "seq": 1 if last is None else last.seq + 1,
                "time": now.isoformat(timespec="microseconds").replace("+00:00", "Z"),
                "hearing_id": hearing_id,
                "event": event.value,
                "actor": actor,
                "party_id": party_id,
                "details": details or {},
                "prev_hash": GENESIS_HASH if last is None else last.hash,
            }
            entry["hash"] = hashlib.sha256(canonical_json(entry)).hexdigest()
            session.add(
                HearingEvent(
                    hearing_id=hearing_id,
                    seq=entry["seq"],
                    time=now,
                    event=entry["event"],
                    actor=actor,
                    party_id=party_id,
                    details=entry["details"],
                    prev_hash=entry["prev_hash"],
                    hash=entry["hash"],
                )
            )
            await session.commit()
            return entry

    async def entries(self, hearing_id: str, after_seq: int = 0) -> list[HearingEvent]:
        """The hearing's events in order, after ``after_seq``."""
        async with self._sessions() as session:
            rows = await session.execute(
                select(HearingEvent)
                .where(HearingEvent.hearing_id == hearing_id, HearingEvent.seq > after_seq)
                .order_by(HearingEvent.seq)
            )
            return list(rows.scalars())
