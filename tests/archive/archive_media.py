"""Small real media for archive tests: solid-colour VP8 and sine-tone Opus WebM, tagged as recorded."""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from recording.media_info import TAG_EPOCH_US, TAG_KIND, TAG_PARTICIPANT_ID, TAG_TRACK_ID


def _tags(container: av.container.OutputContainer, kind: str, participant: str, epoch_us: int) -> None:
    container.metadata[TAG_KIND] = kind
    container.metadata[TAG_PARTICIPANT_ID] = participant
    container.metadata[TAG_TRACK_ID] = f"{participant}-{kind}"
    container.metadata[TAG_EPOCH_US] = str(epoch_us)


def write_video(
    path: Path,
    participant: str,
    epoch_us: int,
    *,
    frames: int = 15,
    rgb: tuple[int, int, int] = (200, 40, 40),
) -> None:
    """A 160x120, 15 fps VP8 WebM of one colour."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="webm") as container:
        _tags(container, "video", participant, epoch_us)
        stream = container.add_stream("libvpx", rate=15)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 15)
        stream.options = {"deadline": "realtime", "cpu-used": "8"}
        image = np.zeros((120, 160, 3), dtype=np.uint8)
        image[:, :] = rgb
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def write_audio(
    path: Path, participant: str, epoch_us: int, *, seconds: float = 1.0, tone_hz: float = 440.0
) -> None:
    """A mono 48 kHz Opus WebM of a sine tone."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="webm") as container:
        _tags(container, "audio", participant, epoch_us)
        stream = container.add_stream("libopus", rate=48000)
        stream.layout = "mono"
        n = 960
        for i in range(int(seconds * 50)):
            t = (np.arange(n) + i * n) / 48000
            samples = (8000 * np.sin(2 * math.pi * tone_hz * t)).astype(np.int16).reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
            frame.sample_rate = 48000
            frame.pts = i * n
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
