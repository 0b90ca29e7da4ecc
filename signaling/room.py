"""The live state of one hearing: who is connected, the waiting room, the operator's controls, the media."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hearing_server.config import Config
from hearing_server.domain.errors import HearingError
from hearing_server.domain.events import EventType
from hearing_server.domain.hearing import HearingStatus, check_transition
from hearing_server.domain.party import PartyRole, PartyState
from hearing_server.record.event_log import EventRecorder
from hearing_server.store.models import Hearing, Invitation, Party
from media.contract import (
    ConnectionState,
    MediaEvents,
    MediaRouter,
    MediaSettings,
    PacketSink,
    TrackKind,
    TrackMapping,
)
from media.errors import MediaError
from signaling import protocol as p
from signaling.notice import Notice, render_notice
from signaling.protocol import CloseCode, ErrorCode, ProtocolError

log = logging.getLogger(__name__)

MediaFactory = Callable[[MediaSettings, MediaEvents, PacketSink | None], MediaRouter]


class HearingRecording(PacketSink, Protocol):
    """The recording of one hearing as the room drives it: a packet sink with a lifecycle and an indicator."""

    on_alert: Callable[[str, str], None] | None  # (code, message) for the operators
    on_change: Callable[[], None] | None  # the indicator changed

    @property
    def status(self) -> str:
        """``off``, ``recording``, ``paused`` or ``failed``."""

    async def start(self, actor: str) -> None:
        """Start (or resume) recording; raises a HearingError when it cannot (e.g. no disk space)."""

    async def pause(self, actor: str) -> None:
        """Recess: stop recording until resumed."""

    async def stop(self, actor: str, reason: str) -> None:
        """Close every file durably."""


RecordingFactory = Callable[[Hearing], HearingRecording | None]

WAITING_ROOM_LEAD = timedelta(minutes=30)
QUALITY_INTERVAL_S = 2.0
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


class RoomClosed(Exception):
    """The live hearing was closed while someone tried to join it; fetch a fresh one."""


class RoomMediaEvents:
    """What the media plane tells the room, delivered to the participants concerned."""

    def __init__(self, room: LiveHearing) -> None:
        self._room = room

    async def subscriber_offer(self, participant_id: str, sdp: str, tracks: list[TrackMapping]) -> None:
        """Send the participant the server's (re)negotiation offer for their subscribe connection."""
        self._room.deliver_subscribe_offer(participant_id, sdp, tracks)

    def connection_state_changed(self, participant_id: str, state: ConnectionState) -> None:
        """Show everyone the participant's media connection state."""
        self._room.media_state_changed(participant_id, state)


class LiveHearing:
    """One hearing while people are connected to it; every change is persisted and recorded as an event."""

    def __init__(
        self,
        hearing: Hearing,
        *,
        config: Config,
        db: async_sessionmaker[AsyncSession],
        events: EventRecorder,
        media_factory: MediaFactory,
        recording_factory: RecordingFactory | None = None,
        on_closed: Callable[[LiveHearing], None] | None = None,
    ) -> None:
        self.hearing = hearing
        self.status = HearingStatus(hearing.status)
        self._config = config
        self._db = db
        self._events = events
        self._media_factory = media_factory
        self._recording_factory = recording_factory
        self._on_closed = on_closed
        self._participants: dict[str, Participant] = {}
        self._lock = asyncio.Lock()
        self._router: MediaRouter | None = None
        self._recording: HearingRecording | None = None
        self._quality_task: asyncio.Task[None] | None = None
        self.closed = False

    @property
    def id(self) -> str:
        """The hearing's id."""
        return self.hearing.id

    def participant(self, party_id: str) -> Participant | None:
        """The live participant of ``party_id``, if connected or reconnecting."""
        return self._participants.get(party_id)

    # --- joining and leaving ------------------------------------------------------------------

    async def join(self, entrant: Entrant, conn: Connection) -> Participant:
        """Seat ``entrant`` on ``conn``: a new arrival, a reconnect within the grace, or a replacement."""
        async with self._lock:
            if self.closed:
                raise RoomClosed
            await self._check_entry(entrant, conn)
            part = self._participants.get(entrant.party_id)
            if part is not None and part.connection is not None:
                old = part.connection
                part.connection = conn
                old.send(p.simple("replaced"))
                old.close_soon(CloseCode.REPLACED)
                await self._record(
                    EventType.PARTY_REPLACED,
                    entrant.actor,
                    part,
                    conn,
                    previous_ip=old.client.ip,
                    previous_user_agent=old.client.user_agent,
                )
            elif part is not None and part.state is PartyState.DISCONNECTED:
                self._cancel_grace(part)
                part.connection = conn
                state = part.resume_state or PartyState.LINK_OPENED
                part.resume_state = None
                part.disconnected_at = None
                await self._set_state(part, state, EventType.PARTY_RECONNECTED, entrant.actor, conn)
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
                self._participants[part.party_id] = part
                try:
                    if entrant.staff:
                        seat = "courtroom" if entrant.operator else "observer"
                        await self._set_state(
                            part,
                            PartyState.IN_HEARING,
                            EventType.PARTY_JOINED,
                            entrant.actor,
                            conn,
                            seat=seat,
                        )
                    else:
                        await self._set_state(
                            part, PartyState.LINK_OPENED, EventType.LINK_OPENED, entrant.actor, conn
                        )
                except BaseException:
                    # a failed arrival must not hold a seat: the connection never learns it joined
                    self._participants.pop(part.party_id, None)
                    raise
            part.name, part.actor = entrant.name, entrant.actor
            part.staff, part.operator, part.silent = entrant.staff, entrant.operator, entrant.silent
            notice = None
            if part.state is PartyState.LINK_OPENED:
                part.notices.clear()
                notice = await self._show_notice(part, entrant.language or self.hearing.notice_language)
            conn.send(self._hearing_message(part, notice))
            self._broadcast()
            return part

    async def _check_entry(self, entrant: Entrant, conn: Connection) -> None:
        if self.status in CLOSED_STATUSES:
            raise ProtocolError(ErrorCode.HEARING_CLOSED, f"the hearing is {self.status.value}")
        if self.status is HearingStatus.SCHEDULED and not entrant.staff:
            opens_at = self.hearing.scheduled_start - WAITING_ROOM_LEAD
            if utc_now() < opens_at:
                raise ProtocolError(
                    ErrorCode.HEARING_NOT_OPEN, "the waiting room is not open yet", opens_at=iso_z(opens_at)
                )
            await self._set_status(HearingStatus.OPEN, EventType.WAITING_ROOM_OPENED, "system", None)

    def _check_capacity(self, entrant: Entrant) -> None:
        if entrant.role is PartyRole.COURTROOM:
            return  # the court can always take its own seat
        others = sum(1 for q in self._participants.values() if q.role is not PartyRole.COURTROOM)
        if others >= self._config.max_participants - 1:
            raise ProtocolError(ErrorCode.HEARING_FULL, "the hearing has the most participants allowed")

    async def connection_closed(self, part: Participant, conn: Connection) -> None:
        """The participant's socket closed: within the grace they may come back, else they have left."""
        async with self._lock:
            if (
                part.connection is not conn
                or self.closed
                or self._participants.get(part.party_id) is not part
            ):
                return
            part.connection = None
            grace = self._config.reconnect_grace_s
            if grace > 0 and (part.in_room or part.in_waiting_room):
                part.resume_state = part.state
                part.disconnected_at = utc_now()
                await self._set_state(
                    part, PartyState.DISCONNECTED, EventType.PARTY_DISCONNECTED, part.actor, conn
                )
                part.grace = asyncio.create_task(self._grace_expiry(part, grace))
            else:
                await self._depart(
                    part, PartyState.LEFT, EventType.PARTY_LEFT, part.actor, conn, reason="closed"
                )
            self._broadcast()
            await self._release_if_idle()

    async def _grace_expiry(self, part: Participant, grace: float) -> None:
        await asyncio.sleep(grace)
        async with self._lock:
            if self.closed or self._participants.get(part.party_id) is not part:
                return
            if part.state is not PartyState.DISCONNECTED:
                return
            part.grace = None  # this task is finishing; do not cancel it in _depart
            await self._depart(
                part, PartyState.LEFT, EventType.PARTY_LEFT, "system", None, reason="reconnect_grace_expired"
            )
            self._broadcast()
            await self._release_if_idle()

    async def _depart(
        self,
        part: Participant,
        state: PartyState,
        event: EventType,
        actor: str,
        conn: Connection | None,
        **details: Any,
    ) -> None:
        """Take the participant out of the hearing: persist, record, stop their media, forget them."""
        self._cancel_grace(part)
        self._participants.pop(part.party_id, None)
        await self._set_state(part, state, event, actor, conn, **details)
        await self._leave_media(part)

    def _cancel_grace(self, part: Participant) -> None:
        if part.grace is not None:
            part.grace.cancel()
            part.grace = None

    async def release_if_idle(self) -> None:
        """Forget this hearing if it is not live and nobody is in it."""
        async with self._lock:
            if not self.closed:
                await self._release_if_idle()

    async def _release_if_idle(self) -> None:
        """Forget a hearing that is not live once nobody is in it."""
        if self._participants or self.status in MEDIA_STATUSES:
            return
        await self._shutdown(None, CloseCode.GOING_AWAY)

    # --- commands -------------------------------------------------------------------------

    async def handle(
        self, part: Participant, conn: Connection, message: p.ClientMessage
    ) -> dict[str, Any] | None:
        """Carry out one client message for ``part``; return the direct reply, if any."""
        if part.connection is not conn or self._participants.get(part.party_id) is not part:
            raise ProtocolError(ErrorCode.INVALID_STATE, "this connection no longer holds a seat")
        if type(message) in p.OPERATOR_COMMANDS and not part.operator:
            raise ProtocolError(ErrorCode.FORBIDDEN, "only the courtroom operator may do this")
        match message:
            case p.Ping():
                return p.with_ref(p.simple("pong"), message.ref)
            case p.Join():
                raise ProtocolError(ErrorCode.ALREADY_JOINED, "this connection has already joined")
            case p.ShowNotice():
                return p.with_ref(await self._on_show_notice(part, message.language), message.ref)
            case p.ConfirmNotice():
                await self._on_confirm_notice(part, message.language, message.notice_sha256)
            case p.Ready():
                await self._on_ready(part)
            case p.PublishOffer():
                answer = await self._on_publish(part, message.sdp)
                return p.with_ref(p.simple("publish_answer", sdp=answer), message.ref)
            case p.SubscribeAnswer():
                await self._on_subscribe_answer(part, message.sdp)
            case p.MuteSelf():
                await self._on_mute_self(part, message.kind, message.muted)
            case p.SetAudioOnly():
                await self._on_audio_only(part, message.audio_only)
            case p.Leave():
                await self._on_leave(part)
            case p.OpenWaitingRoom():
                await self._status_command(part, HearingStatus.OPEN, EventType.WAITING_ROOM_OPENED)
            case p.Start():
                await self._status_command(
                    part,
                    HearingStatus.IN_SESSION,
                    EventType.HEARING_STARTED,
                    require=frozenset({HearingStatus.OPEN, HearingStatus.INTERRUPTED}),
                )
            case p.Recess():
                await self._status_command(
                    part,
                    HearingStatus.RECESS,
                    EventType.RECESS_CALLED,
                    require=frozenset({HearingStatus.IN_SESSION}),
                )
            case p.Resume():
                await self._status_command(
                    part,
                    HearingStatus.IN_SESSION,
                    EventType.HEARING_RESUMED,
                    require=frozenset({HearingStatus.RECESS}),
                )
            case p.Admit():
                await self._on_admit(part, message.party_id)
            case p.Deny():
                await self._on_deny(part, message.party_id)
            case p.Mute():
                await self._on_court_mute(part, message.party_id, message.kind, True)
            case p.Unmute():
                await self._on_court_mute(part, message.party_id, message.kind, False)
            case p.RequestUnmute():
                await self._on_request_unmute(part, message.party_id, message.kind)
            case p.Remove():
                await self._on_remove(part, message.party_id)
            case p.End():
                await self.end(part)
            case _:
                raise ProtocolError(ErrorCode.UNKNOWN_TYPE, "unknown message type")
        return None

    async def _on_show_notice(self, part: Participant, language: str) -> dict[str, Any]:
        async with self._lock:
            if part.state is not PartyState.LINK_OPENED:
                raise ProtocolError(ErrorCode.INVALID_STATE, "the notice has already been confirmed")
            notice = await self._show_notice(part, language)
            return p.simple("notice", language=notice.language, text=notice.text, sha256=notice.sha256)

    async def _show_notice(self, part: Participant, language: str) -> Notice:
        notice = render_notice(language, case_number=self.hearing.case_number, court=self.hearing.court)
        part.notices[language] = notice.sha256
        await self._record(
            EventType.NOTICE_SHOWN,
            part.actor,
            part,
            part.connection,
            language=language,
            notice_sha256=notice.sha256,
        )
        return notice

    async def _on_confirm_notice(self, part: Participant, language: str, sha256: str) -> None:
        async with self._lock:
            if part.state is not PartyState.LINK_OPENED:
                raise ProtocolError(ErrorCode.INVALID_STATE, "there is no notice waiting for confirmation")
            if part.notices.get(language) != sha256:
                raise ProtocolError(
                    ErrorCode.NOTICE_MISMATCH, "this is not the notice that was shown", field="notice_sha256"
                )
            await self._set_state(
                part,
                PartyState.CONFIRMED,
                EventType.NOTICE_CONFIRMED,
                part.actor,
                part.connection,
                language=language,
                notice_sha256=sha256,
            )
            self._broadcast()

    async def _on_ready(self, part: Participant) -> None:
        async with self._lock:
            if part.state is not PartyState.CONFIRMED:
                raise ProtocolError(ErrorCode.INVALID_STATE, "confirm the recording notice first")
            await self._set_state(
                part, PartyState.WAITING, EventType.PARTY_WAITING, part.actor, part.connection
            )
            self._broadcast()

    async def _on_leave(self, part: Participant) -> None:
        async with self._lock:
            conn = part.connection
            part.connection = None
            await self._depart(part, PartyState.LEFT, EventType.PARTY_LEFT, part.actor, conn, reason="left")
            if conn is not None:
                conn.close_soon(CloseCode.LEFT)
            self._broadcast()
            await self._release_if_idle()

    async def _status_command(
        self,
        operator: Participant,
        target: HearingStatus,
        event: EventType,
        *,
        require: frozenset[HearingStatus] | None = None,
    ) -> None:
        async with self._lock:
            if require is not None and self.status not in require:
                raise ProtocolError(ErrorCode.INVALID_STATE, f"the hearing is {self.status.value}")
            await self._set_status(target, event, operator.actor, operator.connection)
            if self._router is not None:
                self._router.set_paused(self.status is not HearingStatus.IN_SESSION)
            self._broadcast()

    def _target(self, party_id: str) -> Participant:
        part = self._participants.get(party_id)
        if part is None:
            raise ProtocolError(ErrorCode.NOT_FOUND, "no such participant in this hearing", field="party_id")
        return part

    async def _on_admit(self, operator: Participant, party_id: str) -> None:
        async with self._lock:
            part = self._target(party_id)
            if part.state is not PartyState.WAITING:
                raise ProtocolError(
                    ErrorCode.INVALID_STATE, f"the participant is {part.state.value}, not waiting"
                )
            await self._set_state(
                part, PartyState.IN_HEARING, EventType.PARTY_ADMITTED, operator.actor, operator.connection
            )
            await self._record(EventType.PARTY_JOINED, part.actor, part, part.connection)
            self._broadcast()

    async def _on_deny(self, operator: Participant, party_id: str) -> None:
        async with self._lock:
            part = self._target(party_id)
            if not part.in_waiting_room:
                raise ProtocolError(ErrorCode.INVALID_STATE, f"the participant is {part.state.value}")
            conn = part.connection
            part.connection = None
            await self._depart(
                part, PartyState.DENIED, EventType.PARTY_DENIED, operator.actor, operator.connection
            )
            if conn is not None:
                conn.send(p.simple("denied"))
                conn.close_soon(CloseCode.DENIED)
            self._broadcast()

    async def _on_remove(self, operator: Participant, party_id: str) -> None:
        async with self._lock:
            part = self._target(party_id)
            if part.role is PartyRole.COURTROOM:
                raise ProtocolError(ErrorCode.INVALID_STATE, "the courtroom cannot be removed")
            revoked = await self._revoke_invitations(part.party_id)
            conn = part.connection
            part.connection = None
            await self._depart(
                part,
                PartyState.REMOVED,
                EventType.PARTY_REMOVED,
                operator.actor,
                operator.connection,
                invitations_revoked=revoked,
            )
            if conn is not None:
                conn.send(p.simple("removed"))
                conn.close_soon(CloseCode.REMOVED)
            self._broadcast()

    async def _on_court_mute(
        self, operator: Participant, party_id: str, kind: TrackKind, muted: bool
    ) -> None:
        async with self._lock:
            part = self._target(party_id)
            if not part.in_room:
                raise ProtocolError(ErrorCode.INVALID_STATE, "the participant is not in the hearing")
            if (kind in part.muted_by_court) == muted:
                return  # already so: a double click is not an error
            (part.muted_by_court.add if muted else part.muted_by_court.discard)(kind)
            self._apply_mutes(part)
            event = EventType.PARTY_MUTED if muted else EventType.PARTY_UNMUTED
            await self._record(event, operator.actor, part, operator.connection, kind=kind, by="court")
            if part.connection is not None:
                part.connection.send(p.simple("muted", kind=kind, muted=muted, by="court"))
            self._broadcast()

    async def _on_request_unmute(self, operator: Participant, party_id: str, kind: TrackKind) -> None:
        async with self._lock:
            part = self._target(party_id)
            if not part.in_room:
                raise ProtocolError(ErrorCode.INVALID_STATE, "the participant is not in the hearing")
            await self._record(
                EventType.UNMUTE_REQUESTED, operator.actor, part, operator.connection, kind=kind
            )
            if part.connection is not None:
                part.connection.send(p.simple("unmute_requested", kind=kind))

    async def _on_mute_self(self, part: Participant, kind: TrackKind, muted: bool) -> None:
        async with self._lock:
            if part.state is not PartyState.IN_HEARING:
                raise ProtocolError(ErrorCode.INVALID_STATE, "not in the hearing")
            if not muted and kind in part.muted_by_court:
                raise ProtocolError(ErrorCode.FORBIDDEN, f"the court has muted your {kind}")
            if (kind in part.muted_by_self) == muted:
                return
            (part.muted_by_self.add if muted else part.muted_by_self.discard)(kind)
            self._apply_mutes(part)
            event = EventType.PARTY_MUTED if muted else EventType.PARTY_UNMUTED
            await self._record(event, part.actor, part, part.connection, kind=kind, by="self")
            self._broadcast()

    async def _on_audio_only(self, part: Participant, audio_only: bool) -> None:
        async with self._lock:
            if part.audio_only == audio_only:
                return
            part.audio_only = audio_only
            if part.in_room:
                self._apply_mutes(part)
                event = EventType.PARTY_MUTED if audio_only else EventType.PARTY_UNMUTED
                await self._record(event, part.actor, part, part.connection, kind="video", by="audio_only")
            self._broadcast()

    async def end(self, operator: Participant | None) -> None:
        """End the hearing: everyone leaves, the status becomes ``ended`` and the media closes."""
        async with self._lock:
            check_transition(self.status, HearingStatus.ENDED)
            for part in list(self._participants.values()):
                self._cancel_grace(part)
                await self._set_state(
                    part, PartyState.LEFT, EventType.PARTY_LEFT, "system", None, reason="hearing_ended"
                )
            actor = operator.actor if operator is not None else "system"
            await self._set_status(
                HearingStatus.ENDED, EventType.HEARING_ENDED, actor, operator.connection if operator else None
            )
            await self._shutdown("hearing_ended", CloseCode.HEARING_ENDED)

    async def interrupt(self) -> None:
        """The server is stopping: a live hearing becomes ``interrupted`` and everyone is disconnected."""
        async with self._lock:
            if self.closed:
                return
            if self.status in MEDIA_STATUSES and self.status is not HearingStatus.INTERRUPTED:
                for part in list(self._participants.values()):
                    self._cancel_grace(part)
                    if part.state is not PartyState.DISCONNECTED:
                        await self._set_state(
                            part,
                            PartyState.DISCONNECTED,
                            EventType.PARTY_DISCONNECTED,
                            "system",
                            None,
                            reason="server_shutdown",
                        )
                await self._set_status(
                    HearingStatus.INTERRUPTED, EventType.HEARING_INTERRUPTED, "system", None
                )
            await self._shutdown(None, CloseCode.GOING_AWAY)

    async def _shutdown(self, farewell: str | None, code: int) -> None:
        """Close the media and every connection, and leave the registry (lock held)."""
        self.closed = True
        for part in self._participants.values():
            self._cancel_grace(part)
            if part.connection is not None:
                if farewell is not None:
                    part.connection.send(p.simple(farewell))
                part.connection.close_soon(code)
                part.connection = None
        self._participants.clear()
        if self._quality_task is not None:
            self._quality_task.cancel()
            self._quality_task = None
        if self._router is not None:
            router, self._router = self._router, None
            try:
                await router.close()
            except Exception:
                log.exception("closing the media of hearing %s failed", self.id)
        if self._recording is not None:
            recording, self._recording = self._recording, None
            try:
                await recording.stop("system", farewell or "interrupted")
            except Exception:
                log.exception("closing the recording of hearing %s failed", self.id)
        if self._on_closed is not None:
            self._on_closed(self)

    # --- media ------------------------------------------------------------------------------

    def _media(self) -> MediaRouter:
        if self._router is None:
            recording = self._recording_factory(self.hearing) if self._recording_factory is not None else None
            if recording is not None:
                recording.on_alert = self._alert_staff
                recording.on_change = self._broadcast
            settings = MediaSettings(
                host_addresses=list(self._config.ice_host_addresses),
                ice_servers=[{"urls": url} for url in self._config.ice_servers],
                video_codec=self._config.video_codec,
            )
            self._router = self._media_factory(settings, RoomMediaEvents(self), recording)
            self._recording = recording
            # Nothing is forwarded or recorded before the hearing starts or during a recess.
            self._router.set_paused(self.status is not HearingStatus.IN_SESSION)
            self._quality_task = asyncio.create_task(self._quality_loop())
        return self._router

    async def _on_publish(self, part: Participant, sdp: str) -> str:
        async with self._lock:
            if part.state is not PartyState.IN_HEARING:
                raise ProtocolError(
                    ErrorCode.INVALID_STATE, "media is allowed only once admitted to the hearing"
                )
            if self.status not in MEDIA_STATUSES:
                raise ProtocolError(ErrorCode.INVALID_STATE, "open the waiting room first")
            router = self._media()
            self._apply_mutes(part)
        try:
            answer = await router.publish(part.party_id, sdp)
        except MediaError as exc:
            raise ProtocolError(ErrorCode.MEDIA_ERROR, exc.message[:300], field="sdp") from exc
        async with self._lock:
            if self._participants.get(part.party_id) is not part or part.state is not PartyState.IN_HEARING:
                await self._leave_media(part, force=True)
                raise ProtocolError(ErrorCode.INVALID_STATE, "no longer in the hearing")
            part.published = True
            self._apply_mutes(part)
            return answer

    async def _on_subscribe_answer(self, part: Participant, sdp: str) -> None:
        router = self._router
        if part.state is not PartyState.IN_HEARING or router is None or not part.published:
            raise ProtocolError(ErrorCode.INVALID_STATE, "no subscribe offer is pending")
        try:
            await router.subscriber_answer(part.party_id, sdp)
        except MediaError as exc:
            raise ProtocolError(ErrorCode.MEDIA_ERROR, exc.message[:300], field="sdp") from exc

    def _apply_mutes(self, part: Participant) -> None:
        # The router keeps mutes across (re)publishing, so they are set before any media can flow.
        if self._router is None:
            return
        muted = part.muted
        for kind in KINDS:
            try:
                self._router.set_muted(part.party_id, kind, kind in muted)
            except MediaError:
                log.warning("could not set %s mute of %s", kind, part.party_id, exc_info=True)

    async def _leave_media(self, part: Participant, *, force: bool = False) -> None:
        if self._router is None or not (part.published or force):
            return
        part.published = False
        try:
            await self._router.leave(part.party_id)
        except MediaError:
            log.debug("media of %s already gone", part.party_id)

    def deliver_subscribe_offer(self, party_id: str, sdp: str, tracks: list[TrackMapping]) -> None:
        """Pass the media plane's subscribe offer to the participant's connection."""
        part = self._participants.get(party_id)
        if part is None or part.connection is None:
            return
        mapped = [{"mid": t.mid, "participant_id": t.participant_id, "kind": t.kind} for t in tracks]
        part.connection.send(p.simple("subscribe_offer", sdp=sdp, tracks=mapped))

    def media_state_changed(self, party_id: str, state: ConnectionState) -> None:
        """Record the participant's media connection state and show it to everyone."""
        part = self._participants.get(party_id)
        if part is not None and part.media_state != state:
            part.media_state = state
            self._broadcast()

    async def _quality_loop(self) -> None:
        while True:
            await asyncio.sleep(QUALITY_INTERVAL_S)
            staff = [
                q.connection for q in self._participants.values() if q.staff and q.connection is not None
            ]
            if not staff or self._router is None:
                continue
            try:
                stats = await self._router.stats()
            except Exception:
                log.warning("media stats of hearing %s failed", self.id, exc_info=True)
                continue
            message = p.simple(
                "quality",
                participants=[
                    {
                        "participant_id": s.participant_id,
                        "connection": s.state,
                        "rtt_ms": s.round_trip_ms,
                        "loss_pct": s.packet_loss_pct,
                        "inbound_kbps": s.inbound_kbps,
                        "outbound_kbps": s.outbound_kbps,
                    }
                    for s in stats
                ],
            )
            for conn in staff:
                conn.send(message)

    # --- persistence and events -------------------------------------------------------------

    async def _set_status(
        self, target: HearingStatus, event: EventType, actor: str, conn: Connection | None
    ) -> None:
        check_transition(self.status, target)
        if target is HearingStatus.IN_SESSION:
            self._media()  # the recording exists from the router's creation
            if self._recording is not None:
                try:
                    await self._recording.start(actor)
                except HearingError as exc:
                    raise ProtocolError(ErrorCode.RECORDING_UNAVAILABLE, exc.message) from exc
        now = utc_now()
        values: dict[str, Any] = {"status": target.value, "updated_at": now}
        if target is HearingStatus.IN_SESSION and self.hearing.started_at is None:
            values["started_at"] = now
        if target is HearingStatus.ENDED:
            values["ended_at"] = now
        async with self._db() as session:
            await session.execute(update(Hearing).where(Hearing.id == self.id).values(**values))
            await session.commit()
        for name, value in values.items():
            setattr(self.hearing, name, value)
        previous, self.status = self.status, target
        await self._record(event, actor, None, conn, previous_status=previous.value)
        if target is HearingStatus.RECESS and self._recording is not None:
            await self._recording.pause(actor)

    async def _set_state(
        self,
        part: Participant,
        state: PartyState,
        event: EventType,
        actor: str,
        conn: Connection | None,
        **details: Any,
    ) -> None:
        part.state = state
        # The confirmation log (on disk) is the record of truth and comes first: a database outage must
        # not lose the event, nor leave a disconnect half-done (no grace timer, media not released).
        await self._record(event, actor, part, conn, **details)
        try:
            async with self._db() as session:
                await session.execute(
                    update(Party).where(Party.id == part.party_id).values(state=state.value)
                )
                await session.commit()
        except (SQLAlchemyError, OSError) as exc:
            log.warning("party %s is %s but the database could not store it: %s", part.party_id, state, exc)
            self._alert_staff(
                "database_unavailable",
                "The database cannot be reached; the hearing goes on and every event is in its log.",
            )

    async def _revoke_invitations(self, party_id: str) -> int:
        async with self._db() as session:
            result = await session.execute(
                update(Invitation)
                .where(Invitation.party_id == party_id, Invitation.revoked_at.is_(None))
                .values(revoked_at=utc_now())
            )
            await session.commit()
            return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def _record(
        self, event: EventType, actor: str, part: Participant | None, conn: Connection | None, **details: Any
    ) -> None:
        entry: dict[str, Any] = {}
        if conn is not None:
            entry["ip"] = conn.client.ip
            entry["user_agent"] = conn.client.user_agent
        entry.update(details)
        await self._events.record(
            self.id, event, actor=actor, party_id=part.party_id if part else None, details=entry
        )

    # --- what each participant sees ----------------------------------------------------------

    def _recording_status(self) -> str:
        return self._recording.status if self._recording is not None else "off"

    def _alert_staff(self, code: str, message: str) -> None:
        """Tell every staff connection (the operator first of all) about a problem that needs action."""
        for part in self._participants.values():
            if part.connection is not None and part.staff:
                part.connection.send(p.simple("alert", code=code, message=message))
        self._broadcast()

    def _participant_view(self, part: Participant) -> dict[str, Any]:
        return {
            "id": part.party_id,
            "name": part.name,
            "role": part.role.value,
            "state": part.state.value,
            "muted": sorted(part.muted),
            "muted_by_court": sorted(part.muted_by_court),
            "audio_only": part.audio_only,
            "connection": part.media_state,
        }

    def snapshot_for(self, viewer: Participant) -> dict[str, Any]:
        """The ``state`` message as ``viewer`` may see it."""
        sees_room = viewer.in_room or viewer.staff
        message: dict[str, Any] = {
            "type": "state",
            "hearing": {"status": self.status.value, "recording": self._recording_status()},
            "you": {
                "participant_id": viewer.party_id,
                "state": viewer.state.value,
                "muted": sorted(viewer.muted),
                "muted_by_court": sorted(viewer.muted_by_court),
                "audio_only": viewer.audio_only,
            },
            "participants": [self._participant_view(q) for q in self._participants.values() if q.in_room]
            if sees_room
            else [],
        }
        if viewer.operator:
            message["waiting"] = [
                {"id": q.party_id, "name": q.name, "role": q.role.value, "state": q.state.value}
                for q in self._participants.values()
                if q.in_waiting_room
            ]
        return message

    def _broadcast(self) -> None:
        for part in self._participants.values():
            if part.connection is not None:
                part.connection.send(self.snapshot_for(part))

    def _hearing_message(self, part: Participant, notice: Notice | None) -> dict[str, Any]:
        hearing = self.hearing
        try:
            zone = ZoneInfo(self._config.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            zone = ZoneInfo("UTC")
        return p.simple(
            "hearing",
            hearing={
                "id": hearing.id,
                "case_number": hearing.case_number,
                "title": hearing.title,
                "court": hearing.court,
                "courtroom": hearing.courtroom,
                "scheduled_start": iso_z(hearing.scheduled_start),
                "scheduled_start_local": hearing.scheduled_start.astimezone(zone).isoformat(),
                "timezone": self._config.timezone,
                "duration_minutes": hearing.duration_minutes,
                "presiding_judge": hearing.presiding_judge,
                "status": self.status.value,
            },
            you={
                "participant_id": part.party_id,
                "role": part.role.value,
                "name": part.name,
                "state": part.state.value,
                "operator": part.operator,
            },
            notice=None
            if notice is None
            else {
                "language": notice.language,
                "text": notice.text,
                "sha256": notice.sha256,
                "languages": list(p.NOTICE_LANGUAGES),
            },
            media={
                "video_codec": self._config.video_codec,
                "ice_servers": [{"urls": url} for url in self._config.ice_servers],
            },
            limits={
                "max_message_bytes": self._config.ws_max_message_bytes,
                "messages_per_s": self._config.ws_messages_per_s,
            },
        )


__all__ = [
    "ClientInfo",
    "Connection",
    "Entrant",
    "LiveHearing",
    "MediaFactory",
    "Participant",
    "RoomClosed",
    "RecordingFactory",
    "HearingRecording",
]
