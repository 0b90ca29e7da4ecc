"""RTCP the server reads and writes: parsing compound packets, building reports and feedback.

Built on aiortc's RTCP packet classes (``aiortc.rtp``, a public module of the pinned version);
RTCP is a few packets per second per stream, so none of this is on the per-packet path.
"""

from __future__ import annotations

import struct
import time

from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_FIR,
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    AnyRtcpPacket,
    RtcpByePacket,
    RtcpPacket,
    RtcpPsfbPacket,
    RtcpReceiverInfo,
    RtcpRrPacket,
    RtcpRtpfbPacket,
    RtcpSdesPacket,
    RtcpSenderInfo,
    RtcpSourceInfo,
    RtcpSrPacket,
    pack_remb_fci,
    unpack_remb_fci,
)

NTP_EPOCH_OFFSET = 2208988800  # seconds from 1900-01-01 (NTP) to 1970-01-01 (Unix)

__all__ = [
    "AnyRtcpPacket",
    "RtcpByePacket",
    "RtcpPsfbPacket",
    "RtcpReceiverInfo",
    "RtcpRrPacket",
    "RtcpRtpfbPacket",
    "RtcpSdesPacket",
    "RtcpSrPacket",
    "build_nack",
    "build_pli",
    "build_remb",
    "build_rr",
    "build_sr",
    "fir_targets",
    "is_fir",
    "is_nack",
    "is_pli",
    "ntp_from_unix",
    "ntp_middle",
    "parse_rtcp",
    "remb_bitrate",
    "unix_from_ntp",
]


def parse_rtcp(data: bytes) -> list[AnyRtcpPacket] | None:
    """The packets of a compound RTCP packet; None if it is malformed."""
    try:
        return RtcpPacket.parse(data)
    except (ValueError, struct.error, IndexError):
        return None


def ntp_from_unix(seconds: float) -> int:
    """64-bit NTP time for a Unix time."""
    return int((seconds + NTP_EPOCH_OFFSET) * (1 << 32)) & 0xFFFFFFFFFFFFFFFF


def unix_from_ntp(ntp: int) -> float:
    """Unix time of a 64-bit NTP time."""
    return (ntp >> 32) - NTP_EPOCH_OFFSET + (ntp & 0xFFFFFFFF) / (1 << 32)


def ntp_middle(ntp: int) -> int:
    """The middle 32 bits of an NTP time, as LSR fields carry it."""
    return (ntp >> 16) & 0xFFFFFFFF


def is_nack(packet: AnyRtcpPacket) -> bool:
    """A generic NACK (RFC 4585 section 6.2.1)."""
    return isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTCP_RTPFB_NACK


def is_pli(packet: AnyRtcpPacket) -> bool:
    """A picture loss indication."""
    return isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_PLI


def is_fir(packet: AnyRtcpPacket) -> bool:
    """A full intra request (RFC 5104 section 4.3.1)."""
    return isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_FIR


def fir_targets(packet: RtcpPsfbPacket) -> list[int]:
    """The media SSRCs a FIR asks keyframes of (its FCI entries)."""
    fci = packet.fci
    return [struct.unpack_from("!L", fci, offset)[0] for offset in range(0, len(fci) - 7, 8)]


def remb_bitrate(packet: AnyRtcpPacket) -> tuple[int, list[int]] | None:
    """(bitrate in bit/s, SSRCs) of a REMB message, None for anything else."""
    if not isinstance(packet, RtcpPsfbPacket) or packet.fmt != RTCP_PSFB_APP or packet.fci[:4] != b"REMB":
        return None
    try:
        return unpack_remb_fci(packet.fci)
    except (ValueError, struct.error, IndexError):
        return None


def build_pli(sender_ssrc: int, media_ssrc: int) -> bytes:
    """A picture loss indication for one media SSRC."""
    return bytes(RtcpPsfbPacket(fmt=RTCP_PSFB_PLI, ssrc=sender_ssrc, media_ssrc=media_ssrc))


def build_nack(sender_ssrc: int, media_ssrc: int, lost: list[int]) -> bytes:
    """A generic NACK listing lost sequence numbers."""
    packet = RtcpRtpfbPacket(fmt=RTCP_RTPFB_NACK, ssrc=sender_ssrc, media_ssrc=media_ssrc)
    packet.lost = sorted(lost)
    return bytes(packet)


def build_remb(sender_ssrc: int, bitrate: int, ssrcs: list[int]) -> bytes:
    """Receiver estimated maximum bitrate for the given media SSRCs."""
    return bytes(
        RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=sender_ssrc, media_ssrc=0, fci=pack_remb_fci(bitrate, ssrcs))
    )


def build_rr(sender_ssrc: int, reports: list[RtcpReceiverInfo]) -> bytes:
    """A receiver report with the given report blocks."""
    return bytes(RtcpRrPacket(ssrc=sender_ssrc, reports=reports))


def build_sr(
    ssrc: int, ntp_time: int, rtp_timestamp: int, packets: int, octets: int, cname: str | None = None
) -> bytes:
    """A sender report (and an SDES CNAME when given) for one sending SSRC."""
    data = bytes(
        RtcpSrPacket(
            ssrc=ssrc,
            sender_info=RtcpSenderInfo(
                ntp_timestamp=ntp_time,
                rtp_timestamp=rtp_timestamp & 0xFFFFFFFF,
                packet_count=packets & 0xFFFFFFFF,
                octet_count=octets & 0xFFFFFFFF,
            ),
        )
    )
    if cname:
        data += bytes(RtcpSdesPacket(chunks=[RtcpSourceInfo(ssrc=ssrc, items=[(1, cname.encode())])]))
    return data


def now_ntp() -> int:
    """The server's wall clock as NTP time."""
    return ntp_from_unix(time.time())
