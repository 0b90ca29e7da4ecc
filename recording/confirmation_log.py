"""The confirmation log: every event of a hearing, hash-chained in the hearing folder.

Written to ``<hearing folder>/confirmation-log.jsonl``; the server mirrors each
entry to its database through ``on_append``.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from recording.hashchain import ChainVerification, HashChain, TornTail, read_chain, verify_chain

LOG_FILE_NAME = "confirmation-log.jsonl"
SYSTEM_ACTOR = "system"
_EVENT_NAME = re.compile(r"^[a-z][a-z0-9_]*$")

log = logging.getLogger(__name__)


class LogEvent(StrEnum):
    """The events the recording layer itself writes; every other event name comes from the caller
    (the server's vocabulary is ``hearing_server.domain.events.EventType``)."""

    HEARING_SEALED = "hearing_sealed"
    LOG_REPAIRED = "log_repaired"


def utc_timestamp(moment: datetime | None = None) -> str:
    """UTC ISO-8601 with microseconds and a Z, the log's one time format."""
    moment = (moment or datetime.now(UTC)).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class LogEntry:
    """One confirmed event of a hearing, as written (and hashed) in the log."""

    seq: int
    time: str
    hearing_id: str
    event: str
    actor: str | None
    party_id: str | None
    details: dict[str, Any] = field(default_factory=dict)
    prev_hash: str = ""
    hash: str = ""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LogEntry:
        """Rebuild an entry from a parsed log line."""
        return cls(
            seq=data["seq"],
            time=data["time"],
            hearing_id=data["hearing_id"],
            event=data["event"],
            actor=data.get("actor"),
            party_id=data.get("party_id"),
            details=dict(data.get("details") or {}),
            prev_hash=data["prev_hash"],
            hash=data["hash"],
        )

    def to_dict(self) -> dict[str, Any]:
        """The entry as written to the log line."""
        return asdict(self)


class ConfirmationLog:
    """The hearing's append-only confirmation log; each append is fsynced before it returns.

    ``append`` blocks for one fsync (a few ms); from the event loop prefer
    :meth:`append_async`.  ``on_append`` is called with every entry written,
    in the appending thread, after the entry is durable.
    """

    def __init__(
        self,
        folder: Path | str,
        hearing_id: str,
        *,
        on_append: Callable[[LogEntry], None] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.folder = Path(folder)
        self.hearing_id = hearing_id
        self.on_append = on_append
        self._clock = clock
        path = self.folder / LOG_FILE_NAME
        if path.exists():
            foreign = {e.get("hearing_id") for e in read_chain(path)} - {hearing_id}
            if foreign:
                raise ValueError(
                    f"{path} belongs to hearing(s) {sorted(map(str, foreign))}, not {hearing_id}"
                )
        self._chain = HashChain(path, repair_fields=self._repair_fields)
        if self._chain.repaired is not None:
            log.warning("confirmation log %s had a torn last line; cut and recorded", path)

    def _fields(
        self, event: str, actor: str | None, party_id: str | None, details: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        return {
            "time": utc_timestamp(self._clock()),
            "hearing_id": self.hearing_id,
            "event": str(event),
            "actor": actor,
            "party_id": party_id,
            "details": dict(details or {}),
        }

    def _repair_fields(self, torn: TornTail) -> dict[str, Any]:
        return self._fields(LogEvent.LOG_REPAIRED, SYSTEM_ACTOR, None, torn.describe())

    @property
    def path(self) -> Path:
        """Where the log lives: ``<hearing folder>/confirmation-log.jsonl``."""
        return self._chain.path

    @property
    def last_hash(self) -> str:
        """Hash of the newest entry."""
        return self._chain.last_hash

    @property
    def entry_count(self) -> int:
        """How many entries the log holds."""
        return self._chain.count

    @property
    def repaired(self) -> TornTail | None:
        """The torn last line cut off when this log was reopened, if there was one."""
        return self._chain.repaired

    def append(
        self,
        event: LogEvent | str,
        *,
        actor: str | None = None,
        party_id: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> LogEntry:
        """Record one event durably and return the entry written."""
        if not _EVENT_NAME.match(str(event)):
            raise ValueError(f"event name must be snake_case past tense: {event!r}")
        entry = LogEntry.from_dict(self._chain.append(self._fields(event, actor, party_id, details)))
        if self.on_append is not None:
            try:
                self.on_append(entry)
            except Exception:
                # The file is the record of truth; a failing mirror must not undo or hide the append.
                log.exception("on_append callback failed for %s seq %d", self.hearing_id, entry.seq)
        return entry

    async def append_async(
        self,
        event: LogEvent | str,
        *,
        actor: str | None = None,
        party_id: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> LogEntry:
        """:meth:`append` on a worker thread, keeping the fsync off the event loop."""
        return await asyncio.to_thread(self.append, event, actor=actor, party_id=party_id, details=details)

    def entries(self) -> list[LogEntry]:
        """All entries, oldest first."""
        return [LogEntry.from_dict(e) for e in read_chain(self.path)]

    def verify(self) -> ChainVerification:
        """Check the whole chain on disk."""
        return verify_chain(self.path)

    def close(self) -> None:
        """Release the file."""
        self._chain.close()

    def __enter__(self) -> ConfirmationLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
