"""The synthetic participants' media: 640x480 30 fps VP8 (~1 Mbps) and Opus, encoded once and cached.

The clip comes from :func:`benchmarks.relay_compare.make_clip` (a moving test pattern and a
440 Hz tone).  It is stored under ``benchmarks/.cache/`` so that later runs spend no CPU on
encoding; during a run every frame is served as it was encoded.
"""

from __future__ import annotations

import asyncio
import fractions
import struct
import time
from dataclasses import dataclass
from pathlib import Path

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from benchmarks.rtp import KEY_BYTES, vp8_chunks

FPS = 30
VIDEO_CLOCK, AUDIO_CLOCK = 90000, 48000
AUDIO_FRAME = 960  # 20 ms of Opus
CLIP_SECONDS = 4.0
CACHE_DIR = Path(__file__).resolve().parent / ".cache"
CACHE_VERSION = 1


@dataclass(frozen=True)
class Clip:
    """One participant's pre-encoded media: a keyframe then inter frames, the same frames as
    keyframes (served on a keyframe request), and Opus packets."""

    video: list[bytes]
    video_intra: list[bytes]
    audio: list[bytes]

    @property
    def video_kbps(self) -> float:
        return sum(map(len, self.video)) * 8 / (len(self.video) / FPS) / 1000

    def positions(self) -> dict[bytes, int]:
        """Each distinct video frame → its position in the clip (how a receiver names a frame)."""
        index: dict[bytes, int] = {}
        for frames in (self.video_intra, self.video):
            for position, data in enumerate(frames):
                index[data] = position
        return index


@dataclass(frozen=True)
class PacketizedClip:
    """A clip split into RTP payloads once: each video frame's payloads without their VP8
    descriptor (added per packet with the running picture id), the Opus packets, and each video
    frame's name (its last :data:`~benchmarks.rtp.KEY_BYTES` bytes) → clip position."""

    video: list[list[bytes]]
    video_intra: list[list[bytes]]
    audio: list[bytes]
    keys: dict[bytes, int]

    @classmethod
    def of(cls, clip: Clip) -> PacketizedClip:
        """Packetize ``clip``."""
        keys: dict[bytes, int] = {}
        for frames in (clip.video_intra, clip.video):
            for position, data in enumerate(frames):
                keys[data[-KEY_BYTES:]] = position
        return cls(
            [vp8_chunks(f) for f in clip.video], [vp8_chunks(f) for f in clip.video_intra], clip.audio, keys
        )


def _write(path: Path, clip: Clip) -> None:
    parts = [struct.pack("<I", CACHE_VERSION)]
    for frames in (clip.video, clip.video_intra, clip.audio):
        parts.append(struct.pack("<I", len(frames)))
        parts.extend(struct.pack("<I", len(frame)) + frame for frame in frames)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(b"".join(parts))
    tmp.replace(path)


def _read(path: Path) -> Clip | None:
    data = path.read_bytes()
    (version,) = struct.unpack_from("<I", data, 0)
    if version != CACHE_VERSION:
        return None
    offset = 4
    lists: list[list[bytes]] = []
    for _ in range(3):
        (count,) = struct.unpack_from("<I", data, offset)
        offset += 4
        frames = []
        for _ in range(count):
            (size,) = struct.unpack_from("<I", data, offset)
            frames.append(data[offset + 4 : offset + 4 + size])
            offset += 4 + size
        lists.append(frames)
    return Clip(*lists)


def load_clip(cache_dir: Path = CACHE_DIR) -> tuple[Clip, bool]:
    """The cached clip, encoding it first if needed; returns (clip, whether it was encoded now)."""
    path = cache_dir / f"clip-640x480-{FPS}fps-v{CACHE_VERSION}.bin"
    if path.exists():
        clip = _read(path)
        if clip is not None:
            return clip, False
    from benchmarks.relay_compare import make_clip

    made = make_clip(CLIP_SECONDS)
    clip = Clip(made.video, made.video_intra, made.audio)
    cache_dir.mkdir(parents=True, exist_ok=True)
    _write(path, clip)
    return clip, True


class ClipTrack(MediaStreamTrack):
    """Serves a clip's packets at real-time pace and notes when each video frame left.

    ``sent`` maps clip position → wall-clock send times, so that a receiver, which names a
    frame by its bytes, can find when it was sent.  A keyframe request serves the intra
    version of the next frame.
    """

    def __init__(self, kind: str, clip: Clip) -> None:
        super().__init__()
        self.kind = kind
        self._packets = clip.video if kind == "video" else clip.audio
        self._intra = clip.video_intra if kind == "video" else None
        self._clock = VIDEO_CLOCK if kind == "video" else AUDIO_CLOCK
        self._step = VIDEO_CLOCK // FPS if kind == "video" else AUDIO_FRAME
        self._count = 0
        self._start: float | None = None
        self._keyframe_wanted = False
        self.keyframe_requests = 0
        self.sent: dict[int, list[float]] = {}

    def request_keyframe(self) -> None:
        self.keyframe_requests += 1
        self._keyframe_wanted = True

    async def recv(self) -> av.Packet:
        if self.readyState != "live":
            raise MediaStreamError
        now = time.monotonic()
        if self._start is None:
            self._start = now
        due = self._start + self._count * self._step / self._clock
        if due > now:
            await asyncio.sleep(due - now)
        index = self._count
        # the clip loops without its first frame, so later keyframes are requested ones only
        position = 0 if index == 0 else 1 + (index - 1) % (len(self._packets) - 1)
        if self._intra is not None and self._keyframe_wanted and index:
            self._keyframe_wanted = False
            data = self._intra[position]
        else:
            data = self._packets[position]
        packet = av.Packet(data)
        packet.pts = index * self._step
        packet.time_base = fractions.Fraction(1, self._clock)
        self._count += 1
        if self._intra is not None:
            self.sent.setdefault(position, []).append(time.time())
        return packet

    def sent_between(self, start: float, end: float) -> dict[int, list[float]]:
        """Send times within [start, end], by clip position."""
        return {
            position: kept
            for position, times in self.sent.items()
            if (kept := [t for t in times if start <= t <= end])
        }
