"""One live hearing: who is connected, how they join and leave, and how its status changes.

Every change is recorded in the confirmation log first, then stored (through :class:`RoomStore`); the
commands people send are carried out by :class:`signaling.room.commands.RoomCommands`, what each of them
sees is built by :mod:`signaling.room.views`, and the media by :class:`MediaSession`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from hearing_server.domain.errors import HearingError
from hearing_server.domain.events import EventType
from hearing_server.domain.hearing import HearingStatus, check_transition
from hearing_server.domain.party import PartyRole, PartyState
from signaling import protocol as p
from signaling.notice import Notice, render_notice
from signaling.protocol import CloseCode, ErrorCode, ProtocolError
from signaling.room import readmission, views
from signaling.room.commands import RoomCommands
from signaling.room.media_session import MediaFactory, MediaSession, RecordingFactory
from signaling.room.participant import (
    CLOSED_STATUSES,
    MEDIA_STATUSES,
    Connection,
    Entrant,
    Participant,
    RoomClosed,
    iso_z,
    utc_now,
)
from signaling.room.store import HearingInfo, RoomSettings, RoomStore, StoreUnavailable

log = logging.getLogger(__name__)

WAITING_ROOM_LEAD = timedelta(minutes=30)


class LiveHearing:
    """One hearing while people are connected to it; every change is recorded as an event and stored."""

    def __init__(
        self,
        hearing: HearingInfo,
        *,
        settings: RoomSettings,
        store: RoomStore,
        media_factory: MediaFactory,
        recording_factory: RecordingFactory | None = None,
        on_closed: Callable[[LiveHearing], None] | None = None,
    ) -> None:
        self.hearing = hearing
        self.status = hearing.status
        self.settings = settings
        self.store = store
        self.participants: dict[str, Participant] = {}
        self.lock = asyncio.Lock()
        self.media = MediaSession(hearing.id, settings, self, media_factory, recording_factory)
        self.closed = False
        self._on_closed = on_closed
        self._commands = RoomCommands(self)

    @property
    def id(self) -> str:
        """The hearing's id."""
        return self.hearing.id

    def participant(self, party_id: str) -> Participant | None:
        """The live participant of ``party_id``, if connected or reconnecting."""
        return self.participants.get(party_id)

    async def handle(
        self, part: Participant, conn: Connection, message: p.ClientMessage
    ) -> dict[str, Any] | None:
        """Carry out one client message for ``part``; return the direct reply, if any."""
        return await self._commands.handle(part, conn, message)

    # --- joining and leaving ------------------------------------------------------------------

    async def join(self, entrant: Entrant, conn: Connection) -> Participant:
        """Seat ``entrant`` on ``conn``: a new arrival, a reconnect within the grace, or a replacement."""
        async with self.lock:
            if self.closed:
                raise RoomClosed
            await self._check_entry(entrant)
            part = self.participants.get(entrant.party_id)
            if part is not None and part.connection is not None:
                old = part.connection
                part.connection = conn
                old.send(p.simple("replaced"))
                old.close_soon(CloseCode.REPLACED)
                await self.record(
                    EventType.PARTY_REPLACED,
                    entrant.actor,
                    part,
                    conn,
                    previous_ip=old.client.ip,
                    previous_user_agent=old.client.user_agent,
                )
            elif part is not None and part.state is PartyState.DISCONNECTED:
                part.cancel_grace()
                part.connection = conn
                state = part.resume_state or PartyState.LINK_OPENED
                part.resume_state = None
                part.disconnected_at = None
                await self.set_state(part, state, EventType.PARTY_RECONNECTED, entrant.actor, conn)
            else:
                self._check_capacity(entrant)
                part = Participant(
                    party_id=entrant.party_id,
                    role=entrant.role,
                    name=entrant.name,
                    actor=entrant.actor,
                    staff=entrant.staff,
                    operator=entrant.operator,
                    silent=entrant.silent,
                    connection=conn,
                )
                self.participants[part.party_id] = part
                try:
                    if entrant.staff:
                        seat = "courtroom" if entrant.operator else "observer"
                        await self.set_state(
                            part,
                            PartyState.IN_HEARING,
                            EventType.PARTY_JOINED,
                            entrant.actor,
                            conn,
                            seat=seat,
                        )
                    else:
                        await self.set_state(
                            part, PartyState.LINK_OPENED, EventType.LINK_OPENED, entrant.actor, conn
                        )
                        await readmission.seat_if_returning(self, part, conn)
                except BaseException:
                    # a failed arrival must not hold a seat: the connection never learns it joined
                    self.participants.pop(part.party_id, None)
                    raise
            part.name, part.actor = entrant.name, entrant.actor
            part.staff, part.operator, part.silent = entrant.staff, entrant.operator, entrant.silent
            notice = None
            if part.state is PartyState.LINK_OPENED:
                part.notices.clear()
                notice = await self.show_notice(part, entrant.language or self.hearing.notice_language)
            conn.send(views.hearing_message(self.hearing, self.status, part, notice, self.settings))
            self.broadcast()
            return part

    async def _check_entry(self, entrant: Entrant) -> None:
        if self.status in CLOSED_STATUSES:
            raise ProtocolError(ErrorCode.HEARING_CLOSED, f"the hearing is {self.status.value}")
        if self.status is HearingStatus.SCHEDULED and not entrant.staff:
            opens_at = self.hearing.scheduled_start - WAITING_ROOM_LEAD
            if utc_now() < opens_at:
                raise ProtocolError(
                    ErrorCode.HEARING_NOT_OPEN, "the waiting room is not open yet", opens_at=iso_z(opens_at)
                )
            await self.set_status(HearingStatus.OPEN, EventType.WAITING_ROOM_OPENED, "system", None)

    def _check_capacity(self, entrant: Entrant) -> None:
        if entrant.role is PartyRole.COURTROOM:
            return  # the court can always take its own seat
        others = sum(1 for q in self.participants.values() if q.role is not PartyRole.COURTROOM)
        if others >= self.settings.max_participants - 1:
            raise ProtocolError(ErrorCode.HEARING_FULL, "the hearing has the most participants allowed")

    async def show_notice(self, part: Participant, language: str) -> Notice:
        """Render the recording notice for ``part`` and log that it was shown (with its hash)."""
        notice = render_notice(language, case_number=self.hearing.case_number, court=self.hearing.court)
        part.notices[language] = notice.sha256
        await self.record(
            EventType.NOTICE_SHOWN,
            part.actor,
            part,
            part.connection,
            language=language,
            notice_sha256=notice.sha256,
        )
        return notice

    async def connection_closed(self, part: Participant, conn: Connection) -> None:
        """The participant's socket closed: within the grace they may come back, else they have left."""
        async with self.lock:
            if part.connection is not conn or self.closed or self.participants.get(part.party_id) is not part:
                return
            part.connection = None
            grace = self.settings.reconnect_grace_s
            if grace > 0 and (part.in_room or part.in_waiting_room):
                part.resume_state = part.state
                part.disconnected_at = utc_now()
                await self.set_state(
                    part, PartyState.DISCONNECTED, EventType.PARTY_DISCONNECTED, part.actor, conn
                )
                part.grace = asyncio.create_task(self._grace_expiry(part, grace))
            else:
                await self.depart(
                    part, PartyState.LEFT, EventType.PARTY_LEFT, part.actor, conn, reason="closed"
                )
            self.broadcast()
            await self.release_if_idle_locked()

    async def _grace_expiry(self, part: Participant, grace: float) -> None:
        await asyncio.sleep(grace)
        async with self.lock:
            if self.closed or self.participants.get(part.party_id) is not part:
                return
            if part.state is not PartyState.DISCONNECTED:
                return
            part.grace = None  # this task is finishing; do not cancel it in depart
            await self.depart(
                part, PartyState.LEFT, EventType.PARTY_LEFT, "system", None, reason="reconnect_grace_expired"
            )
            self.broadcast()
            await self.release_if_idle_locked()

    async def depart(
        self,
        part: Participant,
        state: PartyState,
        event: EventType,
        actor: str,
        conn: Connection | None,
        **details: Any,
    ) -> None:
        """Take the participant out of the hearing: record, store, stop their media, forget them."""
        part.cancel_grace()
        self.participants.pop(part.party_id, None)
        await self.set_state(part, state, event, actor, conn, **details)
        await self.media.leave(part)

    async def release_if_idle(self) -> None:
        """Forget this hearing if it is not live and nobody is in it."""
        async with self.lock:
            if not self.closed:
                await self.release_if_idle_locked()

    async def release_if_idle_locked(self) -> None:
        """Forget a hearing that is not live once nobody is in it (lock held)."""
        if self.participants or self.status in MEDIA_STATUSES:
            return
        await self._shutdown(None, CloseCode.GOING_AWAY)

    # --- the hearing's end ------------------------------------------------------------------

    async def end(self, operator: Participant | None) -> None:
        """End the hearing: everyone leaves, the status becomes ``ended`` and the media closes."""
        async with self.lock:
            check_transition(self.status, HearingStatus.ENDED)
            for part in list(self.participants.values()):
                part.cancel_grace()
                await self.set_state(
                    part, PartyState.LEFT, EventType.PARTY_LEFT, "system", None, reason="hearing_ended"
                )
            actor = operator.actor if operator is not None else "system"
            await self.set_status(
                HearingStatus.ENDED, EventType.HEARING_ENDED, actor, operator.connection if operator else None
            )
            await self._shutdown("hearing_ended", CloseCode.HEARING_ENDED)

    async def interrupt(self) -> None:
        """The server is stopping: a live hearing becomes ``interrupted`` and everyone is disconnected."""
        async with self.lock:
            if self.closed:
                return
            if self.status in MEDIA_STATUSES and self.status is not HearingStatus.INTERRUPTED:
                for part in list(self.participants.values()):
                    part.cancel_grace()
                    if part.state is not PartyState.DISCONNECTED:
                        await self.set_state(
                            part,
                            PartyState.DISCONNECTED,
                            EventType.PARTY_DISCONNECTED,
                            "system",
                            None,
                            reason="server_shutdown",
                        )
                await self.set_status(
                    HearingStatus.INTERRUPTED, EventType.HEARING_INTERRUPTED, "system", None
                )
            await self._shutdown(None, CloseCode.GOING_AWAY)

    async def abandon(self) -> None:
        """Another node took this hearing over: disconnect everyone here, leaving its status alone."""
        async with self.lock:
            if not self.closed:
                await self._shutdown(None, CloseCode.GOING_AWAY)

    async def _shutdown(self, farewell: str | None, code: int) -> None:
        """Close the media and every connection, and leave the registry (lock held)."""
        self.closed = True
        for part in self.participants.values():
            part.cancel_grace()
            if part.connection is not None:
                if farewell is not None:
                    part.connection.send(p.simple(farewell))
                part.connection.close_soon(code)
                part.connection = None
        self.participants.clear()
        await self.media.close(farewell or "interrupted")
        if self._on_closed is not None:
            self._on_closed(self)

    # --- recording changes ------------------------------------------------------------------

    async def set_status(
        self, target: HearingStatus, event: EventType, actor: str, conn: Connection | None
    ) -> None:
        """Move the hearing to ``target``: recording follows, the change is logged and stored."""
        check_transition(self.status, target)
        if target is HearingStatus.IN_SESSION:
            self.media.ensure(self.status)  # the recording exists from the router's creation
            if self.media.recording is not None:
                try:
                    await self.media.recording.start(actor)
                except HearingError as exc:
                    raise ProtocolError(ErrorCode.RECORDING_UNAVAILABLE, exc.message) from exc
        now = utc_now()
        started_at = now if target is HearingStatus.IN_SESSION and self.hearing.started_at is None else None
        ended_at = now if target is HearingStatus.ENDED else None
        await self.store.save_hearing_status(self.id, target, started_at=started_at, ended_at=ended_at)
        self.hearing.status = target
        self.hearing.started_at = started_at or self.hearing.started_at
        self.hearing.ended_at = ended_at or self.hearing.ended_at
        previous, self.status = self.status, target
        await self.record(event, actor, None, conn, previous_status=previous.value)
        if target is HearingStatus.RECESS and self.media.recording is not None:
            await self.media.recording.pause(actor)

    async def set_state(
        self,
        part: Participant,
        state: PartyState,
        event: EventType,
        actor: str,
        conn: Connection | None,
        **details: Any,
    ) -> None:
        """Move ``part`` to ``state``, logging ``event``."""
        part.state = state
        # The confirmation log (on disk) is the record of truth and comes first: a database outage must
        # not lose the event, nor leave a disconnect half-done (no grace timer, media not released).
        await self.record(event, actor, part, conn, **details)
        try:
            await self.store.save_party_state(part.party_id, state)
        except StoreUnavailable as exc:
            log.warning("party %s is %s but the database could not store it: %s", part.party_id, state, exc)
            self.alert_staff(
                "database_unavailable",
                "The database cannot be reached; the hearing goes on and every event is in its log.",
            )

    async def record(
        self, event: EventType, actor: str, part: Participant | None, conn: Connection | None, **details: Any
    ) -> None:
        """Append ``event`` to the hearing's confirmation log, with where the connection comes from."""
        entry: dict[str, Any] = {}
        if conn is not None:
            entry["ip"] = conn.client.ip
            entry["user_agent"] = conn.client.user_agent
            if conn.client.via_node is not None:
                entry["via_node"] = conn.client.via_node
        entry.update(details)
        await self.store.record_event(
            self.id, event, actor=actor, party_id=part.party_id if part else None, details=entry
        )

    # --- telling people -------------------------------------------------------------------------

    def staff_connections(self) -> list[Connection]:
        """The connections of the staff in the hearing."""
        return [q.connection for q in self.participants.values() if q.staff and q.connection is not None]

    def alert_staff(self, code: str, message: str) -> None:
        """Tell every staff connection (the operator first of all) about a problem that needs action."""
        for conn in self.staff_connections():
            conn.send(p.simple("alert", code=code, message=message))
        self.broadcast()

    def snapshot_for(self, viewer: Participant) -> dict[str, Any]:
        """The ``state`` message as ``viewer`` may see it."""
        return views.snapshot(
            viewer,
            self.status,
            self.media.recording_status,
            self.participants.values(),
            self.settings.node_id,
            self.media.host,
        )

    def broadcast(self) -> None:
        """Send everyone their state snapshot."""
        for part in self.participants.values():
            if part.connection is not None:
                part.connection.send(self.snapshot_for(part))
