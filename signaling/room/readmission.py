"""Parties returning after an interruption (docs/protocol.md, "After an interruption").

A party who confirmed the recording notice and was admitted in this hearing, and was still in it when the
hearing was interrupted (server crash or shutdown), does not confirm the notice again: on arrival they go
straight to the waiting room, flagged as *returning*, and the operator re-admits them with one click — or the
server does, when ``readmit_after_interruption = "automatic"``. The hearing's confirmation log (read through
the room's store) tells who returns; every step is logged as usual.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hearing_server.domain.errors import StoreUnavailable
from hearing_server.domain.events import EventType, LoggedEvent
from hearing_server.domain.party import PartyState
from signaling.protocol import ProtocolError
from signaling.room.participant import Connection, Participant
from signaling.room.store import RoomStore

if TYPE_CHECKING:  # the room calls in here from its join path
    from signaling.room.hearing import LiveHearing

log = logging.getLogger(__name__)

READMITTED_REASON = "readmitted_after_interruption"
RETURNING_REASON = "returning_after_interruption"
# After one of these the party is no longer in the hearing: a later interruption does not bring them back.
OUT_OF_HEARING = frozenset({EventType.PARTY_LEFT, EventType.PARTY_REMOVED, EventType.PARTY_DENIED})


@dataclass(frozen=True)
class Return:
    """Why a party comes back without confirming: the log entries their earlier consent and seat rest on."""

    notice_confirmed_seq: int
    notice_language: str | None
    notice_sha256: str | None
    admitted_seq: int
    interrupted_seq: int

    def details(self) -> dict[str, Any]:
        """The log details of the party's return (on ``party_waiting``)."""
        return {
            "returning": True,
            "reason": RETURNING_REASON,
            "notice_confirmed_seq": self.notice_confirmed_seq,
            "notice_language": self.notice_language,
            "notice_sha256": self.notice_sha256,
            "admitted_seq": self.admitted_seq,
            "interrupted_seq": self.interrupted_seq,
        }


def find_return(entries: Iterable[LoggedEvent], party_id: str) -> Return | None:
    """The party's return, when the log shows them confirmed, admitted and still in the hearing at an
    interruption, and neither re-admitted nor gone (left, removed, denied) since."""
    confirmed: LoggedEvent | None = None
    admitted: LoggedEvent | None = None
    returning: Return | None = None
    for entry in entries:
        if entry.event == EventType.HEARING_INTERRUPTED:
            if admitted is not None and confirmed is not None:
                returning = Return(
                    notice_confirmed_seq=confirmed.seq,
                    notice_language=confirmed.details.get("language"),
                    notice_sha256=confirmed.details.get("notice_sha256"),
                    admitted_seq=admitted.seq,
                    interrupted_seq=entry.seq,
                )
            admitted = None
        elif entry.party_id != party_id:
            continue
        elif entry.event == EventType.NOTICE_CONFIRMED:
            confirmed = entry
        elif entry.event == EventType.PARTY_ADMITTED:
            # Re-admission after a return counts as an admission (the notice confirmed before still holds).
            admitted = entry if confirmed is not None else None
            returning = None
        elif entry.event in OUT_OF_HEARING:
            admitted = None
            returning = None
    return returning


async def returning_party(store: RoomStore, hearing_id: str, party_id: str) -> Return | None:
    """The party's return as the hearing's log says.

    When the log cannot be read the party is not taken for returning: confirming the notice again is the
    safe side.
    """
    try:
        entries = await store.history(hearing_id)
    except StoreUnavailable as exc:
        log.warning("cannot tell whether party %s returns after an interruption: %s", party_id, exc)
        return None
    return find_return(entries, party_id)


async def seat_if_returning(room: LiveHearing, part: Participant, conn: Connection) -> Return | None:
    """When the party (just ``link_opened``, room lock held) returns after an interruption, take them past
    the notice to the waiting room, and straight back into the hearing when the policy is automatic."""
    back = await returning_party(room.store, room.id, part.party_id)
    if back is None:
        return None
    part.returning = True
    details = back.details()
    await room.set_state(part, PartyState.WAITING, EventType.PARTY_WAITING, part.actor, conn, **details)
    if room.settings.readmit_after_interruption == "automatic":
        await room.set_state(
            part, PartyState.IN_HEARING, EventType.PARTY_ADMITTED, "system", None, reason=READMITTED_REASON
        )
        await room.record(EventType.PARTY_JOINED, part.actor, part, conn)
    return back


def waiting_returners(participants: Iterable[Participant]) -> list[str]:
    """The ids of returning parties waiting for re-admission, in arrival order."""
    return [q.party_id for q in participants if q.returning and q.state is PartyState.WAITING]


async def admit_all_returning(party_ids: Sequence[str], admit: Callable[[str], Awaitable[None]]) -> int:
    """Admit each of ``party_ids``; one who left meanwhile is skipped. Returns how many were admitted."""
    admitted = 0
    for party_id in party_ids:
        with contextlib.suppress(ProtocolError):
            await admit(party_id)
            admitted += 1
    return admitted
