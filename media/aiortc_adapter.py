"""The one place (with ``media/transport_tap.py``) that reaches into aiortc's and aioice's private details.

Everything here depends on aiortc 1.16 internals (see ARCHITECTURE §4); tests in
``tests/media/test_aiortc_adapter.py`` fail loudly when an upgrade moves them.

* ICE host addresses: aioice gathers host candidates through its module-level
  ``get_host_addresses``, which skips loopback; :func:`install_host_addresses`
  replaces that name **process-wide** with the configured addresses.
* ICE ports: aioice binds each host candidate to an ephemeral port (``local_addr=(address, 0)``);
  :func:`install_port_range` makes it bind within a configured range instead (for firewalls), by
  giving ``aioice.ice`` an ``asyncio`` whose running loop picks the port.
* TURN: :func:`install_turn_release_limit` bounds how long closing a relayed connection waits
  for the relay to confirm an allocation's deletion (``aioice.turn.TurnClientMixin.delete``).
* Packet forwarding (the server): :class:`Negotiated` reads what a transceiver negotiated
  (``_codecs``, ``_headerExtensions``); :func:`sender_ssrcs` the SSRCs aiortc announced
  (``_ssrc``, ``_rtx_ssrc``); :func:`silence_sender_rtcp` keeps a subscribe leg's aiortc
  sender from sending RTCP of its own (it sends no media: the server's down tracks do).
* Receiving encoded frames (test participants and the benchmark's synthetic parties, not the
  server): :class:`ReceiverTap` turns an ``RTCRtpReceiver`` into a source of encoded frames
  (``av.Packet``) handed to its track on the event loop, without the decoder thread, and
  records the publisher's RTCP sender reports; :func:`redirect_keyframe_requests` catches a
  PLI/FIR at a sender whose track returns pre-encoded ``av.Packet`` frames.
"""

from __future__ import annotations

import asyncio
import errno
import fractions
import logging
import random
import threading
import time
import types
from collections.abc import Callable, Sequence
from typing import Any

import aioice.ice
import aioice.turn
import aiortc
import av
from aiortc import RTCRtpCodecParameters, RTCRtpReceiver, RTCRtpSender
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtp import RtcpSrPacket

from .bitstream import is_keyframe
from .contract import MediaSettings, SenderReport

logger = logging.getLogger(__name__)

SUPPORTED_AIORTC = (1, 16)
_NTP_EPOCH_OFFSET = 2208988800  # seconds from 1900-01-01 (NTP) to 1970-01-01 (Unix)


def check_aiortc_version(version: str = aiortc.__version__) -> None:
    """Refuse to run on an aiortc whose private details this adapter was not written against."""
    parts = tuple(int(part) for part in version.split(".")[:2] if part.isdigit())
    if parts != SUPPORTED_AIORTC:
        raise RuntimeError(
            f"aiortc {version} is not supported: the media adapter is written for "
            f"aiortc {SUPPORTED_AIORTC[0]}.{SUPPORTED_AIORTC[1]}.x"
        )


# --- ICE host addresses --------------------------------------------------------------------


class ConfiguredHostAddresses:
    """Stands in for ``aioice.ice.get_host_addresses``: answers with the configured addresses."""

    def __init__(self, addresses: Sequence[str], original: Callable[..., list[str]]) -> None:
        self.addresses = list(addresses)
        self.original = original

    def __call__(self, use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [address for address in self.addresses if (use_ipv6 if ":" in address else use_ipv4)]


def install_host_addresses(settings: MediaSettings) -> None:
    """Make every ICE agent in this process gather host candidates on ``settings.host_addresses``.

    Process-wide (aioice looks the function up in its module); idempotent: installing again
    replaces the addresses, and :func:`uninstall_host_addresses` restores aioice's own lookup.
    """
    current = aioice.ice.get_host_addresses
    original = current.original if isinstance(current, ConfiguredHostAddresses) else current
    aioice.ice.get_host_addresses = ConfiguredHostAddresses(settings.host_addresses, original)


def uninstall_host_addresses() -> None:
    """Give aioice back its own host-address lookup."""
    current = aioice.ice.get_host_addresses
    if isinstance(current, ConfiguredHostAddresses):
        aioice.ice.get_host_addresses = current.original


# --- ICE port range --------------------------------------------------------------------------


class PortRange:
    """UDP ports ``low``–``high`` (inclusive) for ICE host candidates; binds the first free one."""

    def __init__(self, low: int, high: int) -> None:
        if not 1 <= low <= high <= 65535:
            raise ValueError(f"bad ICE port range {low}-{high}")
        self.low = low
        self.high = high
        self._next = random.randint(low, high)  # noqa: S311 - spreading, not secrecy

    async def bind(
        self, loop: asyncio.AbstractEventLoop, factory: Callable[[], Any], address: str
    ) -> tuple[Any, Any]:
        """A datagram endpoint on ``address`` at a free port of the range; OSError when all are taken."""
        count = self.high - self.low + 1
        failure: OSError | None = None
        for _ in range(count):
            # Advanced before the await: agents gathering at the same time try different ports.
            port, self._next = self._next, self._next + 1 if self._next < self.high else self.low
            try:
                return await loop.create_datagram_endpoint(factory, local_addr=(address, port))
            except OSError as exc:  # in use (uvloop words it without an errno): try the next one
                failure = exc
        if failure is not None and failure.errno not in (None, errno.EADDRINUSE):
            raise failure
        raise OSError(errno.EADDRINUSE, f"no free UDP port in {self.low}-{self.high} on {address}")


class _RangedLoop:
    """The running loop as aioice's candidate gathering sees it: ephemeral binds go into the range."""

    def __init__(self, loop: asyncio.AbstractEventLoop, ports: PortRange) -> None:
        self._loop = loop
        self._ports = ports

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loop, name)

    async def create_datagram_endpoint(self, factory: Callable[[], Any], **kwargs: Any) -> tuple[Any, Any]:
        local_addr = kwargs.get("local_addr")
        if set(kwargs) == {"local_addr"} and local_addr is not None and local_addr[1] == 0:
            return await self._ports.bind(self._loop, factory, local_addr[0])
        return await self._loop.create_datagram_endpoint(factory, **kwargs)


class _AsyncioWithPortRange(types.ModuleType):
    """``asyncio`` for ``aioice.ice`` only, but ``get_running_loop()`` binds ICE ports in the range."""

    def __init__(self, ports: PortRange) -> None:
        super().__init__("asyncio")
        self.ports = ports

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)

    def get_running_loop(self) -> Any:
        return _RangedLoop(asyncio.get_running_loop(), self.ports)


def install_port_range(low: int, high: int) -> None:
    """Make every ICE agent in this process bind its host candidates to UDP ports ``low``–``high``.

    Process-wide, like :func:`install_host_addresses`; :func:`uninstall_port_range` undoes it.
    """
    aioice.ice.asyncio = _AsyncioWithPortRange(PortRange(low, high))


def uninstall_port_range() -> None:
    """aioice binds ephemeral ports again."""
    aioice.ice.asyncio = asyncio


# --- TURN allocations ------------------------------------------------------------------------

TURN_RELEASE_S = 1.0  # a relay next to the server answers in milliseconds; this allows one retransmission


def install_turn_release_limit(seconds: float = TURN_RELEASE_S) -> None:
    """Give a TURN relay ``seconds`` to confirm that an allocation is deleted, then let it expire.

    aioice deletes each allocation with a STUN transaction retransmitted for ~31 s, and closes
    an ICE connection's candidates one after another: with the relay unreachable, closing a
    relayed peer connection (a participant leaving, a hearing's end, the server's shutdown)
    took that long per candidate.  After ``seconds`` the deletion is given up, its socket is
    closed, and the relay frees the allocation when its lifetime ends (RFC 8656 section 6).
    Process-wide (patches ``aioice.turn.TurnClientMixin.delete``) and idempotent.
    """
    mixin: Any = aioice.turn.TurnClientMixin
    original = getattr(mixin.delete, "original", mixin.delete)

    async def delete(self: Any) -> None:
        try:
            await asyncio.wait_for(original(self), seconds)
        except TimeoutError:
            logger.info(
                "TURN allocation %s: no answer to its deletion within %.1f s; left to expire",
                self.relayed_address,
                seconds,
            )

    delete.original = original  # type: ignore[attr-defined]
    mixin.delete = delete


def uninstall_turn_release_limit() -> None:
    """aioice waits for its own retransmissions again."""
    mixin: Any = aioice.turn.TurnClientMixin
    mixin.delete = getattr(mixin.delete, "original", mixin.delete)


# --- receiving encoded frames ----------------------------------------------------------------


class PassthroughDecoder:
    """A 'decoder' that returns the encoded frame as an ``av.Packet`` instead of decoding it."""

    def __init__(self, codec: RTCRtpCodecParameters) -> None:
        self.codec_name = codec.name
        self.time_base = fractions.Fraction(1, codec.clockRate)

    def decode(self, encoded_frame: JitterFrame) -> list[av.Packet]:
        packet = av.Packet(encoded_frame.data)
        packet.pts = encoded_frame.timestamp
        packet.time_base = self.time_base
        packet.is_keyframe = is_keyframe(self.codec_name, encoded_frame.data)
        return [packet]


class RtpTimestampUnwrapper:
    """Replaces aiortc's per-receiver timestamp mapper: 32-bit RTP time → monotonic 64-bit.

    aiortc's own mapper rebases the first timestamp to zero, which would lose the relation
    to the RTP times in RTCP sender reports; this one keeps the publisher's RTP time.
    """

    def __init__(self) -> None:
        self._last: int | None = None

    def map(self, timestamp: int) -> int:
        if self._last is None:
            self._last = timestamp
            return timestamp
        delta = (timestamp - self._last) & 0xFFFFFFFF
        if delta >= 1 << 31:
            delta -= 1 << 32
        self._last += delta
        return self._last


class _FrameFeed:
    """Stands in for the receiver's decoder queue (a ``queue.Queue``).

    ``put`` is called on the event loop with each reassembled frame; the frame goes straight
    to the track as an ``av.Packet``.  The receiver's decoder thread still starts but only
    parks in ``get`` until the receiver stops, then ends the track as aiortc would.
    """

    def __init__(self, receiver: RTCRtpReceiver) -> None:
        self._receiver = receiver
        self._decoders: dict[str, PassthroughDecoder] = {}
        self._stopped = threading.Event()

    def put(self, item: tuple[RTCRtpCodecParameters, JitterFrame] | None) -> None:
        if item is None:
            self._stopped.set()
            return
        codec, frame = item
        decoder = self._decoders.get(codec.name)
        if decoder is None:
            decoder = self._decoders[codec.name] = PassthroughDecoder(codec)
        track = self._receiver._track
        if track is not None:
            for packet in decoder.decode(frame):
                track._queue.put_nowait(packet)

    def get(self) -> None:
        self._stopped.wait()
        return None


class ReceiverTap:
    """Turns an aiortc receiver into a source of encoded frames and keyframe requests.

    Install it before the receiver starts (from the connection's ``track`` event); the
    receiver's track then yields ``av.Packet`` (data, pts = unwrapped RTP time, time base
    1/clock rate, keyframe flag).
    """

    def __init__(self, receiver: RTCRtpReceiver) -> None:
        self.receiver = receiver
        self.sender_report: SenderReport | None = None
        self._pending: set[asyncio.Future[None]] = set()
        receiver._RTCRtpReceiver__decoder_queue = _FrameFeed(receiver)  # type: ignore[attr-defined]
        receiver._RTCRtpReceiver__timestamp_mapper = RtpTimestampUnwrapper()  # type: ignore[attr-defined]
        handle_rtcp = receiver._handle_rtcp_packet

        async def watch_rtcp(packet: Any) -> None:
            if isinstance(packet, RtcpSrPacket):
                info = packet.sender_info
                self.sender_report = SenderReport(
                    ntp_time=(info.ntp_timestamp >> 32)
                    - _NTP_EPOCH_OFFSET
                    + (info.ntp_timestamp & 0xFFFFFFFF) / 2**32,
                    rtp_timestamp=info.rtp_timestamp,
                    received_at=time.time(),
                )
            await handle_rtcp(packet)

        receiver._handle_rtcp_packet = watch_rtcp  # type: ignore[method-assign]

    def request_keyframe(self) -> bool:
        """Send a picture loss indication to the publisher; False if no media has arrived yet."""
        sources = self.receiver.getSynchronizationSources()
        # The RTX stream's SSRC may be among them; a PLI naming it is harmless.
        for source in sources:
            task = asyncio.ensure_future(self.receiver._send_rtcp_pli(source.source))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)
        return bool(sources)


# --- sending -----------------------------------------------------------------------------------


def redirect_keyframe_requests(sender: RTCRtpSender, on_request: Callable[[], None]) -> None:
    """Call ``on_request`` when the remote side asks this sender for a keyframe (PLI or FIR).

    aiortc would only flag its encoder, which a forwarded (pre-encoded) track never uses.
    """
    sender._send_keyframe = on_request  # type: ignore[method-assign]


# --- packet-level forwarding: what a transceiver negotiated, and aiortc's own media kept quiet ----

ABS_SEND_TIME_URI = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
MID_URI = "urn:ietf:params:rtp-hdrext:sdes:mid"


class Negotiated:
    """What one transceiver negotiated: payload types, RTX and header extension ids."""

    def __init__(self, transceiver: Any) -> None:
        codecs = list(transceiver._codecs)
        media = [c for c in codecs if c.mimeType.lower() != "video/rtx"]
        self.payload_types = [c.payloadType for c in media]
        self.payload_type: int | None = media[0].payloadType if media else None
        self.rtx_payload_type: int | None = next(
            (
                c.payloadType
                for c in codecs
                if c.mimeType.lower() == "video/rtx" and c.parameters.get("apt") == self.payload_type
            ),
            None,
        )
        extensions = {ext.uri: ext.id for ext in transceiver._headerExtensions}
        self.mid_id: int = extensions.get(MID_URI, 0)
        self.abs_send_time_id: int = extensions.get(ABS_SEND_TIME_URI, 0)


def sender_ssrcs(sender: RTCRtpSender) -> tuple[int, int]:
    """The SSRC (and RTX SSRC) aiortc announced for this sender in its offer."""
    return sender._ssrc, sender._rtx_ssrc


def silence_sender_rtcp(sender: RTCRtpSender) -> None:
    """Keep aiortc's sender from sending its own RTCP (SRs with zero times, BYE): it sends no media.

    The server sends translated sender reports for what it forwards instead.  Its RTCP loop
    does not run either (it woke the event loop about once a second per subscribed track to
    build a report nobody sends); ``stop()`` still finds the events it waits for set.
    Call before the sender starts.
    """
    internals: Any = sender

    async def discard(packets: Any) -> None:
        return None

    async def idle() -> None:
        internals._RTCRtpSender__rtcp_started.set()
        try:
            await asyncio.Event().wait()  # until stop() cancels it
        except asyncio.CancelledError:
            pass
        internals._RTCRtpSender__rtcp_exited.set()

    sender._send_rtcp = discard  # type: ignore[method-assign]
    sender._run_rtcp = idle  # type: ignore[method-assign]
