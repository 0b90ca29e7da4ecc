"""SRTP on the packet path without pylibsrtp's per-call overhead.

pylibsrtp 1.0's ``Session`` methods check the argument's type, allocate a length cell and go
through a name-mangled helper and an error-raising check on every call — as much Python as the
cipher itself costs.  :class:`SrtpContext` calls the same libsrtp functions on the same session
and work buffer, with its length cell allocated once, and answers ``None`` instead of raising.

Private pylibsrtp details used (``tests/media/test_srtp.py`` guards each): ``Session._srtp``
(the ``srtp_t *``), ``Session._cdata`` (its work buffer) and ``Session._buffer`` (a buffer view
of it), and ``pylibsrtp._binding`` (``ffi`` and ``lib``).  A context must be used on the thread
that uses its session (one event loop): the work buffer is the session's own.
:func:`native_handles` gives the same session to C (:mod:`media.sender`).
"""

from __future__ import annotations

from typing import Any

import pylibsrtp
from pylibsrtp._binding import ffi, lib

_srtp_protect = lib.srtp_protect


def native_handles(session: pylibsrtp.Session) -> tuple[int, int, int]:
    """Addresses of libsrtp's ``srtp_protect`` and ``srtp_protect_rtcp`` and of the session's
    ``srtp_t``, for C code that protects with this very session (the session must outlive it)."""
    internals: Any = session
    return (
        int(ffi.cast("uintptr_t", ffi.addressof(lib, "srtp_protect"))),
        int(ffi.cast("uintptr_t", ffi.addressof(lib, "srtp_protect_rtcp"))),
        int(ffi.cast("uintptr_t", internals._srtp[0])),
    )


_RTP_TRAILER = pylibsrtp.SRTP_MAX_TRAILER_LEN
_RTCP_TRAILER = pylibsrtp.SRTP_MAX_SRTCP_TRAILER_LEN


class SrtpContext:
    """Protects or unprotects packets with one pylibsrtp ``Session``; ``None`` when libsrtp refuses."""

    def __init__(self, session: pylibsrtp.Session) -> None:
        self.session = session  # keeps the libsrtp context alive
        internals: Any = session
        self._srtp = internals._srtp[0]
        self._cdata = internals._cdata
        self._buffer = internals._buffer
        self._capacity = len(self._buffer)
        self._length = ffi.new("int *")

    def protect(self, packet: bytes) -> bytes | None:
        """The SRTP packet for an RTP packet (the hot path: :meth:`_process` written out)."""
        size = len(packet)
        if size > self._capacity - _RTP_TRAILER:
            return None
        length = self._length
        length[0] = size
        buffer = self._buffer
        buffer[0:size] = packet
        if _srtp_protect(self._srtp, self._cdata, length):
            return None
        return buffer[0 : length[0]]

    def protect_rtcp(self, packet: bytes) -> bytes | None:
        """The SRTCP packet for a compound RTCP packet."""
        return self._process(packet, lib.srtp_protect_rtcp, _RTCP_TRAILER)

    def unprotect(self, packet: bytes) -> bytes | None:
        """The RTP packet inside an SRTP packet (``None``: not authentic, replayed or malformed)."""
        return self._process(packet, lib.srtp_unprotect, 0)

    def unprotect_rtcp(self, packet: bytes) -> bytes | None:
        """The compound RTCP packet inside an SRTCP packet."""
        return self._process(packet, lib.srtp_unprotect_rtcp, 0)

    def _process(self, packet: bytes, function: Any, trailer: int) -> bytes | None:
        size = len(packet)
        if size > self._capacity - trailer:
            return None
        length = self._length
        length[0] = size
        buffer = self._buffer
        buffer[0:size] = packet
        if function(self._srtp, self._cdata, length):
            return None
        return buffer[0 : length[0]]
