"""The picture of the playback copy: who is shown where, and each participant's video drawn into a cell.

Participants are ordered by first appearance and laid out in an even grid; the canvas is
YUV 4:2:0 assembled by copying scaled rows into place.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import av
import av.video.reformatter

from recording.media_info import MEDIA_EXTENSIONS, MediaInfo, read_media_info
from recording.seal import evidence_files

_BLACK = (16, 128, 128)
_PLACEHOLDER = (40, 128, 128)  # dark grey: a participant without video at this moment
_NOTHING_DRAWN = object()


# -- timeline ---------------------------------------------------------------


@dataclass(frozen=True)
class SegmentFile:
    """One recorded media file and its span on the hearing timeline."""

    path: Path
    info: MediaInfo

    @property
    def start(self) -> float:
        return self.info.first_timestamp_s or 0.0

    @property
    def end(self) -> float:
        return self.info.last_timestamp_s or self.start


@dataclass
class Participant:
    """A participant's video and audio segment files, each in timeline order."""

    participant_id: str
    video: list[SegmentFile] = field(default_factory=list)
    audio: list[SegmentFile] = field(default_factory=list)

    @property
    def first_seen(self) -> float:
        return min(s.start for s in self.video + self.audio)


def participants(folder: Path) -> list[Participant]:
    """Everyone with recorded media in a hearing folder, in order of first appearance."""
    people: dict[str, Participant] = {}
    for path in evidence_files(folder):
        if path.suffix.lower() not in MEDIA_EXTENSIONS:
            continue
        info = read_media_info(path)
        if info.first_timestamp_s is None:
            continue
        pid = info.participant_id or path.stem
        person = people.setdefault(pid, Participant(pid))
        (person.video if info.kind == "video" else person.audio).append(SegmentFile(path, info))
    for person in people.values():
        person.video.sort(key=lambda s: s.start)
        person.audio.sort(key=lambda s: s.start)
    return sorted(people.values(), key=lambda p: (p.first_seen, p.participant_id))


def grid(count: int, width: int, height: int) -> list[tuple[int, int, int, int]]:
    """Cell rectangles (x, y, w, h), even-aligned, for ``count`` participants."""
    cols = max(1, math.ceil(math.sqrt(count)))
    rows = max(1, math.ceil(count / cols))
    cell_w, cell_h = (width // cols) & ~1, (height // rows) & ~1
    return [((i % cols) * cell_w, (i // cols) * cell_h, cell_w, cell_h) for i in range(count)]


# -- video ------------------------------------------------------------------


class Canvas:
    """A YUV 4:2:0 output picture assembled by copying scaled rows into place."""

    def __init__(self, width: int, height: int) -> None:
        probe = av.VideoFrame(width, height, "yuv420p")
        self.width, self.height = width, height
        self.strides = [p.line_size for p in probe.planes]
        self.heights = [height, height // 2, height // 2]
        self.planes = [bytearray(s * h) for s, h in zip(self.strides, self.heights, strict=True)]
        self.fill(0, 0, width, height, _BLACK)

    def fill(self, x: int, y: int, w: int, h: int, yuv: tuple[int, int, int]) -> None:
        for index, value in enumerate(yuv):
            shift = 0 if index == 0 else 1
            px, py, pw, ph = x >> shift, y >> shift, w >> shift, h >> shift
            stride, plane, row = self.strides[index], self.planes[index], bytes([value]) * pw
            for r in range(py, py + ph):
                plane[r * stride + px : r * stride + px + pw] = row

    def blit(self, frame: av.VideoFrame, x: int, y: int) -> None:
        for index, src in enumerate(frame.planes):
            shift = 0 if index == 0 else 1
            px, py = x >> shift, y >> shift
            pw, ph = src.width, src.height
            data, src_stride = bytes(src), src.line_size
            stride, plane = self.strides[index], self.planes[index]
            for r in range(ph):
                dst = (py + r) * stride + px
                plane[dst : dst + pw] = data[r * src_stride : r * src_stride + pw]

    def frame(self) -> av.VideoFrame:
        out = av.VideoFrame(self.width, self.height, "yuv420p")
        for plane, data in zip(out.planes, self.planes, strict=True):
            plane.update(bytes(data))
        return out


class VideoLane:
    """One participant's video, decoded in timeline order across their segments."""

    def __init__(self, segments: list[SegmentFile], cell: tuple[int, int, int, int], hold_s: float) -> None:
        self.cell = cell
        self.hold_s = hold_s
        self._frames = self._decode(segments)
        self._current: tuple[float, av.VideoFrame, float] | None = None
        self._next = next(self._frames, None)
        self._scaler = av.video.reformatter.VideoReformatter()  # keeps its scaling context between frames
        self.shown: av.VideoFrame | None | object = _NOTHING_DRAWN  # a frame, or None for the placeholder

    @staticmethod
    def _decode(segments: list[SegmentFile]) -> Iterator[tuple[float, av.VideoFrame, float]]:
        for segment in segments:
            with av.open(str(segment.path)) as container:
                for frame in container.decode(video=0):
                    if frame.pts is not None and frame.time_base is not None:
                        yield float(frame.pts * frame.time_base), frame, segment.end

    def at(self, t: float) -> av.VideoFrame | None:
        """The frame to show at timeline second ``t``, or None for the placeholder."""
        while self._next is not None and self._next[0] <= t + 1e-6:
            self._current = self._next
            self._next = next(self._frames, None)
        if self._current is None:
            return None
        shown_at, frame, segment_end = self._current
        if t > segment_end + 1e-3 or t - shown_at > self.hold_s:
            return None
        return frame

    def draw(self, canvas: Canvas, frame: av.VideoFrame | None) -> None:
        """Update the cell if what it shows changed."""
        if frame is self.shown:
            return
        x, y, w, h = self.cell
        if frame is None:
            canvas.fill(x, y, w, h, _PLACEHOLDER)
        else:
            scale = min(w / frame.width, h / frame.height)
            sw, sh = max(2, int(frame.width * scale) & ~1), max(2, int(frame.height * scale) & ~1)
            previous = self.shown
            if not isinstance(previous, av.VideoFrame) or (previous.width, previous.height) != (
                frame.width,
                frame.height,
            ):
                canvas.fill(x, y, w, h, _BLACK)  # letterbox bars around the scaled picture
            scaled = self._scaler.reformat(
                frame, width=sw, height=sh, format="yuv420p", interpolation="BILINEAR"
            )
            canvas.blit(scaled, x + ((w - sw) // 2 & ~1), y + ((h - sh) // 2 & ~1))
        self.shown = frame
