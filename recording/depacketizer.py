"""Encoded frames out of in-order RTP payloads: VP8 (RFC 7741), H.264 (RFC 6184) and Opus (RFC 7587).

A depacketizer gets one track's packets in sequence order (see :mod:`recording.reorder`) and
is told where packets are missing.  A video frame is complete when every packet of its RTP
timestamp arrived, up to the one with the marker bit; an incomplete frame is dropped, and when
what was dropped was something later frames refer to, :attr:`Depacketizer.damaged` is set so
the recorder waits for (and asks for) a keyframe.  Nothing here raises on malformed payloads:
they count as lost.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from media.contract import RtpPacket
from recording.codecs import vp8_keyframe_size
from recording.h264 import NAL_IDR, NAL_SPS, sps_size

_START_CODE = b"\x00\x00\x00\x01"  # Annex B, as aiortc's depayloader wrote H.264 frames
_H264_STAP_A = 24
_H264_FU_A = 28


class _Incomplete(Exception):
    """A packet that continues something whose beginning was lost (not malformed, just unusable)."""


@dataclass(frozen=True, slots=True)
class AssembledFrame:
    """One encoded frame (or Opus packet) put together from its packets."""

    data: bytes
    timestamp: int  # 32-bit RTP time of its packets
    arrival: float  # when the earliest of its packets arrived (server wall clock)
    keyframe: bool
    size: tuple[int, int] | None = None  # video keyframes, from the bitstream


@dataclass
class DepacketizerStats:
    """What a depacketizer made of one track's packets."""

    frames: int = 0
    frames_dropped: int = 0  # incomplete or unreadable
    malformed: int = 0  # packets whose payload could not be parsed


class Depacketizer:
    """Turns one track's in-order packets into frames; the base class is for Opus (payload = packet)."""

    def __init__(self) -> None:
        self.stats = DepacketizerStats()
        self.damaged = False  # frames later ones depend on were lost: wait for a keyframe

    def push(self, packet: RtpPacket) -> list[AssembledFrame]:
        """Take the next packet in sequence; return the frames it completes."""
        if not packet.payload:
            return []  # padding
        self.stats.frames += 1
        return [AssembledFrame(packet.payload, packet.timestamp, packet.arrival, True)]

    def lost(self, count: int) -> None:
        """``count`` packets are missing before the next one pushed (0: the sequence restarted)."""

    def reset(self) -> None:
        """Forget any frame in progress (after a recess or a restart)."""


class _Parsed:
    """The part of one video packet that goes into its frame."""

    __slots__ = ("chunks", "starts_frame", "picture_id", "picture_id_mod", "non_reference", "nal_types")

    def __init__(self) -> None:
        self.chunks: list[bytes | memoryview] = []
        self.starts_frame = False  # the first packet of a frame
        self.picture_id: int | None = None
        self.picture_id_mod = 0
        self.non_reference = False
        self.nal_types: list[int] = []


class _VideoDepacketizer(Depacketizer):
    """Groups packets by timestamp into frames and drops the incomplete ones."""

    def __init__(self) -> None:
        super().__init__()
        self._parts: list[bytes | memoryview] = []
        self._in_frame = False
        self._timestamp = 0
        self._arrival = 0.0
        self._broken = False
        self._non_reference = False
        self._nal_types: list[int] = []
        self._gap = False  # packets went missing between the last frame and the next
        self._last_picture_id: int | None = None

    def push(self, packet: RtpPacket) -> list[AssembledFrame]:
        payload = packet.payload
        if not payload:
            return []  # padding: keeps the sequence, carries nothing
        out: list[AssembledFrame] = []
        if self._in_frame and packet.timestamp != self._timestamp:
            out.extend(self._finish())  # the previous frame never saw its marker
        try:
            parsed = self._parse(payload)
        except _Incomplete:
            parsed = None
        except (ValueError, IndexError, struct.error):
            self.stats.malformed += 1
            parsed = None
        if not self._in_frame:
            self._begin(packet, parsed)
        elif packet.arrival < self._arrival:
            self._arrival = packet.arrival  # its first packet came late (a retransmission)
        if parsed is None:
            self._broken = True
        else:
            self._parts.extend(parsed.chunks)
            self._nal_types.extend(parsed.nal_types)
        if packet.marker:
            out.extend(self._finish())
        return out

    def lost(self, count: int) -> None:
        if self._in_frame:
            self._broken = True
        else:
            self._gap = True
        if count == 0:
            self._last_picture_id = None

    def reset(self) -> None:
        self._clear()
        self._gap = False
        self._last_picture_id = None

    def _begin(self, packet: RtpPacket, parsed: _Parsed | None) -> None:
        self._in_frame = True
        self._timestamp = packet.timestamp
        self._arrival = packet.arrival
        self._broken = parsed is None or not parsed.starts_frame
        self._non_reference = parsed is not None and parsed.non_reference
        if self._gap:
            self._gap = False
            if not self._continues(parsed):
                self.damaged = True  # a whole frame may be gone
        if parsed is not None and parsed.picture_id is not None:
            self._last_picture_id = parsed.picture_id
        elif parsed is not None and parsed.starts_frame:
            self._last_picture_id = None

    def _continues(self, parsed: _Parsed | None) -> bool:
        """Whether a frame after missing packets is the very next picture (the gap held no frame)."""
        if parsed is None or parsed.picture_id is None or self._last_picture_id is None:
            return False
        return (parsed.picture_id - self._last_picture_id) % parsed.picture_id_mod == 1

    def _finish(self) -> list[AssembledFrame]:
        try:
            if self._broken:
                self.stats.frames_dropped += 1
                if not self._non_reference:
                    self.damaged = True
                return []
            data = b"".join(self._parts)
            keyframe, size = self._keyframe(data)
            self.stats.frames += 1
            return [AssembledFrame(data, self._timestamp, self._arrival, keyframe, size)]
        finally:
            self._clear()

    def _clear(self) -> None:
        self._parts = []
        self._nal_types = []
        self._in_frame = False
        self._broken = False
        self._non_reference = False

    def _parse(self, payload: bytes) -> _Parsed:
        raise NotImplementedError

    def _keyframe(self, data: bytes) -> tuple[bool, tuple[int, int] | None]:
        raise NotImplementedError


class Vp8Depacketizer(_VideoDepacketizer):
    """VP8 (RFC 7741): strips the payload descriptor; picture ids tell a lost frame from lost padding."""

    def _parse(self, payload: bytes) -> _Parsed:
        parsed = _Parsed()
        first = payload[0]
        pos = 1
        if first & 0x80:  # X: extension byte present
            ext = payload[1]
            pos = 2
            if ext & 0x80:  # I: picture id, 7 or 15 bits (M)
                if payload[pos] & 0x80:
                    parsed.picture_id = ((payload[pos] & 0x7F) << 8) | payload[pos + 1]
                    parsed.picture_id_mod = 1 << 15
                    pos += 2
                else:
                    parsed.picture_id = payload[pos] & 0x7F
                    parsed.picture_id_mod = 1 << 7
                    pos += 1
            if ext & 0x40:  # L: TL0PICIDX
                pos += 1
            if ext & 0x30:  # T or K: TID/Y/KEYIDX
                pos += 1
        if pos > len(payload):
            raise ValueError("VP8 payload descriptor is truncated")
        parsed.non_reference = bool(first & 0x20)  # N
        parsed.starts_frame = bool(first & 0x10) and first & 0x07 == 0  # S with partition 0
        parsed.chunks.append(memoryview(payload)[pos:])
        return parsed

    def _keyframe(self, data: bytes) -> tuple[bool, tuple[int, int] | None]:
        if not data or data[0] & 0x01:  # P bit set: an interframe
            return False, None
        return True, vp8_keyframe_size(data)


class H264Depacketizer(_VideoDepacketizer):
    """H.264 (RFC 6184, packetization mode 1): single NAL units, STAP-A and FU-A to Annex B."""

    def __init__(self) -> None:
        super().__init__()
        self._fragment: int | None = None  # NAL type of the FU-A being reassembled

    def lost(self, count: int) -> None:
        super().lost(count)
        self._fragment = None

    def reset(self) -> None:
        super().reset()
        self._fragment = None

    def _clear(self) -> None:
        super()._clear()
        self._fragment = None

    def _parse(self, payload: bytes) -> _Parsed:
        parsed = _Parsed()
        nal_type = payload[0] & 0x1F
        if nal_type == _H264_FU_A:
            fu_header = payload[1]
            original = fu_header & 0x1F
            if fu_header & 0x80:  # S: the NAL unit begins here
                parsed.starts_frame = not self._in_frame
                parsed.chunks += (_START_CODE, bytes([(payload[0] & 0xE0) | original]))
                parsed.nal_types.append(original)
                self._fragment = original
            elif self._fragment != original:
                raise _Incomplete  # its first fragment was lost
            parsed.chunks.append(memoryview(payload)[2:])
            if fu_header & 0x40:  # E: the NAL unit ends here
                self._fragment = None
            return parsed
        if self._fragment is not None:
            self._fragment = None
            raise _Incomplete  # the FU-A before it lost its last fragment
        if 1 <= nal_type <= 23:
            parsed.chunks += (_START_CODE, payload)
            parsed.nal_types.append(nal_type)
        elif nal_type == _H264_STAP_A:
            pos = 1
            while pos < len(payload):
                (size,) = struct.unpack_from("!H", payload, pos)
                pos += 2
                if size == 0 or pos + size > len(payload):
                    raise ValueError("STAP-A unit is truncated")
                parsed.chunks += (_START_CODE, memoryview(payload)[pos : pos + size])
                parsed.nal_types.append(payload[pos] & 0x1F)
                pos += size
            if not parsed.nal_types:
                raise ValueError("empty STAP-A")
        else:
            raise ValueError(f"H.264 packet type {nal_type} is not supported")
        parsed.starts_frame = not self._in_frame
        return parsed

    def _keyframe(self, data: bytes) -> tuple[bool, tuple[int, int] | None]:
        if NAL_IDR not in self._nal_types:
            return False, None
        size = None
        if NAL_SPS in self._nal_types:
            for nal in data.split(_START_CODE):
                if nal and nal[0] & 0x1F == NAL_SPS:
                    size = sps_size(nal)
                    break
        return True, size


def depacketizer_for(codec: str) -> Depacketizer:
    """A depacketizer for a codec named as in ``TrackInfo`` (``VP8``, ``H264``, ``opus``)."""
    name = codec.lower()
    if name == "vp8":
        return Vp8Depacketizer()
    if name == "h264":
        return H264Depacketizer()
    if name == "opus":
        return Depacketizer()
    raise ValueError(f"codec {codec!r} cannot be recorded from packets")
