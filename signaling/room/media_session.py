"""The media and the recording of one live hearing, as the room drives them.

The room creates them when the first participant needs media, pauses them outside the session, and
closes them with the hearing; the media plane's notices come back through :class:`RoomMediaEvents`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from functools import partial
from typing import Protocol

from hearing_server.domain.hearing import HearingStatus
from hearing_server.domain.party import PartyRole
from media.contract import (
    ConnectionState,
    LinkQuality,
    MediaEvents,
    MediaRouter,
    MediaSettings,
    PacketSink,
    TrackMapping,
)
from media.errors import MediaError
from signaling import protocol as p
from signaling.room.participant import KINDS, Connection, Participant
from signaling.room.store import RoomSettings

log = logging.getLogger(__name__)

QUALITY_INTERVAL_S = 2.0


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


MediaFactory = Callable[[MediaSettings, MediaEvents, PacketSink | None], MediaRouter]
RecordingFactory = Callable[[str], HearingRecording | None]  # hearing id → its recording


class RoomSide(Protocol):
    """What the media session needs of its room."""

    def participant(self, party_id: str) -> Participant | None:
        """The live participant of ``party_id``."""

    def staff_connections(self) -> list[Connection]:
        """The connections of the staff in the hearing."""

    def broadcast(self) -> None:
        """Send everyone their state snapshot."""

    def alert_staff(self, code: str, message: str) -> None:
        """Tell every staff connection about a problem that needs action."""


class RoomMediaEvents:
    """What the media plane tells the room, delivered to the participants concerned."""

    def __init__(self, room: RoomSide) -> None:
        self._room = room

    async def subscriber_offer(self, participant_id: str, sdp: str, tracks: list[TrackMapping]) -> None:
        """Send the participant the server's (re)negotiation offer for their subscribe connection."""
        part = self._room.participant(participant_id)
        if part is None or part.connection is None:
            return
        mapped = [{"mid": t.mid, "participant_id": t.participant_id, "kind": t.kind} for t in tracks]
        part.connection.send(p.simple("subscribe_offer", sdp=sdp, tracks=mapped))

    def connection_state_changed(self, participant_id: str, state: ConnectionState) -> None:
        """Record the participant's media connection state and show it to everyone."""
        part = self._room.participant(participant_id)
        if part is not None and part.media_state != state:
            part.media_state = state
            self._room.broadcast()

    def link_quality_changed(self, participant_id: str, quality: LinkQuality) -> None:
        """Tell the participant that video to them is paused (or back), and warn the staff."""
        message = p.simple(
            "link_quality",
            participant_id=participant_id,
            video_paused=quality.video_paused,
            all_video_paused=quality.all_video_paused,
            loss_pct=quality.loss_pct,
            rtt_ms=quality.round_trip_ms,
            kbps=quality.sent_kbps,
        )
        part = self._room.participant(participant_id)
        if part is not None and part.connection is not None:
            part.connection.send(message)
        for conn in self._room.staff_connections():
            if part is None or conn is not part.connection:
                conn.send(message)


class MediaSession:
    """The forwarding and the recording of one hearing, and the quality reports for its staff."""

    def __init__(
        self,
        hearing_id: str,
        settings: RoomSettings,
        room: RoomSide,
        media_factory: MediaFactory,
        recording_factory: RecordingFactory | None,
    ) -> None:
        self._hearing_id = hearing_id
        self._settings = settings
        self._room = room
        self._media_factory = media_factory
        self._recording_factory = recording_factory
        self.router: MediaRouter | None = None
        self.recording: HearingRecording | None = None
        self._quality_task: asyncio.Task[None] | None = None

    @property
    def host(self) -> str | None:
        """Which media worker hosts the hearing (``None`` for media in this process or none yet)."""
        host = getattr(self.router, "host", None)
        return host if isinstance(host, str) else None

    @property
    def recording_status(self) -> str:
        """The recording indicator: ``off``, ``recording``, ``paused`` or ``failed``."""
        return self.recording.status if self.recording is not None else "off"

    def ensure(self, status: HearingStatus) -> MediaRouter:
        """The hearing's router (and recording), created on first use."""
        if self.router is None:
            recording = self._recording_factory(self._hearing_id) if self._recording_factory else None
            if recording is not None:
                recording.on_alert = self._room.alert_staff
                recording.on_change = self._room.broadcast
            settings = MediaSettings(
                hearing_id=self._hearing_id,
                host_addresses=list(self._settings.ice_host_addresses),
                ice_servers=[{"urls": url} for url in self._settings.ice_servers],
                ice_servers_source=partial(self._settings.ice_servers_for, None)
                if self._settings.ice_servers_for
                else None,
                video_codec=self._settings.video_codec,
            )
            self.router = self._media_factory(settings, RoomMediaEvents(self._room), recording)
            self.recording = recording
            # Nothing is forwarded or recorded before the hearing starts or during a recess.
            self.router.set_paused(status is not HearingStatus.IN_SESSION)
            self._quality_task = asyncio.create_task(self._quality_loop())
        return self.router

    def follow_status(self, status: HearingStatus) -> None:
        """Forward media only while the hearing is in session."""
        if self.router is not None:
            self.router.set_paused(status is not HearingStatus.IN_SESSION)

    def apply_mutes(self, part: Participant) -> None:
        """Tell the router what not to forward of ``part`` (it keeps mutes across (re)publishing), and
        that the courtroom's video is what congested subscribers keep longest."""
        if self.router is None:
            return
        if part.role is PartyRole.COURTROOM:
            self.router.set_video_priority(part.party_id)
        muted = part.muted
        for kind in KINDS:
            try:
                self.router.set_muted(part.party_id, kind, kind in muted)
            except MediaError as exc:
                log.warning("could not set %s mute of %s: %s", kind, part.party_id, exc)

    async def leave(self, part: Participant, *, force: bool = False) -> None:
        """Close the participant's media connections."""
        if self.router is None or not (part.published or force):
            return
        part.published = False
        try:
            await self.router.leave(part.party_id)
        except MediaError:
            log.debug("media of %s already gone", part.party_id)

    async def close(self, reason: str) -> None:
        """Close every connection and stop the recording durably."""
        if self._quality_task is not None:
            self._quality_task.cancel()
            self._quality_task = None
        if self.router is not None:
            router, self.router = self.router, None
            try:
                await router.close()
            except Exception:
                log.exception("closing the media of hearing %s failed", self._hearing_id)
        if self.recording is not None:
            recording, self.recording = self.recording, None
            try:
                await recording.stop("system", reason)
            except Exception:
                log.exception("closing the recording of hearing %s failed", self._hearing_id)

    async def _quality_loop(self) -> None:
        while True:
            await asyncio.sleep(QUALITY_INTERVAL_S)
            staff = self._room.staff_connections()
            if not staff or self.router is None:
                continue
            try:
                stats = await self.router.stats()
            except MediaError as exc:  # e.g. its media worker died while asked: the hearing is interrupted
                log.warning("media stats of hearing %s failed: %s", self._hearing_id, exc)
                continue
            except Exception:
                log.warning("media stats of hearing %s failed", self._hearing_id, exc_info=True)
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
                        "downlink_loss_pct": s.downlink_loss_pct,
                        "video_paused": s.video_paused,
                    }
                    for s in stats
                ],
            )
            for conn in staff:
                conn.send(message)
