"""The C sender (media/_sender.c) against the Python one: the same datagrams, the same refusals.

SRTP with the same keys is deterministic, so two senders on twin sessions must put byte-identical
datagrams on the wire; where abs-send-time differs (it is the sending time), the packets are
decrypted and compared around it.  Real UDP sockets on 127.0.0.1 and ::1.
"""

from __future__ import annotations

import gc
import socket
import struct
import time
from collections.abc import Iterator
from typing import Any

import pytest
from media_harness import Room, wait_for
from pylibsrtp import Policy, Session
from test_media_hostile import flows_on, two_way

from media import sender as sender_module
from media.rtp import build_extensions
from media.sender import NativeSender, PacketSender, PythonSender, open_sender, rtp_packet
from media.srtp import native_handles

KEY = bytes(range(30))
MID_AND_ABS_SEND_TIME = build_extensions([(4, b"1"), (2, b"\x00\x00\x00")])
ABS_SEND_TIME_AT = 4 + 2 + 1  # block header, the mid element (id/len byte + 1), then the id/len byte


def _session(direction: int) -> Session:
    policy = Policy(key=KEY, ssrc_type=direction, srtp_profile=Policy.SRTP_PROFILE_AES128_CM_SHA1_80)
    policy.allow_repeat_tx = True
    return Session(policy)


class Wire:
    """A receiving socket and a sending one, on loopback."""

    def __init__(self, family: int = socket.AF_INET, host: str = "127.0.0.1") -> None:
        self.receiver = socket.socket(family, socket.SOCK_DGRAM)
        self.receiver.bind((host, 0))
        self.receiver.settimeout(1.0)
        self.sender = socket.socket(family, socket.SOCK_DGRAM)
        self.sender.bind((host, 0))
        self.remote: tuple[str, int] = self.receiver.getsockname()[:2]

    def native(self, session: Session) -> PacketSender:
        assert NativeSender is not None
        return NativeSender(session, *native_handles(session), self.sender.fileno(), *self.remote)

    def python(self, session: Session) -> PacketSender:
        return PythonSender(session, self.sender, self.remote)

    def received(self) -> bytes:
        return self.receiver.recv(4096)

    def nothing_received(self) -> bool:
        self.receiver.settimeout(0.05)
        try:
            self.receiver.recv(4096)
        except TimeoutError:
            return True
        finally:
            self.receiver.settimeout(1.0)
        return False

    def close(self) -> None:
        self.receiver.close()
        self.sender.close()


@pytest.fixture
def wire() -> Iterator[Wire]:
    wire = Wire()
    yield wire
    wire.close()


def _fields(seq: int, extension: bytes = b"", at: int = -1, size: int = 1100) -> tuple[Any, ...]:
    first = 0x90 if extension else 0x80
    marker = 0x80 if seq % 7 == 0 else 0
    payload = bytes((seq + i) & 0xFF for i in range(size))
    return (first, marker | 96, seq & 0xFFFF, seq * 3000 & 0xFFFFFFFF, 0xCAFE0001, extension, at, payload)


def test_the_c_sender_is_built() -> None:
    """The install builds media/_sender.c (gcc and the Python headers are among the system packages)."""
    assert NativeSender is not None, "media._sender is not built: the server sends from Python"


def test_forwarded_packets_are_byte_identical_to_pythons(wire: Wire) -> None:
    native = wire.native(_session(Policy.SSRC_ANY_OUTBOUND))
    python = wire.python(_session(Policy.SSRC_ANY_OUTBOUND))
    extension = build_extensions([(4, b"1")])
    for seq in range(65530, 65560):  # across the sequence number wrap (the rollover counter moves)
        for fields in (_fields(seq, size=1 + seq % 1200), _fields(seq, extension)):
            assert native.forward(*fields) == python.forward(*fields) > 0
            assert wire.received() == wire.received()
    plain = rtp_packet(*_fields(7))
    assert native.send(plain) == python.send(plain) == len(wire.received()) == len(wire.received())


def test_abs_send_time_is_the_sending_time_and_nothing_else_differs(wire: Wire) -> None:
    native = wire.native(_session(Policy.SSRC_ANY_OUTBOUND))
    python = wire.python(_session(Policy.SSRC_ANY_OUTBOUND))
    receiving = _session(Policy.SSRC_ANY_INBOUND), _session(Policy.SSRC_ANY_INBOUND)
    for seq in range(20):
        fields = _fields(seq, MID_AND_ABS_SEND_TIME, ABS_SEND_TIME_AT)
        now = int(time.time() * 262144) & 0xFFFFFF
        native.forward(*fields)
        python.forward(*fields)
        ours, theirs = receiving[0].unprotect(wire.received()), receiving[1].unprotect(wire.received())
        at = 12 + ABS_SEND_TIME_AT
        assert ours[:at] == theirs[:at] and ours[at + 3 :] == theirs[at + 3 :]
        assert ours[12 : 12 + 4] == b"\xbe\xde\x00\x02" and ours[12 + 4 : 12 + 6] == bytes([0x40, ord("1")])
        sent = int.from_bytes(ours[at : at + 3], "big")
        assert 0 <= (sent - now) & 0xFFFFFF < 262144 // 100  # within 10 ms of the call (6.18 fixed point)


def test_rtcp_is_identical_to_pythons(wire: Wire) -> None:
    native = wire.native(_session(Policy.SSRC_ANY_OUTBOUND))
    python = wire.python(_session(Policy.SSRC_ANY_OUTBOUND))
    receiver_report = struct.pack("!BBHI", 0x80, 201, 1, 0x5678)
    for _ in range(3):  # the SRTCP index advances alike
        assert native.send_rtcp(receiver_report) == python.send_rtcp(receiver_report) > 0
        first, second = wire.received(), wire.received()
        assert first == second and first[:8] == receiver_report


def test_what_neither_can_send_is_refused_alike(wire: Wire) -> None:
    native = wire.native(_session(Policy.SSRC_ANY_OUTBOUND))
    python = wire.python(_session(Policy.SSRC_ANY_OUTBOUND))
    huge = _fields(1, size=4000)
    assert native.forward(*huge) == python.forward(*huge) == -1
    assert native.send(rtp_packet(*huge)) == python.send(rtp_packet(*huge)) == -1
    assert wire.nothing_received()
    assert native.forward(*_fields(2)) > 0 and python.forward(*_fields(2)) > 0  # and they carry on
    assert wire.received() == wire.received()


def test_bad_arguments_raise_instead_of_sending(wire: Wire) -> None:
    native = wire.native(_session(Policy.SSRC_ANY_OUTBOUND))
    first, second, seq, timestamp, ssrc, extension, at, payload = _fields(1, MID_AND_ABS_SEND_TIME, 9)
    with pytest.raises(TypeError):
        native.forward(first, second, seq, timestamp, ssrc, extension, at, "text")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        native.forward(first, None, seq, timestamp, ssrc, extension, at, payload)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        native.forward(first, second)  # type: ignore[call-arg]
    # abs-send-time's 3 bytes must lie inside the extension block
    assert native.forward(first, second, seq, timestamp, ssrc, extension, len(extension) - 2, payload) == -1
    assert wire.nothing_received()
    with pytest.raises(ValueError):
        NativeSender(object(), 0, 0, 0, wire.sender.fileno(), *wire.remote)  # type: ignore[misc]
    session = _session(Policy.SSRC_ANY_OUTBOUND)
    with pytest.raises(ValueError, match="numeric"):
        NativeSender(session, *native_handles(session), wire.sender.fileno(), "localhost", 5000)  # type: ignore[misc]


def test_a_closed_sender_sends_nothing_and_leaves_the_connections_socket_open(wire: Wire) -> None:
    native = wire.native(_session(Policy.SSRC_ANY_OUTBOUND))
    native.close()
    assert native.forward(*_fields(1)) == -1 and native.send_rtcp(b"\x80\xc9\x00\x01\x00\x00\x00\x01") == -1
    assert wire.nothing_received()
    wire.sender.sendto(b"still open", wire.remote)  # the sender had its own descriptor (dup)
    assert wire.received() == b"still open"


def test_it_keeps_sending_on_its_own_socket_when_the_connections_descriptor_is_reused(wire: Wire) -> None:
    """aioice closes its socket and the number goes to a new one: the sender must not write into that."""
    native = wire.native(_session(Policy.SSRC_ANY_OUTBOUND))
    port = wire.sender.getsockname()[1]
    number = wire.sender.fileno()
    wire.sender.close()
    other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        other.bind(("127.0.0.1", 0))
        assert other.fileno() == number  # the lowest free descriptor: the same number
        assert native.forward(*_fields(1)) > 0
        _, source = wire.receiver.recvfrom(4096)
        assert source[1] == port != other.getsockname()[1]
    finally:
        other.close()


def test_the_session_stays_alive_as_long_as_the_sender(wire: Wire) -> None:
    session = _session(Policy.SSRC_ANY_OUTBOUND)
    native = wire.native(session)
    del session
    gc.collect()
    assert native.forward(*_fields(1)) > 0
    assert _session(Policy.SSRC_ANY_INBOUND).unprotect(wire.received()) == rtp_packet(*_fields(1))


def test_ipv6() -> None:
    wire = Wire(socket.AF_INET6, "::1")
    try:
        native = wire.native(_session(Policy.SSRC_ANY_OUTBOUND))
        assert native.forward(*_fields(1)) > 0
        assert _session(Policy.SSRC_ANY_INBOUND).unprotect(wire.received()) == rtp_packet(*_fields(1))
    finally:
        wire.close()


class _Transport:
    """The part of an asyncio datagram transport the senders use."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def get_extra_info(self, name: str) -> Any:
        return self.sock if name == "socket" else None

    def sendto(self, data: bytes, address: tuple[str, int]) -> None:
        self.sock.sendto(data, address)


def test_a_connection_gets_the_c_sender_and_an_address_it_cannot_take_gets_pythons(wire: Wire) -> None:
    transport = _Transport(wire.sender)
    assert isinstance(open_sender(_session(Policy.SSRC_ANY_OUTBOUND), transport, wire.remote), NativeSender)  # type: ignore[arg-type]
    named = open_sender(_session(Policy.SSRC_ANY_OUTBOUND), transport, ("localhost", wire.remote[1]))
    assert isinstance(named, PythonSender)
    assert named.forward(*_fields(1)) > 0
    assert _session(Policy.SSRC_ANY_INBOUND).unprotect(wire.received()) == rtp_packet(*_fields(1))


class _Relayed(_Transport):
    """A TURN relay's transport (aioice's TurnTransport): no socket of its own; sendto wraps for the relay."""

    def get_extra_info(self, name: str) -> Any:
        return None


def test_a_relayed_pair_gets_pythons_sender_through_the_relays_transport(wire: Wire) -> None:
    sender = open_sender(_session(Policy.SSRC_ANY_OUTBOUND), _Relayed(wire.sender), wire.remote)
    assert isinstance(sender, PythonSender)
    assert sender.forward(*_fields(1)) > 0
    assert _session(Policy.SSRC_ANY_INBOUND).unprotect(wire.received()) == rtp_packet(*_fields(1))


class _Undupable(_Transport):
    """A transport whose socket cannot be duplicated (here: already closed; in life: out of descriptors)."""

    def get_extra_info(self, name: str) -> Any:
        closed = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        closed.close()
        return closed


def test_a_socket_that_cannot_be_duplicated_gets_pythons_sender(
    wire: Wire, caplog: pytest.LogCaptureFixture
) -> None:
    sender = open_sender(_session(Policy.SSRC_ANY_OUTBOUND), _Undupable(wire.sender), wire.remote)
    assert isinstance(sender, PythonSender)
    assert any(r.levelname == "WARNING" and "sending from Python" in r.message for r in caplog.records)
    assert sender.forward(*_fields(1)) > 0
    assert _session(Policy.SSRC_ANY_INBOUND).unprotect(wire.received()) == rtp_packet(*_fields(1))


@pytest.mark.media
async def test_a_hearing_works_the_same_when_every_connection_sends_from_python(
    room: Room, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An install without a compiler: real peers still get every frame whole, both ways, and the RTCP."""
    monkeypatch.setattr(sender_module, "NativeSender", None)
    a, b = await two_way(room)
    legs = [leg for p in room.router._participants.values() for leg in (p.publish, p.subscribe) if leg]
    taps = [leg.ingress.tap if hasattr(leg, "ingress") else leg.egress.tap for leg in legs]  # type: ignore[union-attr]
    assert len(taps) == 4 and all(isinstance(tap.sender, PythonSender) for tap in taps)
    assert await flows_on(b, "a") and await flows_on(a, "b")
    for receiver, publisher, source in ((b, "a", a.video), (a, "b", b.video)):
        assert source is not None
        assert await wait_for(lambda r=receiver, p=publisher: len(r.frames_from(p, "video")) > 30, 5)
        served = {data for data, _ in source.served}
        assert all(frame.data in served for frame in receiver.frames_from(publisher, "video"))
    subscribe = room.router._participants["b"].subscribe
    assert subscribe is not None
    received = b.frames_from("a", "video")
    # the Python sender counts what it sent: at least every video byte B got (and its audio and RTCP)
    assert subscribe.egress.tap.bytes_sent > sum(len(frame.data) for frame in received)
    assert subscribe.egress.tap.packets_sent >= len(received)
    # sender reports went out and came back in receiver reports (each every ~1 s: it may take seconds)
    link = subscribe.egress.link
    assert await wait_for(lambda: link.round_trip_s is not None, 5)
