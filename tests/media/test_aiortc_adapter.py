"""The aiortc/aioice private details the adapter relies on are still there, and the adapter works.

If one of these fails after an upgrade, read ``media/aiortc_adapter.py`` against
the new aiortc source before changing anything else.
"""

from __future__ import annotations

import asyncio
import fractions
import inspect
import queue
import time

import aioice.ice
import aioice.stun
import aioice.turn
import aiortc
import pytest
from aiortc import (
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCSessionDescription,
    rtcdtlstransport,
    rtcrtpreceiver,
)
from aiortc.jitterbuffer import JitterFrame
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import RtcpSenderInfo, RtcpSrPacket
from media_harness import VIDEO_CLOCK, PacketSource, Room, client_configuration, wait_for

from media.aiortc_adapter import (
    ConfiguredHostAddresses,
    PassthroughDecoder,
    ReceiverTap,
    RtpTimestampUnwrapper,
    check_aiortc_version,
    install_host_addresses,
    install_turn_release_limit,
    redirect_keyframe_requests,
    uninstall_host_addresses,
    uninstall_turn_release_limit,
)
from media.contract import MediaSettings
from media.rtcp import unix_from_ntp

VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=97)


def parameters(function: object) -> list[str]:
    return list(inspect.signature(function).parameters)  # type: ignore[arg-type]


def source(function: object) -> str:
    return inspect.getsource(function)  # type: ignore[arg-type]


def test_installed_aiortc_is_the_supported_version() -> None:
    check_aiortc_version()
    assert aiortc.__version__.startswith("1.16.")
    for other in ("1.17.0", "2.0.0", "1.15.1"):
        with pytest.raises(RuntimeError):
            check_aiortc_version(other)


def test_aioice_host_address_lookup_is_unchanged() -> None:
    original = aioice.ice.get_host_addresses
    if isinstance(original, ConfiguredHostAddresses):
        original = original.original
    assert parameters(original) == ["use_ipv4", "use_ipv6"]
    # looked up as a module global at gathering time, so replacing the name takes effect
    assert "get_host_addresses(" in source(aioice.ice.Connection.gather_candidates)


def test_receiver_internals_the_tap_replaces_are_unchanged() -> None:
    assert parameters(rtcrtpreceiver.decoder_worker) == ["loop", "input_q", "output_q", "decode_error"]
    worker = source(rtcrtpreceiver.decoder_worker)
    assert "input_q.get()" in worker and "if task is None" in worker and "output_q.put(None)" in worker
    handle_rtp = source(RTCRtpReceiver._handle_rtp_packet)
    assert "self.__decoder_queue.put((codec, encoded_frame))" in handle_rtp
    assert "self.__timestamp_mapper.map(" in handle_rtp
    assert "self.__decoder_queue" in source(RTCRtpReceiver.receive)
    assert "self.__decoder_queue.put(None)" in source(RTCRtpReceiver._RTCRtpReceiver__stop_decoder)  # type: ignore[attr-defined]
    assert parameters(RTCRtpReceiver._send_rtcp_pli) == ["self", "media_ssrc"]
    assert parameters(RTCRtpReceiver._handle_rtcp_packet) == ["self", "packet"]
    assert "._queue" in source(rtcrtpreceiver.RemoteStreamTrack.recv)
    # RTCP reaches a receiver through an attribute lookup on the instance
    assert "recipient._handle_rtcp_packet(packet)" in source(
        rtcdtlstransport.RTCDtlsTransport._handle_rtcp_data
    )
    assert {"ntp_timestamp", "rtp_timestamp"} <= set(parameters(RtcpSenderInfo))
    assert parameters(JitterFrame) == ["data", "timestamp"]


async def test_receiver_instance_has_the_replaced_attributes() -> None:
    pc = RTCPeerConnection(client_configuration())
    receiver = pc.addTransceiver("video", direction="recvonly").receiver
    assert isinstance(receiver._RTCRtpReceiver__decoder_queue, queue.Queue)  # type: ignore[attr-defined]
    assert hasattr(receiver._RTCRtpReceiver__timestamp_mapper, "map")  # type: ignore[attr-defined]
    ReceiverTap(receiver)
    assert isinstance(receiver._RTCRtpReceiver__timestamp_mapper, RtpTimestampUnwrapper)  # type: ignore[attr-defined]
    await pc.close()


def test_sender_internals_the_adapter_relies_on_are_unchanged() -> None:
    assert parameters(RTCRtpSender._send_keyframe) == ["self"]
    assert "self._send_keyframe()" in source(RTCRtpSender._handle_rtcp_packet)
    next_frame = source(RTCRtpSender._next_encoded_frame)
    assert "isinstance(data, Frame)" in next_frame and "self.__encoder.pack(data)" in next_frame
    assert "enc_frame.timestamp" in source(RTCRtpSender._run_rtp)


def test_host_addresses_install_is_idempotent_and_reversible() -> None:
    # Routers install the configured addresses process-wide and keep them; start from aioice's own lookup.
    uninstall_host_addresses()
    original = aioice.ice.get_host_addresses
    assert not isinstance(original, ConfiguredHostAddresses)
    try:
        install_host_addresses(MediaSettings(host_addresses=["127.0.0.1"]))
        install_host_addresses(MediaSettings(host_addresses=["127.0.0.1", "::1"]))
        lookup = aioice.ice.get_host_addresses
        assert isinstance(lookup, ConfiguredHostAddresses) and lookup.original is original
        assert lookup(use_ipv4=True, use_ipv6=True) == ["127.0.0.1", "::1"]
        assert lookup(use_ipv4=True, use_ipv6=False) == ["127.0.0.1"]
    finally:
        uninstall_host_addresses()
    assert aioice.ice.get_host_addresses is original
    uninstall_host_addresses()  # a second time changes nothing
    assert aioice.ice.get_host_addresses is original


def test_passthrough_decoder_returns_the_encoded_frame() -> None:
    keyframe = b"\x50\x0b\x00\x9d\x01\x2a\x40\x01\xf0\x00" + b"\x11" * 20
    [packet] = PassthroughDecoder(VP8).decode(JitterFrame(keyframe, 123456))
    assert bytes(packet) == keyframe and packet.pts == 123456 and packet.is_keyframe
    assert packet.time_base == fractions.Fraction(1, 90000)
    [inter] = PassthroughDecoder(VP8).decode(JitterFrame(b"\x51" + b"\x00" * 12, 9))
    assert not inter.is_keyframe


def test_rtp_timestamps_unwrap_past_32_bits() -> None:
    unwrap = RtpTimestampUnwrapper()
    assert unwrap.map(0xFFFFF000) == 0xFFFFF000
    assert unwrap.map(0x00000800) == 0x100000800
    assert unwrap.map(0x00000700) == 0x100000700  # a small step back stays in the same cycle
    assert unwrap.map(0x00001000) == 0x100001000


@pytest.mark.media
async def test_tap_receives_published_packets_bit_exact_with_reports_and_keyframe_requests(
    clips: list,
) -> None:  # type: ignore[type-arg]
    install_host_addresses(MediaSettings(host_addresses=["127.0.0.1"]))
    sender_pc = RTCPeerConnection(client_configuration())
    receiver_pc = RTCPeerConnection(client_configuration())
    try:
        clip = clips[0]
        video = PacketSource("video", clip.video, clip.video_intra)
        transceiver = sender_pc.addTransceiver(video, direction="sendonly")
        redirect_keyframe_requests(transceiver.sender, video.request_keyframe)
        taps: list[ReceiverTap] = []
        receiver_pc.on(
            "track",
            lambda track: taps.append(
                ReceiverTap(
                    next(t.receiver for t in receiver_pc.getTransceivers() if t.receiver.track is track)
                )
            ),
        )
        await sender_pc.setLocalDescription(await sender_pc.createOffer())
        await receiver_pc.setRemoteDescription(sender_pc.localDescription)
        await receiver_pc.setLocalDescription(await receiver_pc.createAnswer())
        await sender_pc.setRemoteDescription(
            RTCSessionDescription(sdp=receiver_pc.localDescription.sdp, type="answer")
        )
        [tap] = taps
        packets = []
        deadline = time.monotonic() + 2.5
        while time.monotonic() < deadline:
            packets.append(await asyncio.wait_for(tap.receiver.track.recv(), 2))

        served = [data for data, _ in video.served]
        assert [bytes(p) for p in packets] == served[: len(packets)]
        assert packets[0].is_keyframe and not any(p.is_keyframe for p in packets[1:])
        assert packets[0].time_base == fractions.Fraction(1, VIDEO_CLOCK)
        assert {b.pts - a.pts for a, b in zip(packets, packets[1:], strict=False)} == {VIDEO_CLOCK // 15}
        assert tap.sender_report is not None
        assert abs(tap.sender_report.ntp_time - time.time()) < 2

        assert tap.request_keyframe()
        assert await wait_for(lambda: video.keyframe_requests == 1, 2)
        keyframe = await asyncio.wait_for(tap.receiver.track.recv(), 2)
        while not keyframe.is_keyframe:
            keyframe = await asyncio.wait_for(tap.receiver.track.recv(), 2)
        assert bytes(keyframe) in clip.video_intra

        await sender_pc.close()
        with pytest.raises(MediaStreamError):
            while True:
                await asyncio.wait_for(tap.receiver.track.recv(), 3)
    finally:
        await sender_pc.close()
        await receiver_pc.close()
        uninstall_host_addresses()


# --- packet-level forwarding: the transport tap and the negotiated parameters ---------------------


def test_dtls_internals_the_transport_tap_relies_on_are_unchanged() -> None:
    setup = source(rtcdtlstransport.RTCDtlsTransport._setup_srtp)
    assert "self._rx_srtp = Session(" in setup and "self._tx_srtp = Session(" in setup
    assert "allow_repeat_tx = True" in setup  # a NACKed packet may be resent with its sequence number
    start = source(rtcdtlstransport.RTCDtlsTransport.start)
    # the state turns connected (and the peer connection's event fires) before the receive loop starts
    assert start.index("self._set_state(State.CONNECTED)") < start.index("self.__run()")
    recv = source(rtcdtlstransport.RTCDtlsTransport._recv_next)
    assert "first_byte > 127 and first_byte < 192" in recv and "self._rx_srtp.unprotect" in recv
    pc_source = inspect.getsource(aiortc.rtcpeerconnection.RTCPeerConnection)
    assert 'dtlsTransport.on("statechange", self.__updateConnectionState)' in pc_source
    assert 'self.emit("connectionstatechange")' in pc_source
    assert "self._connection = gatherer._connection" in source(
        aiortc.rtcicetransport.RTCIceTransport.__init__
    )


def test_aioice_internals_the_transport_tap_relies_on_are_unchanged() -> None:
    init = source(aioice.ice.Connection.__init__)
    assert "self._nominated: dict[int, CandidatePair] = {}" in init
    assert "self._protocols: list[StunProtocol] = []" in init
    receive = source(aioice.ice.StunProtocol.datagram_received)
    assert "self.receiver.data_received(data, self.local_candidate.component)" in receive
    pair = aioice.ice.CandidatePair
    assert isinstance(pair.remote_addr, property) and "self.protocol = protocol" in source(pair.__init__)
    assert "self.transport.sendto(data, addr)" in source(aioice.ice.StunProtocol.send_data)


def test_sender_and_transceiver_internals_for_packet_forwarding_are_unchanged() -> None:
    init = source(RTCRtpSender.__init__)
    assert "self._ssrc = random32()" in init and "self._rtx_ssrc = random32()" in init
    run_rtcp = source(RTCRtpSender._run_rtcp)
    assert "await self._send_rtcp(packets)" in run_rtcp
    assert "self.__rtcp_started.set()" in run_rtcp and "self.__rtcp_exited.set()" in run_rtcp
    assert "self.__rtcp_task = asyncio.ensure_future(self._run_rtcp())" in source(RTCRtpSender.send)
    assert "await asyncio.gather(self.__rtp_exited.wait(), self.__rtcp_exited.wait())" in source(
        RTCRtpSender.stop
    )
    assert parameters(RTCRtpSender._send_rtcp) == ["self", "packets"]
    pc_source = inspect.getsource(aiortc.rtcpeerconnection.RTCPeerConnection)
    assert "transceiver._codecs = common" in pc_source
    assert "transceiver._headerExtensions = find_common_header_extensions(" in pc_source
    assert "codecs=transceiver._codecs" in source(
        aiortc.rtcpeerconnection.RTCPeerConnection._RTCPeerConnection__localRtp  # type: ignore[attr-defined]
    )


@pytest.mark.media
async def test_forwarding_bypasses_aiortc_media_and_sends_only_translated_reports(room: Room) -> None:
    """Packets go through the tap only: aiortc's own transports move no RTP, its senders no RTCP."""
    publisher, viewer = room.client("judge", 0), room.client("clerk", 1)
    reports: list[RtcpSrPacket] = []
    await publisher.join()
    await viewer.join()
    assert await wait_for(lambda: viewer.count("judge", "video") > 10, 8)
    assert viewer.subscribe_pc is not None
    for transceiver in viewer.subscribe_pc.getTransceivers():
        receiver = transceiver.receiver
        handle = receiver._handle_rtcp_packet

        async def watch(packet: object, handle: object = handle) -> None:
            if isinstance(packet, RtcpSrPacket):
                reports.append(packet)
            await handle(packet)  # type: ignore[operator]

        receiver._handle_rtcp_packet = watch  # type: ignore[method-assign]

    judge = room.router._participants["judge"]
    clerk = room.router._participants["clerk"]
    assert judge.publish is not None and clerk.subscribe is not None
    inbound = judge.publish.pc.getTransceivers()[0].receiver.transport
    outbound = clerk.subscribe.pc.getTransceivers()[0].sender.transport
    rx_before = inbound._RTCDtlsTransport__rx_packets  # type: ignore[attr-defined]
    tx_before = outbound._RTCDtlsTransport__tx_packets  # type: ignore[attr-defined]
    received = viewer.count("judge", "video")
    await asyncio.sleep(2.5)
    assert viewer.count("judge", "video") > received + 20
    # DTLS records only (none once connected): the RTP and RTCP never reached aiortc
    assert inbound._RTCDtlsTransport__rx_packets - rx_before <= 2  # type: ignore[attr-defined]
    assert outbound._RTCDtlsTransport__tx_packets == tx_before  # type: ignore[attr-defined]
    assert judge.publish.ingress.tap.installed and clerk.subscribe.egress.tap.installed
    # sender reports reach the viewer: real wall-clock NTP times, from the down tracks' SSRCs
    assert reports, "no sender report reached the subscriber"
    ssrcs = {slot.track.leg.ssrc for slot in clerk.subscribe._slots}
    for report in reports:
        assert report.ssrc in ssrcs
        assert abs(unix_from_ntp(report.sender_info.ntp_timestamp) - time.time()) < 5
        assert report.sender_info.packet_count > 0
    # aiortc's own RTCP loop does not run on the subscribe leg's senders; they still stop at once
    senders = [transceiver.sender for transceiver in clerk.subscribe.pc.getTransceivers()]
    tasks = [getattr(sender, "_RTCRtpSender__rtcp_task", None) for sender in senders]
    started = [task for task in tasks if task is not None]
    assert len(started) >= 2  # the judge's audio and video
    for task in started:
        assert not task.done() and task.get_coro().__name__ == "idle"
    await asyncio.wait_for(clerk.subscribe.pc.close(), 5)
    assert all(task.done() for task in started)


class _Relay(asyncio.DatagramProtocol):
    """A TURN relay's UDP port that answers every request with success, or (``silent``) never."""

    def __init__(self, silent: bool) -> None:
        self.silent = silent
        self.requests: list[aioice.stun.Message] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        request = aioice.stun.parse_message(data)
        self.requests.append(request)
        if not self.silent and self.transport is not None:
            response = aioice.stun.Message(
                message_method=request.message_method,
                message_class=aioice.stun.Class.RESPONSE,
                transaction_id=request.transaction_id,
            )
            self.transport.sendto(bytes(response), addr)


async def _delete_allocation(silent: bool, limit: float | None) -> tuple[float, _Relay, bool, bool]:
    """Delete a (pretended) allocation at a local relay: seconds taken, the relay, finished, socket closed."""
    loop = asyncio.get_running_loop()
    relay_transport, relay = await loop.create_datagram_endpoint(
        lambda: _Relay(silent), local_addr=("127.0.0.1", 0)
    )
    address = relay_transport.get_extra_info("sockname")
    client = aioice.turn.TurnClientUdpProtocol(address, "user", "secret", 600, 300)
    await loop.create_datagram_endpoint(lambda: client, remote_addr=address)
    installed = hasattr(aioice.turn.TurnClientMixin.delete, "original")  # by a router made earlier
    uninstall_turn_release_limit()
    if limit is not None:
        install_turn_release_limit(limit)
    started = time.monotonic()
    deletion = asyncio.ensure_future(client.delete())
    try:
        done, _ = await asyncio.wait([deletion], timeout=3.0)
        return time.monotonic() - started, relay, bool(done), client.transport.is_closing()
    finally:
        deletion.cancel()
        uninstall_turn_release_limit()
        if installed:
            install_turn_release_limit()
        relay_transport.close()


async def test_closing_a_relayed_candidate_waits_for_an_unreachable_relay_only_a_bounded_time() -> None:
    """aioice retransmits the deletion for ~31 s; with the limit the socket is closed after it."""
    seconds, relay, finished, closed = await _delete_allocation(silent=True, limit=None)
    assert not finished and len(relay.requests) >= 3  # still retransmitting after 3 s
    seconds, relay, finished, closed = await _delete_allocation(silent=True, limit=0.5)
    assert finished and closed and 0.45 < seconds < 1.5, seconds
    assert relay.requests and all(r.attributes.get("LIFETIME") == 0 for r in relay.requests)
    # a relay that answers: the deletion completes at once, as before
    seconds, relay, finished, closed = await _delete_allocation(silent=False, limit=0.5)
    assert finished and closed and seconds < 0.3 and len(relay.requests) == 1
