"""The media of one live hearing (mediasoup's Router): participants' connections and tracks.

Ownership and the close cascade (as mediasoup's ``doc/closures.md``):

    Router ──► participant ──► PublishConnection (Ingress) ──► PublishedTrack (per kind) ──► PacketSink
                          └──► SubscribeConnection (Egress) ──► DownTrack (per slot)

``Router.close()`` ends every participant; ``leave()`` ends one; a second ``publish()`` for a
participant (reconnect) replaces both of its connections.  An ended published track leaves
every other participant's subscribe connection, which renegotiates.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from .aiortc_adapter import check_aiortc_version, install_host_addresses, install_turn_release_limit
from .codecs import hearing_codec
from .contract import (
    ConnectionQuality,
    ConnectionState,
    LinkQuality,
    MediaEvents,
    MediaSettings,
    PacketSink,
    TrackInfo,
    TrackKind,
)
from .errors import MediaError, MediaErrorCode
from .negotiation import KINDS, PublishConnection, SubscribeConnection
from .published_track import PublishedTrack
from .quality import QualityMeter
from .stats import MediaStats

logger = logging.getLogger(__name__)


@dataclass
class _Participant:
    """One participant's media: its two connections and what it publishes."""

    participant_id: str
    publish: PublishConnection | None = None
    subscribe: SubscribeConnection | None = None
    tracks: dict[TrackKind, PublishedTrack] = field(default_factory=dict)
    generation: int = 0
    state: ConnectionState = "new"
    meter: QualityMeter = field(default_factory=QualityMeter)


def _combined_state(
    publish: PublishConnection | None, subscribe: SubscribeConnection | None
) -> ConnectionState:
    states = [leg.state if leg is not None else "closed" for leg in (publish, subscribe)]
    if "failed" in states:
        return "failed"
    if "closed" in states:
        return "disconnected"  # a leg dropped; the client reconnects with a new publish()
    if all(state == "connected" for state in states):
        return "connected"
    return "connecting"


class Router:
    """Forwards the RTP packets of one hearing between its participants and to the recorder.

    Implements :class:`media.contract.MediaRouter`.  Installs the configured ICE
    host addresses process-wide (see :func:`aiortc_adapter.install_host_addresses`), and
    the bound on TURN allocation deletion (:func:`aiortc_adapter.install_turn_release_limit`).
    """

    def __init__(
        self,
        settings: MediaSettings,
        events: MediaEvents,
        sink: PacketSink | None = None,
        stats: MediaStats | None = None,
    ) -> None:
        check_aiortc_version()
        for kind in KINDS:
            hearing_codec(settings, kind)  # refuse an unsendable codec now, not at the first join
        install_host_addresses(settings)
        install_turn_release_limit()
        self._settings = settings
        self._events = events
        self._sink = sink
        self.media_stats = stats or MediaStats()
        self._participants: dict[str, _Participant] = {}
        self._muted: dict[str, set[TrackKind]] = {}
        self._paused = False
        self._priority: str | None = None  # whose video congested subscribers keep longest
        self._closed = False
        self._cleanups: set[asyncio.Task[None]] = set()
        # one lock per participant id serialises its publish, leave and clean-ups
        self._locks: dict[str, asyncio.Lock] = {}

    @property
    def participant_ids(self) -> list[str]:
        """Participants with media connections (live or dropped, until they leave)."""
        return list(self._participants)

    async def publish(self, participant_id: str, offer_sdp: str) -> str:
        """Accept the participant's publish offer and return the answer; replaces earlier connections.

        The participant also gets a new subscribe connection, offered through
        ``MediaEvents.subscriber_offer``.  Raises :class:`MediaError` for unusable SDP, leaving
        any earlier connections of the participant untouched.
        """
        self._check_open()
        async with self._lock(participant_id):
            self._check_open()
            participant = self._participants.get(participant_id) or _Participant(participant_id)
            connection = PublishConnection(
                self._settings, self.media_stats, lambda: self._leg_changed(participant_id)
            )
            try:
                answer = await connection.answer(offer_sdp)
                self._check_open()  # the hearing may have ended meanwhile
            except BaseException:
                await connection.close()
                raise
            self._participants[participant_id] = participant
            old_publish, old_subscribe = participant.publish, participant.subscribe
            old_tracks = list(participant.tracks.values())
            participant.generation += 1
            participant.meter = QualityMeter()
            participant.tracks = {}
            participant.publish = connection
            participant.subscribe = SubscribeConnection(
                participant_id,
                self._settings,
                self._events,
                self.media_stats,
                lambda: self._leg_changed(participant_id),
            )
            participant.subscribe.egress.priority_participant = self._priority
            for other in self._participants.values():
                if other is not participant:
                    for track in other.tracks.values():
                        if track.live:
                            participant.subscribe.subscribe(track)
            for kind in connection.negotiated:
                codec = hearing_codec(self._settings, kind)
                info = TrackInfo(
                    track_id=f"{participant_id}/{kind}/{participant.generation}",
                    participant_id=participant_id,
                    kind=kind,
                    codec=codec.name,
                    clock_rate=codec.clock_rate,
                    channels=codec.channels,
                )
                track = PublishedTrack(
                    info,
                    connection.ingress.tap.send_rtcp,
                    connection.ingress.rtcp_ssrc,
                    self._sink,
                    self.media_stats,
                    self._settings.keyframe_min_interval_s,
                    on_live=self._track_live,
                    on_ended=self._track_ended,
                )
                track.set_forwarding(self._forwarding(participant_id, kind))
                participant.tracks[kind] = track
                connection.attach(track)
            # the earlier connections go only now, so the participant never looks dropped
            for track in old_tracks:
                track.stop()
            if old_subscribe is not None:
                await old_subscribe.close()
                if old_subscribe.egress.quality.video_paused:
                    self._link_changed(
                        participant_id, LinkQuality(None, None, 0.0, False, False)
                    )  # starts afresh
            if old_publish is not None:
                await old_publish.close()
            self._report_state(participant)
            return answer

    async def subscriber_answer(self, participant_id: str, answer_sdp: str) -> None:
        """Complete the server-offered negotiation of the participant's subscribe connection."""
        self._check_open()
        participant = self._participants.get(participant_id)
        if participant is None or participant.subscribe is None:
            raise MediaError(
                MediaErrorCode.UNKNOWN_PARTICIPANT, f"no subscribe connection for {participant_id!r}"
            )
        await participant.subscribe.accept_answer(answer_sdp)

    def set_muted(self, participant_id: str, kind: TrackKind, muted: bool) -> None:
        """Stop (or restart) forwarding and recording the participant's audio or video.

        Holds across reconnects; forgotten when the participant leaves.
        """
        if kind not in KINDS:
            raise MediaError(MediaErrorCode.MEDIA_UNSUPPORTED, f"unknown media kind {kind!r}")
        kinds = self._muted.setdefault(participant_id, set())
        if muted:
            kinds.add(kind)
        else:
            kinds.discard(kind)
        self._apply_forwarding()

    def set_paused(self, paused: bool) -> None:
        """Recess: forward and record nothing while paused; keyframes are requested on resume."""
        self._paused = paused
        self._apply_forwarding()

    def set_video_priority(self, participant_id: str | None) -> None:
        """Whose video a congested subscriber keeps longest (the courtroom's); None: nobody's."""
        self._priority = participant_id
        for participant in self._participants.values():
            if participant.subscribe is not None:
                participant.subscribe.egress.priority_participant = participant_id
                participant.subscribe.egress.apply_video_level()

    async def leave(self, participant_id: str) -> None:
        """Close the participant's connections; their tracks end for everyone else."""
        self._muted.pop(participant_id, None)
        async with self._lock(participant_id):
            participant = self._participants.pop(participant_id, None)
            if participant is None:
                return
            await self._drop_legs(participant)
            self._set_state(participant, "closed")

    async def stats(self) -> list[ConnectionQuality]:
        """Current connection quality of every participant."""
        return [
            await participant.meter.measure(
                participant.participant_id,
                participant.state,
                participant.publish,
                participant.subscribe,
            )
            for participant in list(self._participants.values())
        ]

    async def close(self) -> None:
        """End the hearing's media: close every connection and end every track."""
        if self._closed:
            return
        self._closed = True
        participants = list(self._participants.values())
        # all at once: closing a connection can wait on the network (ICE, a TURN relay's answer)
        results = await asyncio.gather(
            *(self._close_participant(p) for p in participants), return_exceptions=True
        )
        self._participants.clear()
        for task in list(self._cleanups):
            task.cancel()
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def _close_participant(self, participant: _Participant) -> None:
        async with self._lock(participant.participant_id):
            await self._drop_legs(participant)
            self._set_state(participant, "closed")

    # --- internals ---------------------------------------------------------------------------

    def _lock(self, participant_id: str) -> asyncio.Lock:
        return self._locks.setdefault(participant_id, asyncio.Lock())

    def _check_open(self) -> None:
        if self._closed:
            raise MediaError(MediaErrorCode.ROUTER_CLOSED, "the hearing's media has ended")

    def _forwarding(self, participant_id: str, kind: TrackKind) -> bool:
        return not self._paused and kind not in self._muted.get(participant_id, set())

    def _apply_forwarding(self) -> None:
        for participant in self._participants.values():
            for kind, track in participant.tracks.items():
                track.set_forwarding(self._forwarding(participant.participant_id, kind))

    def _owner(self, track: PublishedTrack) -> _Participant | None:
        participant = self._participants.get(track.info.participant_id)
        if participant is not None and participant.tracks.get(track.info.kind) is track:
            return participant
        return None

    def _track_live(self, track: PublishedTrack) -> None:
        if self._owner(track) is None:
            return
        for participant in self._participants.values():
            if participant.participant_id != track.info.participant_id and participant.subscribe:
                participant.subscribe.subscribe(track)

    def _track_ended(self, track: PublishedTrack) -> None:
        owner = self._owner(track)
        if owner is not None:
            del owner.tracks[track.info.kind]
        if self._closed:
            return
        for participant in self._participants.values():
            if participant.subscribe is not None:
                participant.subscribe.unsubscribe(track)

    async def _drop_legs(self, participant: _Participant) -> None:
        """Close both connections of a participant and end its tracks."""
        publish, subscribe = participant.publish, participant.subscribe
        participant.publish = participant.subscribe = None
        for track in list(participant.tracks.values()):
            track.stop()
        participant.tracks.clear()
        await asyncio.gather(*(leg.close() for leg in (subscribe, publish) if leg is not None))

    def _leg_changed(self, participant_id: str) -> None:
        participant = self._participants.get(participant_id)
        if participant is None:
            return
        self._report_state(participant)
        dead = ("failed", "closed")
        if participant.publish is not None and participant.publish.state in dead:
            self._spawn(self._drop_publish(participant, participant.publish))
        if participant.subscribe is not None and participant.subscribe.state in dead:
            self._spawn(self._drop_subscribe(participant, participant.subscribe))

    async def _drop_publish(self, participant: _Participant, connection: PublishConnection) -> None:
        async with self._lock(participant.participant_id):
            if participant.publish is not connection:
                return
            participant.publish = None
            for track in list(participant.tracks.values()):
                track.stop()
            participant.tracks.clear()
            await connection.close()
            self._report_state(participant)

    async def _drop_subscribe(self, participant: _Participant, connection: SubscribeConnection) -> None:
        async with self._lock(participant.participant_id):
            if participant.subscribe is not connection:
                return
            participant.subscribe = None
            await connection.close()
            if connection.egress.quality.video_paused:  # the next connection starts with all video
                self._link_changed(participant.participant_id, LinkQuality(None, None, 0.0, False, False))
            self._report_state(participant)

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._cleanups.add(task)
        task.add_done_callback(self._cleanups.discard)

    def _report_state(self, participant: _Participant) -> None:
        if self._participants.get(participant.participant_id) is participant:
            self._set_state(participant, _combined_state(participant.publish, participant.subscribe))

    def _link_changed(self, participant_id: str, quality: LinkQuality) -> None:
        try:
            self._events.link_quality_changed(participant_id, quality)
        except Exception:
            logger.exception("link_quality_changed handler failed for %s", participant_id)

    def _set_state(self, participant: _Participant, state: ConnectionState) -> None:
        if state == participant.state:
            return
        participant.state = state
        try:
            self._events.connection_state_changed(participant.participant_id, state)
        except Exception:
            logger.exception("connection_state_changed handler failed for %s", participant.participant_id)
