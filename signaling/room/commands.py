"""What participants may do in a live hearing: each signaling command checked and carried out.

Operator commands (admit, mute, recess, end…) need the courtroom seat; every change is logged through
the room and shown to everyone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hearing_server.domain.events import EventType
from hearing_server.domain.hearing import HearingStatus
from hearing_server.domain.party import PartyRole, PartyState
from media.contract import TrackKind
from media.errors import MediaError
from signaling import protocol as p
from signaling.protocol import CloseCode, ErrorCode, ProtocolError
from signaling.room import readmission
from signaling.room.participant import MEDIA_STATUSES, Connection, Participant

if TYPE_CHECKING:  # the room owns its commands
    from signaling.room.hearing import LiveHearing


class RoomCommands:
    """Carries out the commands of one live hearing's participants."""

    def __init__(self, room: LiveHearing) -> None:
        self._room = room

    async def handle(
        self, part: Participant, conn: Connection, message: p.ClientMessage
    ) -> dict[str, Any] | None:
        """Carry out one client message for ``part``; return the direct reply, if any."""
        room = self._room
        if part.connection is not conn or room.participants.get(part.party_id) is not part:
            raise ProtocolError(ErrorCode.INVALID_STATE, "this connection no longer holds a seat")
        if type(message) in p.OPERATOR_COMMANDS and not part.operator:
            raise ProtocolError(ErrorCode.FORBIDDEN, "only the courtroom operator may do this")
        match message:
            case p.Ping():
                return p.with_ref(p.simple("pong"), message.ref)
            case p.Join():
                raise ProtocolError(ErrorCode.ALREADY_JOINED, "this connection has already joined")
            case p.ShowNotice():
                return p.with_ref(await self._show_notice(part, message.language), message.ref)
            case p.ConfirmNotice():
                await self._confirm_notice(part, message.language, message.notice_sha256)
            case p.Ready():
                await self._ready(part)
            case p.PublishOffer():
                answer = await self._publish(part, message.sdp)
                return p.with_ref(p.simple("publish_answer", sdp=answer), message.ref)
            case p.SubscribeAnswer():
                await self._subscribe_answer(part, message.sdp)
            case p.MuteSelf():
                await self._mute_self(part, message.kind, message.muted)
            case p.SetAudioOnly():
                await self._audio_only(part, message.audio_only)
            case p.Leave():
                await self._leave(part)
            case p.OpenWaitingRoom():
                await self._status(part, HearingStatus.OPEN, EventType.WAITING_ROOM_OPENED)
            case p.Start():
                await self._status(
                    part,
                    HearingStatus.IN_SESSION,
                    EventType.HEARING_STARTED,
                    require=frozenset({HearingStatus.OPEN, HearingStatus.INTERRUPTED}),
                )
            case p.Recess():
                await self._status(
                    part,
                    HearingStatus.RECESS,
                    EventType.RECESS_CALLED,
                    require=frozenset({HearingStatus.IN_SESSION}),
                )
            case p.Resume():
                await self._status(
                    part,
                    HearingStatus.IN_SESSION,
                    EventType.HEARING_RESUMED,
                    require=frozenset({HearingStatus.RECESS}),
                )
            case p.Admit():
                await self._admit(part, message.party_id)
            case p.AdmitReturning():
                returners = readmission.waiting_returners(room.participants.values())
                await readmission.admit_all_returning(returners, lambda pid: self._admit(part, pid))
            case p.Deny():
                await self._deny(part, message.party_id)
            case p.Mute():
                await self._court_mute(part, message.party_id, message.kind, True)
            case p.Unmute():
                await self._court_mute(part, message.party_id, message.kind, False)
            case p.RequestUnmute():
                await self._request_unmute(part, message.party_id, message.kind)
            case p.Remove():
                await self._remove(part, message.party_id)
            case p.End():
                await room.end(part)
            case _:
                raise ProtocolError(ErrorCode.UNKNOWN_TYPE, "unknown message type")
        return None

    def _target(self, party_id: str) -> Participant:
        part = self._room.participants.get(party_id)
        if part is None:
            raise ProtocolError(ErrorCode.NOT_FOUND, "no such participant in this hearing", field="party_id")
        return part

    # --- the party's way in ---------------------------------------------------------------------

    async def _show_notice(self, part: Participant, language: str) -> dict[str, Any]:
        async with self._room.lock:
            if part.state is not PartyState.LINK_OPENED:
                raise ProtocolError(ErrorCode.INVALID_STATE, "the notice has already been confirmed")
            notice = await self._room.show_notice(part, language)
            return p.simple("notice", language=notice.language, text=notice.text, sha256=notice.sha256)

    async def _confirm_notice(self, part: Participant, language: str, sha256: str) -> None:
        room = self._room
        async with room.lock:
            if part.state is not PartyState.LINK_OPENED:
                raise ProtocolError(ErrorCode.INVALID_STATE, "there is no notice waiting for confirmation")
            if part.notices.get(language) != sha256:
                raise ProtocolError(
                    ErrorCode.NOTICE_MISMATCH, "this is not the notice that was shown", field="notice_sha256"
                )
            await room.set_state(
                part,
                PartyState.CONFIRMED,
                EventType.NOTICE_CONFIRMED,
                part.actor,
                part.connection,
                language=language,
                notice_sha256=sha256,
            )
            room.broadcast()

    async def _ready(self, part: Participant) -> None:
        room = self._room
        async with room.lock:
            if part.state is not PartyState.CONFIRMED:
                raise ProtocolError(ErrorCode.INVALID_STATE, "confirm the recording notice first")
            await room.set_state(
                part, PartyState.WAITING, EventType.PARTY_WAITING, part.actor, part.connection
            )
            room.broadcast()

    async def _leave(self, part: Participant) -> None:
        room = self._room
        async with room.lock:
            conn = part.connection
            part.connection = None
            await room.depart(part, PartyState.LEFT, EventType.PARTY_LEFT, part.actor, conn, reason="left")
            if conn is not None:
                conn.close_soon(CloseCode.LEFT)
            room.broadcast()
            await room.release_if_idle_locked()

    # --- media ------------------------------------------------------------------------------------

    async def _publish(self, part: Participant, sdp: str) -> str:
        room = self._room
        async with room.lock:
            if part.state is not PartyState.IN_HEARING:
                raise ProtocolError(
                    ErrorCode.INVALID_STATE, "media is allowed only once admitted to the hearing"
                )
            if room.status not in MEDIA_STATUSES:
                raise ProtocolError(ErrorCode.INVALID_STATE, "open the waiting room first")
            router = room.media.ensure(room.status)
            room.media.apply_mutes(part)
        try:
            answer = await router.publish(part.party_id, sdp)
        except MediaError as exc:
            raise ProtocolError(ErrorCode.MEDIA_ERROR, exc.message[:300], field="sdp") from exc
        async with room.lock:
            if room.participants.get(part.party_id) is not part or part.state is not PartyState.IN_HEARING:
                await room.media.leave(part, force=True)
                raise ProtocolError(ErrorCode.INVALID_STATE, "no longer in the hearing")
            part.published = True
            room.media.apply_mutes(part)
            return answer

    async def _subscribe_answer(self, part: Participant, sdp: str) -> None:
        router = self._room.media.router
        if part.state is not PartyState.IN_HEARING or router is None or not part.published:
            raise ProtocolError(ErrorCode.INVALID_STATE, "no subscribe offer is pending")
        try:
            await router.subscriber_answer(part.party_id, sdp)
        except MediaError as exc:
            raise ProtocolError(ErrorCode.MEDIA_ERROR, exc.message[:300], field="sdp") from exc

    async def _mute_self(self, part: Participant, kind: TrackKind, muted: bool) -> None:
        room = self._room
        async with room.lock:
            if part.state is not PartyState.IN_HEARING:
                raise ProtocolError(ErrorCode.INVALID_STATE, "not in the hearing")
            if not muted and kind in part.muted_by_court:
                raise ProtocolError(ErrorCode.FORBIDDEN, f"the court has muted your {kind}")
            if (kind in part.muted_by_self) == muted:
                return
            (part.muted_by_self.add if muted else part.muted_by_self.discard)(kind)
            room.media.apply_mutes(part)
            event = EventType.PARTY_MUTED if muted else EventType.PARTY_UNMUTED
            await room.record(event, part.actor, part, part.connection, kind=kind, by="self")
            room.broadcast()

    async def _audio_only(self, part: Participant, audio_only: bool) -> None:
        room = self._room
        async with room.lock:
            if part.audio_only == audio_only:
                return
            part.audio_only = audio_only
            if part.in_room:
                room.media.apply_mutes(part)
                event = EventType.PARTY_MUTED if audio_only else EventType.PARTY_UNMUTED
                await room.record(event, part.actor, part, part.connection, kind="video", by="audio_only")
            room.broadcast()

    # --- the operator's controls -------------------------------------------------------------------

    async def _status(
        self,
        operator: Participant,
        target: HearingStatus,
        event: EventType,
        *,
        require: frozenset[HearingStatus] | None = None,
    ) -> None:
        room = self._room
        async with room.lock:
            if require is not None and room.status not in require:
                raise ProtocolError(ErrorCode.INVALID_STATE, f"the hearing is {room.status.value}")
            await room.set_status(target, event, operator.actor, operator.connection)
            room.media.follow_status(room.status)
            room.broadcast()

    async def _admit(self, operator: Participant, party_id: str) -> None:
        room = self._room
        async with room.lock:
            part = self._target(party_id)
            if part.state is not PartyState.WAITING:
                raise ProtocolError(
                    ErrorCode.INVALID_STATE, f"the participant is {part.state.value}, not waiting"
                )
            await room.set_state(
                part, PartyState.IN_HEARING, EventType.PARTY_ADMITTED, operator.actor, operator.connection
            )
            await room.record(EventType.PARTY_JOINED, part.actor, part, part.connection)
            room.broadcast()

    async def _deny(self, operator: Participant, party_id: str) -> None:
        room = self._room
        async with room.lock:
            part = self._target(party_id)
            if not part.in_waiting_room:
                raise ProtocolError(ErrorCode.INVALID_STATE, f"the participant is {part.state.value}")
            conn = part.connection
            part.connection = None
            await room.depart(
                part, PartyState.DENIED, EventType.PARTY_DENIED, operator.actor, operator.connection
            )
            if conn is not None:
                conn.send(p.simple("denied"))
                conn.close_soon(CloseCode.DENIED)
            room.broadcast()

    async def _remove(self, operator: Participant, party_id: str) -> None:
        room = self._room
        async with room.lock:
            part = self._target(party_id)
            if part.role is PartyRole.COURTROOM:
                raise ProtocolError(ErrorCode.INVALID_STATE, "the courtroom cannot be removed")
            revoked = await room.store.revoke_invitations(part.party_id)
            conn = part.connection
            part.connection = None
            await room.depart(
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
            room.broadcast()

    async def _court_mute(self, operator: Participant, party_id: str, kind: TrackKind, muted: bool) -> None:
        room = self._room
        async with room.lock:
            part = self._target(party_id)
            if not part.in_room:
                raise ProtocolError(ErrorCode.INVALID_STATE, "the participant is not in the hearing")
            if (kind in part.muted_by_court) == muted:
                return  # already so: a double click is not an error
            (part.muted_by_court.add if muted else part.muted_by_court.discard)(kind)
            room.media.apply_mutes(part)
            event = EventType.PARTY_MUTED if muted else EventType.PARTY_UNMUTED
            await room.record(event, operator.actor, part, operator.connection, kind=kind, by="court")
            if part.connection is not None:
                part.connection.send(p.simple("muted", kind=kind, muted=muted, by="court"))
            room.broadcast()

    async def _request_unmute(self, operator: Participant, party_id: str, kind: TrackKind) -> None:
        room = self._room
        async with room.lock:
            part = self._target(party_id)
            if not part.in_room:
                raise ProtocolError(ErrorCode.INVALID_STATE, "the participant is not in the hearing")
            await room.record(
                EventType.UNMUTE_REQUESTED, operator.actor, part, operator.connection, kind=kind
            )
            if part.connection is not None:
                part.connection.send(p.simple("unmute_requested", kind=kind))
