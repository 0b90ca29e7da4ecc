"""Real encoded test media: solid-colour VP8, sine-tone Opus, and checks on decoded files."""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from media.contract import EncodedFrame, TrackInfo
from recording.recorder import HearingRecorder
from recording.recorder_types import RecorderEvent

FPS = 30
OPUS_MS = 20


def rgb_to_yuv(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    """BT.601 limited-range YUV of an RGB colour (what libvpx and swscale assume)."""
    r, g, b = rgb
    y = 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255
    u = 128 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255
    v = 128 + (112.0 * r - 93.786 * g - 18.214 * b) / 255
    return round(y), round(u), round(v)


def encode_vp8(
    rgb: tuple[int, int, int], width: int, height: int, frames: int, gop: int = FPS
) -> list[tuple[bytes, bool]]:
    """A solid-colour clip as VP8 frames (data, keyframe), a keyframe every ``gop`` frames."""
    enc = av.CodecContext.create("libvpx", "w")
    enc.width, enc.height, enc.pix_fmt = width, height, "yuv420p"
    enc.time_base = Fraction(1, FPS)
    enc.framerate = Fraction(FPS)
    enc.gop_size = gop
    enc.bit_rate = 300_000
    enc.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0", "kf-min-dist": str(gop)}
    out: list[tuple[bytes, bool]] = []
    yuv = rgb_to_yuv(rgb)
    for i in range(frames):
        frame = av.VideoFrame(width, height, "yuv420p")
        for plane, value in zip(frame.planes, yuv, strict=True):
            plane.update(bytes([value]) * plane.buffer_size)
        frame.pts = i
        # Force keyframes on the gop grid so that clips can be cut and looped at any multiple of it.
        frame.pict_type = av.video.frame.PictureType.I if i % gop == 0 else av.video.frame.PictureType.NONE
        out.extend((bytes(p), p.is_keyframe) for p in enc.encode(frame))
    out.extend((bytes(p), p.is_keyframe) for p in enc.encode(None))
    assert len(out) == frames and out[0][1]
    return out


def encode_opus(freq: float, packets: int, amplitude: int = 8000) -> list[bytes]:
    """A sine tone as 20 ms mono Opus packets."""
    enc = av.CodecContext.create("libopus", "w")
    enc.sample_rate, enc.layout, enc.format = 48000, "mono", "s16"
    enc.time_base = Fraction(1, 48000)
    enc.bit_rate = 64000
    n = 48000 * OPUS_MS // 1000
    out: list[bytes] = []
    for i in range(packets + 2):
        samples = [int(amplitude * math.sin(2 * math.pi * freq * (i * n + k) / 48000)) for k in range(n)]
        frame = av.AudioFrame(format="s16", layout="mono", samples=n)
        frame.planes[0].update(struct.pack(f"<{n}h", *samples))
        frame.sample_rate = 48000
        frame.pts = i * n
        out.extend(bytes(p) for p in enc.encode(frame))
    return out[:packets]


@dataclass(frozen=True)
class Participant:
    """A synthetic participant: a colour, a tone and when they speak on the hearing timeline."""

    participant_id: str
    rgb: tuple[int, int, int]
    tone_hz: float
    width: int
    height: int

    @property
    def video(self) -> TrackInfo:
        return TrackInfo(f"{self.participant_id}-v", self.participant_id, "video", "VP8", 90000)

    @property
    def audio(self) -> TrackInfo:
        return TrackInfo(f"{self.participant_id}-a", self.participant_id, "audio", "opus", 48000)


def video_frames(
    track: TrackInfo, encoded: list[tuple[bytes, bool]], start: float, width: int, height: int
) -> list[EncodedFrame]:
    """EncodedFrames as the media plane would deliver them, spaced 1/30 s from ``start`` (UTC seconds)."""
    return [
        EncodedFrame(
            track=track,
            data=data,
            rtp_timestamp=i * 3000,
            wallclock=start + i / FPS,
            keyframe=key,
            width=width if key else None,
            height=height if key else None,
        )
        for i, (data, key) in enumerate(encoded)
    ]


def audio_frames(track: TrackInfo, encoded: list[bytes], start: float) -> list[EncodedFrame]:
    """Opus EncodedFrames spaced 20 ms from ``start``."""
    return [
        EncodedFrame(
            track=track,
            data=data,
            rtp_timestamp=i * 960,
            wallclock=start + i * OPUS_MS / 1000,
            keyframe=False,
        )
        for i, data in enumerate(encoded)
    ]


def interleave(*streams: list[EncodedFrame]) -> list[EncodedFrame]:
    """All frames in wall-clock order, as a live hearing delivers them."""
    merged = [f for s in streams for f in s]
    merged.sort(key=lambda f: f.wallclock)
    return merged


@dataclass(frozen=True)
class DecodedVideo:
    """A decoded video file: frame times (stream seconds) and sizes, plus the centre colour of each frame."""

    times: list[float]
    sizes: list[tuple[int, int]]
    colours: list[tuple[int, int, int]]


def pixel_rgb(frame: av.VideoFrame, x: int, y: int) -> tuple[int, int, int]:
    """The RGB colour of one pixel of a decoded frame."""
    converted = frame.reformat(format="rgb24")
    plane = converted.planes[0]
    row = bytes(plane)[y * plane.line_size : y * plane.line_size + plane.width * 3]
    return row[x * 3], row[x * 3 + 1], row[x * 3 + 2]


def decode_video(path: Path) -> DecodedVideo:
    """Decode every frame of a video file."""
    times, sizes, colours = [], [], []
    with av.open(str(path)) as c:
        for frame in c.decode(video=0):
            times.append(float(frame.pts * frame.time_base))
            sizes.append((frame.width, frame.height))
            colours.append(pixel_rgb(frame, frame.width // 2, frame.height // 2))
    return DecodedVideo(times, sizes, colours)


@dataclass(frozen=True)
class DecodedAudio:
    """A decoded audio file as mono samples at 48 kHz, with the stream time of its first sample."""

    start: float
    samples: list[float]

    @property
    def duration(self) -> float:
        return len(self.samples) / 48000


def decode_audio(path: Path) -> DecodedAudio:
    """Decode an audio file to mono float samples at 48 kHz."""
    resampler = av.AudioResampler(format="flt", layout="mono", rate=48000)
    samples: list[float] = []
    start: float | None = None
    with av.open(str(path)) as c:
        stream = c.streams.audio[0]
        for frame in c.decode(stream):
            if start is None:
                start = float(frame.pts * frame.time_base)
            for out in resampler.resample(frame):
                data = bytes(out.planes[0])[: out.samples * 4]
                samples.extend(struct.unpack(f"<{out.samples}f", data))
    return DecodedAudio(start or 0.0, samples)


def dominant_frequency(samples: list[float], rate: int = 48000) -> float:
    """The strongest frequency in the samples (Hann-windowed FFT peak)."""
    signal = np.asarray(samples, dtype=np.float64)
    spectrum = np.abs(np.fft.rfft(signal * np.hanning(len(signal))))
    spectrum[0] = 0.0
    return float(np.argmax(spectrum) * rate / len(signal))


def close_colour(a: tuple[int, int, int], b: tuple[int, int, int], tolerance: int = 40) -> bool:
    """True when two RGB colours differ by at most ``tolerance`` per channel."""
    return all(abs(x - y) <= tolerance for x, y in zip(a, b, strict=True))


# --- the three-party hearing the recording tests share -------------------------------------

HEARING_ID = "H-2024-0001"
COURT = "Алматинский городской суд (test)"

# Judge and lawyer speak from the start; the witness joins a second later.  5 s in all.
PARTIES = [
    (Participant("judge", (220, 30, 30), 440.0, 320, 240), 0.0, 5.0),
    (Participant("lawyer", (30, 200, 40), 660.0, 320, 240), 0.1, 4.9),
    (Participant("witness", (40, 40, 220), 1000.0, 240, 320), 1.0, 4.0),
]


@dataclass(frozen=True)
class EncodedMedia:
    """One participant's encoded clip."""

    party: Participant
    offset: float  # seconds after the epoch at which they start
    seconds: float
    video: list[tuple[bytes, bool]]
    audio: list[bytes]


def hearing_frames(media: list[EncodedMedia], epoch: float) -> list:
    """Every party's frames in arrival order, as the media plane would deliver them."""
    streams = []
    for m in media:
        start = epoch + m.offset
        streams.append(video_frames(m.party.video, m.video, start, m.party.width, m.party.height))
        streams.append(audio_frames(m.party.audio, m.audio, start))
    return interleave(*streams)


@dataclass(frozen=True)
class RecordedHearing:
    """A hearing folder recorded from the three parties' clips, with its log."""

    folder: Path
    epoch: float
    events: list[RecorderEvent]
    recorder: HearingRecorder
