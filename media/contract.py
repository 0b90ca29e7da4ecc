"""The narrow interfaces between the media plane, the live room and the recorder.

The media plane (``media``) forwards RTP packets between the participants of
one hearing.  It knows nothing of hearings, roles or HTTP: the live room
(``signaling.room``) drives it through :class:`MediaRouter` and hears back
through :class:`MediaEvents`; the recorder (``recording``) receives every
forwarded packet through :class:`PacketSink` (:class:`FrameSink` is the
recorder's own frame input, fed by its depacketizer).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

TrackKind = Literal["audio", "video"]
ConnectionState = Literal["new", "connecting", "connected", "disconnected", "failed", "closed"]


@dataclass(frozen=True)
class TrackInfo:
    """One published track: whose it is, what it carries and how it is clocked."""

    track_id: str
    participant_id: str
    kind: TrackKind
    codec: str  # "VP8", "H264" or "opus"
    clock_rate: int  # 90000 for video, 48000 for Opus
    channels: int = 1


@dataclass(frozen=True)
class EncodedFrame:
    """One encoded frame (or Opus packet) exactly as the publisher sent it."""

    track: TrackInfo
    data: bytes
    rtp_timestamp: int  # unwrapped (monotonic, 64-bit) RTP timestamp
    wallclock: float  # UTC seconds: RTP time mapped through RTCP sender reports, else arrival time
    keyframe: bool
    width: int | None = None  # video keyframes only, from the bitstream
    height: int | None = None


@dataclass(frozen=True)
class SenderReport:
    """A publisher's RTCP sender report: its wall-clock time for one RTP time of one track."""

    ntp_time: float  # Unix seconds on the publisher's clock
    rtp_timestamp: int  # 32-bit RTP time
    received_at: float  # server wall-clock time when the report arrived


@dataclass(slots=True)  # not frozen: made for every recorded packet, and a frozen __init__ costs 3x
class RtpPacket:
    """One RTP packet of a published track as the publisher sent it (SRTP removed, header parsed).

    Packets reach a :class:`PacketSink` in arrival order: out of order, duplicated (a
    retransmission) or missing, as the network delivered them.
    """

    track: TrackInfo
    sequence_number: int  # 16-bit, as sent
    timestamp: int  # 32-bit RTP time, as sent
    marker: bool
    payload: bytes  # after the header and its extensions, padding removed
    arrival: float  # server wall-clock time (``time.time()``) when the datagram arrived


class PacketSink(Protocol):
    """Receives every forwarded RTP packet of a hearing; the recorder implements it.

    Called on the event loop: implementations must return at once and do any blocking work
    (reordering, depacketizing, muxing, disk) elsewhere.
    """

    def track_started(self, track: TrackInfo, request_keyframe: Callable[[], None]) -> None:
        """A track began; ``request_keyframe`` (callable from any thread) asks its publisher for one."""

    def packet(self, packet: RtpPacket) -> None:
        """One packet of a started track."""

    def sender_report(self, track: TrackInfo, report: SenderReport) -> None:
        """The publisher's latest sender report for the track (maps its RTP time to wall-clock time)."""

    def track_ended(self, track: TrackInfo) -> None:
        """The track ended (the publisher left, reconnected or the hearing closed)."""


class FrameSink(Protocol):
    """Receives every forwarded frame of a hearing; the recorder implements it.

    Called on the event loop: implementations must return at once and do any
    blocking work (disk, muxing) elsewhere.
    """

    def track_started(self, track: TrackInfo) -> None: ...

    def frame(self, frame: EncodedFrame) -> None: ...

    def track_ended(self, track: TrackInfo) -> None: ...


@dataclass(frozen=True)
class TrackMapping:
    """Tells a subscriber which participant's track arrives on which transceiver."""

    mid: str
    participant_id: str
    kind: TrackKind


@dataclass(frozen=True)
class ConnectionQuality:
    """Live quality figures of one participant's connection."""

    participant_id: str
    state: ConnectionState
    round_trip_ms: float | None = None
    packet_loss_pct: float | None = None  # of what the server received from them
    inbound_kbps: float | None = None
    outbound_kbps: float | None = None
    downlink_loss_pct: float | None = None  # of what the server sent them (their receiver reports, smoothed)
    video_paused: bool = False  # congestion control holds back others' video to them


@dataclass(frozen=True)
class LinkQuality:
    """The server → participant link as congestion control sees it (smoothed), and what it paused."""

    loss_pct: float | None
    round_trip_ms: float | None
    sent_kbps: float
    video_paused: bool  # some of the others' video is held back from this participant
    all_video_paused: bool  # including the priority participant's (the courtroom's)


@dataclass(frozen=True)
class MediaSettings:
    """How the media plane connects: ICE addresses, servers and the hearing's codec."""

    hearing_id: str = ""  # an opaque label of whose media this is (logs, placement on a worker)
    host_addresses: list[str] = field(default_factory=lambda: ["127.0.0.1"])
    ice_servers: list[dict[str, Any]] = field(default_factory=list)  # no STUN/TURN unless configured
    # When set, called for each new peer connection instead (fresh short-lived TURN credentials).
    ice_servers_source: Callable[[], list[dict[str, Any]]] | None = None
    video_codec: Literal["VP8", "H264"] = "VP8"
    keyframe_min_interval_s: float = 0.5
    # REMB to publishers while no congestion shows; the browser's own loss-based control ramps up to it
    max_video_bitrate_bps: int = 2_500_000
    # Chrome's encoder starts here (x-google-start-bitrate in the publish answer) instead of 300 kbit/s:
    # with REMB and receiver reports only (no transport-cc), its own ramp is ~8 % a second
    start_video_bitrate_bps: int = 1_000_000


class MediaEvents(Protocol):
    """What the media plane tells the live room."""

    async def subscriber_offer(self, participant_id: str, sdp: str, tracks: list[TrackMapping]) -> None:
        """Send a (re)negotiation offer for the participant's subscribe connection."""

    def connection_state_changed(self, participant_id: str, state: ConnectionState) -> None:
        """A participant's media connection changed state (e.g. dropped or restored)."""

    def link_quality_changed(self, participant_id: str, quality: LinkQuality) -> None:
        """Congestion control paused or resumed video to the participant (their downlink is weak)."""


class MediaRouter(Protocol):
    """The forwarding of one live hearing (mediasoup's Router): participants' packets in and out."""

    async def publish(self, participant_id: str, offer_sdp: str) -> str:
        """Accept the participant's publish offer (client → server media); return the answer SDP.

        A second publish for the same participant replaces the earlier connection (reconnect).
        Raises ``media.errors.MediaError`` for unusable SDP.
        """

    async def subscriber_answer(self, participant_id: str, answer_sdp: str) -> None:
        """Complete the server-offered negotiation of the participant's subscribe connection."""

    def set_muted(self, participant_id: str, kind: TrackKind, muted: bool) -> None:
        """Stop (or restart) forwarding and recording the participant's audio or video."""

    def set_paused(self, paused: bool) -> None:
        """Recess: forward and record nothing while paused; keyframes are requested on resume."""

    def set_video_priority(self, participant_id: str | None) -> None:
        """Whose video a congested subscriber keeps longest (the courtroom's); None: nobody's."""

    async def leave(self, participant_id: str) -> None:
        """Close the participant's connections; their tracks end for everyone else."""

    async def stats(self) -> list[ConnectionQuality]:
        """Current connection quality of every participant."""

    async def close(self) -> None:
        """End the hearing's media: close every connection and end every track."""
