"""The synthetic participants' media: 640x480 30 fps VP8 (~1 Mbps) and Opus, encoded once and cached.

:func:`make_clip` encodes a moving test pattern and a 440 Hz tone; the clip is stored under
``benchmarks/.cache/`` so that later runs spend no CPU on encoding, and :class:`PacketizedClip`
splits it into RTP payloads once per party process.  During a run every frame is sent as it was
encoded.
"""

from __future__ import annotations

import fractions
import math
import struct
from dataclasses import dataclass
from pathlib import Path

import av

from benchmarks.rtp import KEY_BYTES, vp8_chunks

WIDTH, HEIGHT, FPS = 640, 480, 30
VIDEO_BITRATE = 1_000_000
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


def _encode_vp8(frames: list[av.VideoFrame], gop: int, bit_rate: int) -> list[bytes]:
    encoder = av.CodecContext.create("libvpx", "w")
    encoder.width, encoder.height = WIDTH, HEIGHT
    encoder.pix_fmt = "yuv420p"
    encoder.time_base = fractions.Fraction(1, FPS)
    encoder.framerate = fractions.Fraction(FPS, 1)
    encoder.bit_rate = bit_rate
    encoder.gop_size = gop
    encoder.options = {
        "deadline": "realtime",
        "cpu-used": "8",
        "lag-in-frames": "0",
        "minrate": str(bit_rate),
        "maxrate": str(bit_rate),
        "bufsize": str(bit_rate),
    }
    packets = [bytes(p) for frame in frames for p in encoder.encode(frame)]
    return packets + [bytes(p) for p in encoder.encode(None)]


def make_clip(seconds: float) -> Clip:
    """A moving test pattern (lavfi testsrc) at ~1 Mbps, and a 440 Hz tone in Opus."""
    source = av.open(f"testsrc=size={WIDTH}x{HEIGHT}:rate={FPS}", format="lavfi")
    frames = []
    for index, frame in enumerate(source.decode(video=0)):
        if index >= seconds * FPS:
            break
        converted = frame.reformat(format="yuv420p")
        converted.pts = index
        converted.time_base = fractions.Fraction(1, FPS)
        frames.append(converted)
    source.close()
    encoder = av.CodecContext.create("libopus", "w")
    encoder.sample_rate, encoder.layout, encoder.format = 48000, "mono", "s16"
    encoder.bit_rate = 32000
    audio: list[bytes] = []
    for index in range(int(seconds * 50)):
        pcm = b"".join(
            int(8000 * math.sin(2 * math.pi * 440 * (index * AUDIO_FRAME + n) / 48000)).to_bytes(
                2, "little", signed=True
            )
            for n in range(AUDIO_FRAME)
        )
        tone = av.AudioFrame(format="s16", layout="mono", samples=AUDIO_FRAME)
        tone.planes[0].update(pcm)
        tone.sample_rate = 48000
        tone.pts = index * AUDIO_FRAME
        audio += [bytes(p) for p in encoder.encode(tone)]
    # libvpx overshoots this synthetic pattern: calibrate the target once to land near 1 Mbps
    trial = _encode_vp8(frames, 10_000, VIDEO_BITRATE)
    actual = sum(map(len, trial)) * 8 / (len(trial) / FPS)
    target = int(VIDEO_BITRATE * VIDEO_BITRATE / actual)
    return Clip(_encode_vp8(frames, 10_000, target), _encode_vp8(frames, 1, target), audio)


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
    clip = make_clip(CLIP_SECONDS)
    cache_dir.mkdir(parents=True, exist_ok=True)
    _write(path, clip)
    return clip, True
