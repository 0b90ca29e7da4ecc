"""Who is in a live hearing: participants, their connections and where each stands."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from hearing_server.domain.hearing import HearingStatus
from hearing_server.domain.party import PartyRole, PartyState
from media.contract import ConnectionState, TrackKind

KINDS: tuple[TrackKind, ...] = ("audio", "video")
CLOSED_STATUSES = frozenset({HearingStatus.CANCELLED, HearingStatus.ENDED, HearingStatus.SEALED})
MEDIA_STATUSES = frozenset(
    {HearingStatus.OPEN, HearingStatus.IN_SESSION, HearingStatus.RECESS, HearingStatus.INTERRUPTED}
)
PRE_ADMISSION = frozenset({PartyState.LINK_OPENED, PartyState.CONFIRMED, PartyState.WAITING})


def utc_now() -> datetime:
    """The current time in UTC."""
    return datetime.now(UTC)


def iso_z(moment: datetime) -> str:
    """``moment`` as ISO 8601 UTC with a ``Z``."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class ClientInfo:
    """Where a connection comes from, as recorded in the confirmation log."""

    ip: str
    user_agent: str
    via_node: str | None = None  # in a cluster: the node the party's socket reached, when it bridged here


class Connection(Protocol):
    """What the room needs of one participant's signaling connection."""

    client: ClientInfo

    def send(self, message: dict[str, Any]) -> None:
        """Queue ``message`` for the client; never blocks."""

    def close_soon(self, code: int) -> None:
        """Send what is queued, then close with ``code``."""


@dataclass(frozen=True)
class Entrant:
    """Someone about to join: the party (or staff seat) and how they authenticated."""

    party_id: str
    role: PartyRole
    name: str
    actor: str  # "party:<id>" or "user:<id>"
    staff: bool = False
    operator: bool = False  # holds the operator controls (the courtroom console)
    silent: bool = False  # a staff observer: their media is never forwarded
    language: str | None = None


@dataclass
class Participant:
    """One party's live presence in the hearing."""

    party_id: str
    role: PartyRole
    name: str
    actor: str
    state: PartyState = PartyState.INVITED
    staff: bool = False
    operator: bool = False
    silent: bool = False
    connection: Connection | None = None
    resume_state: PartyState | None = None  # where a disconnected participant returns to
    disconnected_at: datetime | None = None
    grace: asyncio.Task[None] | None = None
    muted_by_court: set[TrackKind] = field(default_factory=set)
    muted_by_self: set[TrackKind] = field(default_factory=set)
    audio_only: bool = False
    media_state: ConnectionState | None = None
    published: bool = False
    notices: dict[str, str] = field(default_factory=dict)  # language → sha256 shown on this connection
    returning: bool = False  # back after an interruption without confirming again (room/readmission.py)

    @property
    def muted(self) -> set[TrackKind]:
        """The kinds the server does not forward."""
        kinds = self.muted_by_court | self.muted_by_self
        if self.audio_only:
            kinds.add("video")
        if self.silent:
            kinds.update(KINDS)
        return kinds

    @property
    def in_room(self) -> bool:
        """Admitted to the hearing room (possibly reconnecting)."""
        return self.state is PartyState.IN_HEARING or (
            self.state is PartyState.DISCONNECTED and self.resume_state is PartyState.IN_HEARING
        )

    @property
    def in_waiting_room(self) -> bool:
        """On the way in: reading the notice, confirmed or waiting for admission."""
        return self.state in PRE_ADMISSION or (
            self.state is PartyState.DISCONNECTED and self.resume_state in PRE_ADMISSION
        )

    def cancel_grace(self) -> None:
        """Stop waiting for this participant to reconnect."""
        if self.grace is not None:
            self.grace.cancel()
            self.grace = None


class RoomClosed(Exception):
    """The live hearing was closed while someone tried to join it; fetch a fresh one."""
