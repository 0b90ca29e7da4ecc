"""What the live room needs from the rest of the server: its settings and the storage behind it.

The room never touches the database or the confirmation log directly: the control plane implements
:class:`RoomStore` (``hearing_server.services.room_store``), as LiveKit keeps storage behind interfaces.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from hearing_server.domain.errors import StoreUnavailable
from hearing_server.domain.events import EventType, LoggedEvent
from hearing_server.domain.hearing import HearingInfo, HearingStatus
from hearing_server.domain.party import PartyState


@dataclass(frozen=True)
class RoomSettings:
    """The server options the live room follows."""

    max_participants: int = 16
    reconnect_grace_s: float = 60.0
    timezone: str = "UTC"
    ice_host_addresses: list[str] = field(default_factory=lambda: ["127.0.0.1"])
    ice_servers: list[str] = field(default_factory=list)
    # ICE servers of a participant (None: the server's own connections) with fresh TURN credentials
    # (hearing_server.turn); without it, ``ice_servers`` with no credentials.
    ice_servers_for: Callable[[str | None], list[dict[str, Any]]] | None = None
    video_codec: Literal["VP8", "H264"] = "VP8"
    ws_max_message_bytes: int = 65536
    ws_messages_per_s: float = 20.0
    readmit_after_interruption: Literal["operator", "automatic"] = "operator"


class RoomStore(Protocol):
    """Where the room's changes are kept: the hearing's and parties' rows and the confirmation log."""

    async def load_hearing(self, hearing_id: str) -> HearingInfo | None:
        """The hearing, or None if there is no such hearing."""

    async def save_hearing_status(
        self,
        hearing_id: str,
        status: HearingStatus,
        *,
        started_at: datetime | None = None,
        ended_at: datetime | None = None,
    ) -> None:
        """Store the hearing's new status (and the time it started or ended)."""

    async def save_party_state(self, party_id: str, state: PartyState) -> None:
        """Store a party's live state (best effort: the log entry already holds it)."""

    async def revoke_invitations(self, party_id: str) -> int:
        """Withdraw every usable invitation of a party; return how many."""

    async def record_event(
        self,
        hearing_id: str,
        event: EventType,
        *,
        actor: str,
        party_id: str | None,
        details: dict[str, Any],
    ) -> None:
        """Append an entry to the hearing's confirmation log (durable before it returns)."""

    async def history(self, hearing_id: str) -> list[LoggedEvent]:
        """The hearing's confirmation-log entries so far, oldest first (:class:`StoreUnavailable` when
        they cannot be read)."""


__all__ = ["HearingInfo", "LoggedEvent", "RoomSettings", "RoomStore", "StoreUnavailable"]
