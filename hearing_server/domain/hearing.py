"""Hearing lifecycle: statuses and the transitions the court allows between them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from hearing_server.domain.errors import Conflict


class HearingStatus(StrEnum):
    """Where a hearing is in its life."""

    SCHEDULED = "scheduled"
    OPEN = "open"  # waiting room open
    IN_SESSION = "in_session"
    RECESS = "recess"
    ENDED = "ended"
    SEALED = "sealed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"  # the server stopped while the hearing was live


_ALLOWED: dict[HearingStatus, frozenset[HearingStatus]] = {
    HearingStatus.SCHEDULED: frozenset({HearingStatus.OPEN, HearingStatus.CANCELLED}),
    HearingStatus.OPEN: frozenset(
        {HearingStatus.IN_SESSION, HearingStatus.CANCELLED, HearingStatus.ENDED, HearingStatus.INTERRUPTED}
    ),
    HearingStatus.IN_SESSION: frozenset(
        {HearingStatus.RECESS, HearingStatus.ENDED, HearingStatus.INTERRUPTED}
    ),
    HearingStatus.RECESS: frozenset(
        {HearingStatus.IN_SESSION, HearingStatus.ENDED, HearingStatus.INTERRUPTED}
    ),
    HearingStatus.INTERRUPTED: frozenset({HearingStatus.IN_SESSION, HearingStatus.OPEN, HearingStatus.ENDED}),
    HearingStatus.ENDED: frozenset({HearingStatus.SEALED}),
    HearingStatus.SEALED: frozenset(),
    HearingStatus.CANCELLED: frozenset(),
}

EDITABLE = frozenset({HearingStatus.SCHEDULED, HearingStatus.OPEN})
LIVE = frozenset({HearingStatus.OPEN, HearingStatus.IN_SESSION, HearingStatus.RECESS})


def check_transition(current: HearingStatus, target: HearingStatus) -> None:
    """Raise :class:`Conflict` unless a hearing may go from ``current`` to ``target``."""
    if target not in _ALLOWED[current]:
        raise Conflict(
            f"a hearing that is {current.value} cannot become {target.value}", code="invalid_transition"
        )


@dataclass
class HearingInfo:
    """One hearing as the live room knows it: what is shown to participants and its status times."""

    id: str
    case_number: str
    title: str
    court: str
    courtroom: str
    scheduled_start: datetime
    duration_minutes: int
    presiding_judge: str
    notice_language: str
    status: HearingStatus
    started_at: datetime | None = None
    ended_at: datetime | None = None
    # The assigned secretary's name: the party's page says who invited them ("" when nobody is assigned).
    secretary_name: str = ""
