"""Who offers: two peer connections per participant, as LiveKit does, so offers never collide.

* :class:`PublishConnection` — the client offers its audio/video (sendonly), the server answers.
* :class:`SubscribeConnection` — the server offers the other participants' tracks and
  renegotiates whenever one appears or goes; one offer is outstanding at a time and a change
  made meanwhile is offered after the answer.  m-lines cannot be removed, so a freed
  transceiver turns ``inactive`` and is reused for the next track of its kind.

This is the only module that creates offers and answers; replacing the two-connection
scheme (e.g. by one connection with server-side renegotiation) stays within it.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from aiortc import RTCRtpTransceiver, RTCSessionDescription
from aiortc import sdp as aiortc_sdp
from aiortc.exceptions import OperationError
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from .aiortc_adapter import Negotiated, sender_ssrcs, silence_sender_rtcp
from .codecs import hearing_codec, with_opus_fec
from .contract import ConnectionState, MediaEvents, MediaSettings, TrackKind, TrackMapping
from .downtrack import DownTrack, LegParameters
from .egress import Egress
from .errors import MediaError, MediaErrorCode
from .ingress import Ingress
from .peer import create_peer_connection
from .published_track import PublishedTrack
from .stats import MediaStats

logger = logging.getLogger(__name__)

MAX_SDP_CHARS = 64 * 1024
_SDP_LINE = re.compile(r"^[a-z]=[^\x00]*$")
KINDS: tuple[TrackKind, ...] = ("audio", "video")


def parse_sdp(text: object) -> aiortc_sdp.SessionDescription:
    """Parse SDP from a client, refusing anything unusable with a :class:`MediaError`."""
    if not isinstance(text, str) or not text.strip():
        raise MediaError(MediaErrorCode.SDP_INVALID, "SDP must be a non-empty string")
    if len(text) > MAX_SDP_CHARS:
        raise MediaError(MediaErrorCode.SDP_INVALID, f"SDP longer than {MAX_SDP_CHARS} characters")
    lines = [line for line in text.replace("\r\n", "\n").split("\n") if line]
    if lines[0] != "v=0" or not all(_SDP_LINE.match(line) for line in lines):
        raise MediaError(MediaErrorCode.SDP_INVALID, "not SDP: every line must be <type>=<value>, first v=0")
    try:
        description = aiortc_sdp.SessionDescription.parse(text)
    except Exception as exc:  # the parser raises whatever the malformed text trips over
        raise MediaError(MediaErrorCode.SDP_INVALID, f"unreadable SDP: {exc!r}") from exc
    for media in description.media:
        if media.kind in KINDS and (media.ice is None or media.dtls is None):
            raise MediaError(MediaErrorCode.SDP_INVALID, "m-line without ICE or DTLS parameters")
    return description


def with_start_bitrate(sdp: str, payload_types: list[int], start_bps: int, max_bps: int) -> str:
    """The answer with Chrome's bitrate hints on the video codec's format parameters.

    ``x-google-start-bitrate`` / ``x-google-max-bitrate`` (kbit/s) are read by Chrome from the
    remote description; other browsers and aiortc ignore them.
    """
    if not payload_types or start_bps <= 0:
        return sdp
    hints = f"x-google-start-bitrate={start_bps // 1000};x-google-max-bitrate={max_bps // 1000}"
    wanted = {str(payload_type) for payload_type in payload_types}
    lines = sdp.split("\r\n")
    with_fmtp = {line[len("a=fmtp:") :].split(" ", 1)[0] for line in lines if line.startswith("a=fmtp:")}
    out: list[str] = []
    for line in lines:
        if line.startswith("a=fmtp:") and line[len("a=fmtp:") :].split(" ", 1)[0] in wanted:
            out.append(f"{line};{hints}")
            continue
        out.append(line)
        if line.startswith("a=rtpmap:"):
            payload_type = line[len("a=rtpmap:") :].split(" ", 1)[0]
            if payload_type in wanted and payload_type not in with_fmtp:
                out.append(f"a=fmtp:{payload_type} {hints}")
    return "\r\n".join(out)


def _negotiation_error(exc: Exception) -> MediaError:
    if isinstance(exc, MediaError):
        return exc
    if isinstance(exc, OperationError):
        return MediaError(MediaErrorCode.CODEC_UNSUPPORTED, f"no common codec: {exc}")
    return MediaError(MediaErrorCode.SDP_INVALID, f"SDP rejected: {exc!r}")


class SilentTrack(MediaStreamTrack):
    """The track a subscribe leg's aiortc sender holds: it never yields a frame.

    The server sends that leg's packets itself (:class:`~media.downtrack.DownTrack`); the
    sender exists for SDP (SSRCs, msid) and is kept from sending anything of its own.
    """

    def __init__(self, kind: TrackKind) -> None:
        super().__init__()
        self.kind = kind
        self._never: asyncio.Future[None] | None = None

    async def recv(self) -> None:  # type: ignore[override]
        if self.readyState != "live":
            raise MediaStreamError
        if self._never is None:
            self._never = asyncio.get_running_loop().create_future()
        await self._never
        raise MediaStreamError


class PublishConnection:
    """A participant's publish connection: the client offers its media, the server answers."""

    def __init__(self, settings: MediaSettings, stats: MediaStats, on_state: Callable[[], None]) -> None:
        self.pc = create_peer_connection(settings)
        self.ingress = Ingress(self.pc, stats, settings.max_video_bitrate_bps)
        self.negotiated: dict[TrackKind, Negotiated] = {}
        self._settings = settings
        self._on_state = on_state
        self.pc.on("connectionstatechange", self._state_changed)

    @property
    def state(self) -> ConnectionState:
        return self.pc.connectionState  # type: ignore[return-value]

    async def answer(self, offer_sdp: str) -> str:
        """Apply the client's offer and return the server's answer (with its ICE candidates)."""
        description = parse_sdp(offer_sdp)
        kinds = [media.kind for media in description.media]
        if any(kind not in KINDS for kind in kinds) or any(kinds.count(k) > 1 for k in KINDS):
            raise MediaError(
                MediaErrorCode.MEDIA_UNSUPPORTED,
                f"a publish offer carries at most one audio and one video m-line, got {kinds}",
            )
        if not kinds:
            raise MediaError(MediaErrorCode.MEDIA_UNSUPPORTED, "the offer has no audio or video")
        # Transceivers made before the offer is applied carry the hearing's codec preferences;
        # aiortc matches them to the offer's m-lines by kind.
        for kind in kinds:
            transceiver = self.pc.addTransceiver(kind, direction="recvonly")
            transceiver.setCodecPreferences(hearing_codec(self._settings, kind).preferences)  # type: ignore[arg-type]
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
            await self.pc.setLocalDescription(await self.pc.createAnswer())
        except Exception as exc:
            raise _negotiation_error(exc) from exc
        for transceiver in self.pc.getTransceivers():
            if transceiver.currentDirection in ("recvonly", "sendrecv") and transceiver.kind in KINDS:
                self.negotiated[transceiver.kind] = Negotiated(transceiver)
        video = self.negotiated.get("video")
        return with_start_bitrate(
            with_opus_fec(self.pc.localDescription.sdp),
            video.payload_types if video is not None else [],
            self._settings.start_video_bitrate_bps,
            self._settings.max_video_bitrate_bps,
        )

    def attach(self, track: PublishedTrack) -> None:
        """Route the packets of the track's kind to ``track``."""
        negotiated = self.negotiated[track.info.kind]
        self.ingress.add_track(
            track, negotiated.payload_types, negotiated.rtx_payload_type, negotiated.abs_send_time_id
        )

    async def close(self) -> None:
        self.ingress.close()
        self.pc.remove_all_listeners()
        await self.pc.close()

    def _state_changed(self) -> None:
        if self.pc.connectionState == "connected":
            self.ingress.start()
        self._on_state()


@dataclass
class _Slot:
    """One transceiver of a subscribe connection and the track its sender reads."""

    transceiver: RTCRtpTransceiver
    track: DownTrack
    silent: SilentTrack
    offered: PublishedTrack | None = None  # source announced in the outstanding offer
    negotiated: PublishedTrack | None = None  # source announced in the last answered offer


@dataclass
class _Negotiation:
    offer_pending: bool = False
    changed: bool = False
    tasks: set[asyncio.Task[None]] = field(default_factory=set)


class SubscribeConnection:
    """A participant's subscribe connection: the server offers the other participants' tracks."""

    def __init__(
        self,
        participant_id: str,
        settings: MediaSettings,
        events: MediaEvents,
        stats: MediaStats,
        on_state: Callable[[], None],
    ) -> None:
        self.participant_id = participant_id
        self.pc = create_peer_connection(settings)
        self.egress = Egress(self.pc, stats, partial(events.link_quality_changed, participant_id))
        self._stats = stats
        self._settings = settings
        self._events = events
        self._on_state = on_state
        self._slots: list[_Slot] = []
        self._negotiation = _Negotiation()
        self._closed = False
        self.pc.on("connectionstatechange", self._state_changed)
        # an inactive slot of each kind lets ICE and DTLS connect before anyone publishes
        for kind in KINDS:
            self._add_slot(kind)
        self._renegotiate()

    @property
    def state(self) -> ConnectionState:
        return self.pc.connectionState  # type: ignore[return-value]

    def subscribe(self, published: PublishedTrack) -> None:
        """Start sending a published track to this participant (after renegotiation)."""
        if self._closed or any(slot.track.source is published for slot in self._slots):
            return
        kind = published.info.kind
        slot = next((s for s in self._slots if s.track.kind == kind and s.track.source is None), None)
        if slot is None:
            slot = self._add_slot(kind)
        slot.track.attach(published)
        slot.transceiver.direction = "sendonly"
        self._renegotiate()

    def unsubscribe(self, published: PublishedTrack) -> None:
        """Stop sending a published track; its slot turns inactive until reused."""
        for slot in self._slots:
            if slot.track.source is published:
                slot.track.detach()
                slot.transceiver.direction = "inactive"
                self._renegotiate()

    async def accept_answer(self, answer_sdp: str) -> None:
        """Complete the outstanding offer with the client's answer."""
        if not self._negotiation.offer_pending or self.pc.signalingState != "have-local-offer":
            raise MediaError(MediaErrorCode.NO_OFFER_PENDING, "no subscribe offer is awaiting an answer")
        parse_sdp(answer_sdp)
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer_sdp, type="answer"))
        except Exception as exc:
            # the offer stays outstanding: the client may still send a usable answer
            raise _negotiation_error(exc) from exc
        for slot in self._slots:
            slot.negotiated = slot.offered
            slot.track.configure(_leg_parameters(slot.transceiver))
        self._negotiation.offer_pending = False
        self._update_ready()
        self._maybe_offer()

    async def close(self) -> None:
        self._closed = True
        for slot in self._slots:
            slot.track.detach()
        for task in list(self._negotiation.tasks):
            task.cancel()
        self.egress.close()
        self.pc.remove_all_listeners()
        await self.pc.close()
        for slot in self._slots:
            slot.silent.stop()

    def _add_slot(self, kind: TrackKind) -> _Slot:
        silent = SilentTrack(kind)
        transceiver = self.pc.addTransceiver(silent, direction="inactive")
        transceiver.setCodecPreferences(hearing_codec(self._settings, kind).preferences)
        silence_sender_rtcp(transceiver.sender)
        ssrc, rtx_ssrc = sender_ssrcs(transceiver.sender)
        track = DownTrack(kind, LegParameters(ssrc, rtx_ssrc), self.egress.tap, self._stats)
        self.egress.down_tracks.append(track)
        slot = _Slot(transceiver, track, silent)
        self._slots.append(slot)
        return slot

    def _renegotiate(self) -> None:
        self._negotiation.changed = True
        self._update_ready()
        self._maybe_offer()

    @property
    def _closing(self) -> bool:
        # aiortc closes a connection by itself once the client's DTLS is gone (the page hung up): from the
        # start of that close its signaling state is "closed", before the router hears of it.
        return self._closed or self.pc.signalingState == "closed"

    def _maybe_offer(self) -> None:
        if self._closing or self._negotiation.offer_pending or not self._negotiation.changed:
            return
        self._negotiation.offer_pending = True
        self._negotiation.changed = False
        task = asyncio.ensure_future(self._offer())
        self._negotiation.tasks.add(task)
        task.add_done_callback(self._negotiation.tasks.discard)

    async def _offer(self) -> None:
        try:
            await self.pc.setLocalDescription(await self.pc.createOffer())
            tracks: list[TrackMapping] = []
            for slot in self._slots:
                slot.offered = slot.track.source
                if slot.offered is not None and slot.transceiver.mid is not None:
                    info = slot.offered.info
                    tracks.append(TrackMapping(slot.transceiver.mid, info.participant_id, info.kind))
            sdp = with_opus_fec(self.pc.localDescription.sdp)
            await self._events.subscriber_offer(self.participant_id, sdp, tracks)
        except asyncio.CancelledError:
            raise
        except Exception:
            if self._closing:
                logger.debug("no subscribe offer to %s: its connection is closing", self.participant_id)
                return
            # the client will not answer an offer it never got; offer again on the next change
            logger.exception("subscribe offer to %s failed", self.participant_id)
            self._negotiation.offer_pending = False
            self._negotiation.changed = True

    def _update_ready(self) -> None:
        connected = self.pc.connectionState == "connected"
        for slot in self._slots:
            slot.track.set_ready(
                connected
                and slot.track.source is not None
                and slot.negotiated is slot.track.source
                and slot.transceiver.currentDirection == "sendonly"
            )

    def _state_changed(self) -> None:
        if self.pc.connectionState == "connected":
            self.egress.start()
        self._update_ready()
        self._on_state()


def _leg_parameters(transceiver: RTCRtpTransceiver) -> LegParameters:
    """What a subscribe-leg transceiver negotiated, as its down track needs it."""
    ssrc, rtx_ssrc = sender_ssrcs(transceiver.sender)
    negotiated = Negotiated(transceiver)
    return LegParameters(
        ssrc=ssrc,
        rtx_ssrc=rtx_ssrc,
        payload_type=negotiated.payload_type,
        rtx_payload_type=negotiated.rtx_payload_type,
        mid=transceiver.mid,
        mid_id=negotiated.mid_id,
        abs_send_time_id=negotiated.abs_send_time_id if transceiver.kind == "video" else 0,
    )
