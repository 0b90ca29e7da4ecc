"""Taking SRTP packets off a peer connection at the datagram level, and sending them back.

aiortc keeps SDP, ICE and DTLS; once a connection's DTLS transport is connected, every
datagram whose first byte is 128–191 (RTP or RTCP, RFC 7983) goes straight to the tap's
handler, synchronously, instead of aioice's queue and aiortc's receive loop; STUN (consent)
and DTLS go on as before.  Sending protects with the connection's outbound SRTP session and
writes on the nominated candidate pair's socket (:mod:`media.sender`): no asyncio hop per packet.

Private details of aiortc 1.16 / aioice 0.10 used here (``tests/media/test_aiortc_adapter.py``
guards each): ``RTCDtlsTransport._rx_srtp`` / ``_tx_srtp`` (pylibsrtp sessions, used
through :class:`media.srtp.SrtpContext`),
``RTCIceTransport._connection`` (aioice ``Connection``), its ``_protocols`` (``StunProtocol``,
whose ``datagram_received`` is wrapped per instance) and ``_nominated[1]`` (the selected
``CandidatePair``: ``.protocol.transport`` and ``.remote_addr``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from aiortc import RTCPeerConnection

from .rtp import is_rtcp
from .sender import NotConnected, PacketSender, open_sender
from .srtp import SrtpContext
from .stats import MediaStats

logger = logging.getLogger(__name__)

RtpHandler = Callable[[bytes, int], None]  # (plain RTP packet, arrival time in perf_counter_ns)
RtcpHandler = Callable[[bytes], None]  # plain compound RTCP packet


class TransportTap:
    """The SRTP packets of one peer connection: received into handlers, sent without aiortc."""

    def __init__(
        self, pc: RTCPeerConnection, on_rtp: RtpHandler, on_rtcp: RtcpHandler, stats: MediaStats
    ) -> None:
        self._pc = pc
        self._on_rtp = on_rtp
        self._on_rtcp = on_rtcp
        self._stats = stats
        self._rx: SrtpContext | None = None
        # protects and writes on the nominated pair's socket; down tracks forward through it directly
        self.sender: PacketSender = NotConnected()
        self._hooked: list[Any] = []
        self.installed = False
        self.bytes_received = 0
        pc.on("connectionstatechange", self._state_changed)

    @property
    def bytes_sent(self) -> int:
        """Bytes of the datagrams sent, RTP and RTCP."""
        return self.sender.bytes_sent

    @property
    def packets_sent(self) -> int:
        """RTP packets sent."""
        return self.sender.packets_sent

    def send_rtcp(self, packet: bytes) -> bool:
        """Protect and send one compound RTCP packet; False if nothing was sent."""
        return self.sender.send_rtcp(packet) >= 0

    def close(self) -> None:
        """Stop sending and give the datagrams back to aioice."""
        self.sender.close()  # kept: what it sent stays counted
        for protocol in self._hooked:
            protocol.__dict__.pop("datagram_received", None)
        self._hooked.clear()

    # --- internals ---------------------------------------------------------------------------

    def _state_changed(self) -> None:
        state = self._pc.connectionState
        if state == "connected" and not self.installed:
            # emitted synchronously as DTLS completes, before aiortc's receive loop starts
            self._install()
        elif state in ("failed", "closed"):
            self.close()

    def _install(self) -> None:
        transceivers = self._pc.getTransceivers()
        if not transceivers:
            return
        dtls = transceivers[0].receiver.transport  # MAX_BUNDLE: one transport for every m-line
        connection = dtls.transport._connection
        pair = connection._nominated.get(1)
        if dtls._rx_srtp is None or pair is None or pair.protocol.transport is None:
            logger.warning("connected without SRTP sessions or a nominated pair; media not tapped")
            return
        self._rx = SrtpContext(dtls._rx_srtp)
        for protocol in connection._protocols:
            self._hook(protocol)
        self.sender = open_sender(dtls._tx_srtp, pair.protocol.transport, pair.remote_addr)
        self.installed = True

    def _hook(self, protocol: Any) -> None:
        original = protocol.datagram_received
        receive = self._receive
        stats = self._stats

        def datagram_received(data: bytes, addr: tuple[Any, ...]) -> None:
            if not data:
                # aiortc's DTLS loop indexes data[0]: an empty datagram would end the connection
                stats.dropped_malformed += 1
            elif 127 < data[0] < 192:
                receive(data)
            else:
                original(data, addr)

        protocol.datagram_received = datagram_received
        self._hooked.append(protocol)

    def _receive(self, data: bytes) -> None:
        arrival = time.perf_counter_ns()
        self.bytes_received += len(data)
        rx = self._rx
        rtcp = is_rtcp(data)  # SRTP leaves the header in the clear: the same for the plain packet
        plain = rx.unprotect_rtcp(data) if rtcp else rx.unprotect(data)  # type: ignore[union-attr]
        if plain is None:
            self._stats.dropped_malformed += 1
            return
        try:
            if rtcp:
                self._on_rtcp(plain)
            else:
                self._on_rtp(plain, arrival)
        except Exception:
            # a packet must never take the connection down; count it and carry on
            self._stats.dropped_malformed += 1
            logger.exception("media packet handling failed")
