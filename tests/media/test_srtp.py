"""SrtpContext against pylibsrtp's own Session: the same bytes out, the same refusals.

It reaches into pylibsrtp 1.0's privates (``_srtp``, ``_cdata``, ``_buffer``, ``_binding``):
if a pylibsrtp release changes them, these tests fail before any media does.
"""

from __future__ import annotations

import struct

import pylibsrtp
import pytest
from pylibsrtp import Policy, Session

from media.srtp import SrtpContext

KEY = bytes(range(30))


def _session(direction: int) -> Session:
    policy = Policy(key=KEY, ssrc_type=direction, srtp_profile=Policy.SRTP_PROFILE_AES128_CM_SHA1_80)
    policy.allow_repeat_tx = True
    return Session(policy)


def _rtp(seq: int, size: int = 1100) -> bytes:
    return struct.pack("!BBHII", 0x80, 96, seq, seq * 3000, 0x1234) + bytes([seq & 0xFF]) * size


def _rtcp_rr() -> bytes:
    return struct.pack("!BBHI", 0x80, 201, 1, 0x5678)


def test_the_private_details_it_uses_are_there() -> None:
    session = _session(Policy.SSRC_ANY_OUTBOUND)
    assert hasattr(session, "_srtp") and hasattr(session, "_cdata") and hasattr(session, "_buffer")
    assert len(session._buffer) >= 1500  # type: ignore[attr-defined]
    from pylibsrtp._binding import lib

    assert callable(lib.srtp_protect) and callable(lib.srtp_unprotect_rtcp)


def test_protect_gives_what_pylibsrtp_gives() -> None:
    ours, theirs = SrtpContext(_session(Policy.SSRC_ANY_OUTBOUND)), _session(Policy.SSRC_ANY_OUTBOUND)
    for seq in range(50):
        packet = _rtp(seq, 200 + seq * 20)
        assert ours.protect(packet) == theirs.protect(packet)
    assert ours.protect_rtcp(_rtcp_rr()) == theirs.protect_rtcp(_rtcp_rr())


def test_unprotect_round_trip_and_refusals() -> None:
    sender = _session(Policy.SSRC_ANY_OUTBOUND)
    receiver = SrtpContext(_session(Policy.SSRC_ANY_INBOUND))
    protected = sender.protect(_rtp(7))
    assert receiver.unprotect(protected) == _rtp(7)
    assert receiver.unprotect(protected) is None  # a replay
    tampered = bytearray(sender.protect(_rtp(8)))
    tampered[20] ^= 0xFF
    assert receiver.unprotect(bytes(tampered)) is None  # not authentic
    assert receiver.unprotect(b"\x80") is None  # malformed
    assert receiver.unprotect_rtcp(sender.protect_rtcp(_rtcp_rr())) == _rtcp_rr()
    assert receiver.unprotect_rtcp(_rtcp_rr() + bytes(20)) is None


@pytest.mark.parametrize("size", [1500 - pylibsrtp.SRTP_MAX_TRAILER_LEN - 12 + 1, 4000])
def test_a_packet_too_long_for_the_buffer_is_refused_not_written(size: int) -> None:
    context = SrtpContext(_session(Policy.SSRC_ANY_OUTBOUND))
    assert context.protect(_rtp(1, size)) is None
    assert context.protect(_rtp(2)) is not None  # and the session still works
