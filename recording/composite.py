"""The playback copy: one MP4 (H.264 + AAC, faststart) of a hearing — a grid of participants, mixed audio.

Rendered after the hearing in a separate, niced process
(``python -m recording.composite FOLDER``) into ``<folder>/playback/``,
outside the seal; the original tracks stay untouched as the evidence.
Progress goes to ``playback/progress.json``.  A render that dies is simply
started again: it writes to a temporary file renamed into place at the end.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.container
import av.video.reformatter

from recording.confirmation_log import utc_timestamp
from recording.media_info import MEDIA_EXTENSIONS, MediaInfo, read_media_info
from recording.seal import PLAYBACK_DIR, evidence_files

OUTPUT_NAME = "composite.mp4"
PROGRESS_NAME = "progress.json"
LOCK_NAME = ".render.lock"
LOG_NAME = "render.log"
SAMPLE_RATE = 48000
AAC_FRAME = 1024
_BLACK = (16, 128, 128)
_PLACEHOLDER = (40, 128, 128)  # dark grey: a participant without video at this moment
_NOTHING_DRAWN = object()


class RenderState(StrEnum):
    """Where a playback render is."""

    QUEUED = "queued"
    RENDERING = "rendering"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True)
class CompositeSettings:
    """Output geometry and quality of the playback copy."""

    width: int = 1280
    height: int = 720
    fps: int = 15
    crf: int = 28
    preset: str = "ultrafast"  # measured 1.5x faster than superfast here; the originals stay the evidence
    audio_bitrate: int = 96_000
    hold_s: float = 1.0  # show a participant's last frame this long before the placeholder


@dataclass
class RenderProgress:
    """What ``progress.json`` says about a render."""

    state: RenderState
    percent: float = 0.0
    speed_x: float | None = None  # seconds of hearing rendered per second of wall time
    duration_s: float | None = None
    output: str | None = None
    error: str | None = None
    pid: int | None = None
    updated_at: str = field(default_factory=utc_timestamp)


def playback_dir(folder: Path | str) -> Path:
    """Where a hearing's playback copy, progress and render log live."""
    return Path(folder) / PLAYBACK_DIR


def read_progress(folder: Path | str) -> RenderProgress | None:
    """The last written progress of a hearing's render, or None if none was started.

    A render whose process has died (crash, reboot) reads as FAILED: start it again.
    """
    path = playback_dir(folder) / PROGRESS_NAME
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None
    data["state"] = RenderState(data["state"])
    progress = RenderProgress(**data)
    unfinished = progress.state in (RenderState.QUEUED, RenderState.RENDERING)
    if unfinished and progress.pid is not None and not _process_alive(progress.pid):
        progress.state = RenderState.FAILED
        progress.error = "the render process ended before finishing; start it again"
    return progress


def _process_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has ended
    except (FileNotFoundError, IndexError):
        return False


def _write_progress(folder: Path, progress: RenderProgress) -> None:
    progress.updated_at = utc_timestamp()
    path = playback_dir(folder) / PROGRESS_NAME
    tmp = path.with_name(path.name + ".tmp")
    data = asdict(progress)
    data["state"] = progress.state.value
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


# -- timeline ---------------------------------------------------------------


@dataclass(frozen=True)
class _Segment:
    path: Path
    info: MediaInfo

    @property
    def start(self) -> float:
        return self.info.first_timestamp_s or 0.0

    @property
    def end(self) -> float:
        return self.info.last_timestamp_s or self.start


@dataclass
class _Participant:
    participant_id: str
    video: list[_Segment] = field(default_factory=list)
    audio: list[_Segment] = field(default_factory=list)

    @property
    def first_seen(self) -> float:
        return min(s.start for s in self.video + self.audio)


def _participants(folder: Path) -> list[_Participant]:
    people: dict[str, _Participant] = {}
    for path in evidence_files(folder):
        if path.suffix.lower() not in MEDIA_EXTENSIONS:
            continue
        info = read_media_info(path)
        if info.first_timestamp_s is None:
            continue
        pid = info.participant_id or path.stem
        person = people.setdefault(pid, _Participant(pid))
        (person.video if info.kind == "video" else person.audio).append(_Segment(path, info))
    for person in people.values():
        person.video.sort(key=lambda s: s.start)
        person.audio.sort(key=lambda s: s.start)
    return sorted(people.values(), key=lambda p: (p.first_seen, p.participant_id))


def _grid(count: int, width: int, height: int) -> list[tuple[int, int, int, int]]:
    """Cell rectangles (x, y, w, h), even-aligned, for ``count`` participants."""
    cols = max(1, math.ceil(math.sqrt(count)))
    rows = max(1, math.ceil(count / cols))
    cell_w, cell_h = (width // cols) & ~1, (height // rows) & ~1
    return [((i % cols) * cell_w, (i // cols) * cell_h, cell_w, cell_h) for i in range(count)]


# -- video ------------------------------------------------------------------


class _Canvas:
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


class _VideoLane:
    """One participant's video, decoded in timeline order across their segments."""

    def __init__(self, segments: list[_Segment], cell: tuple[int, int, int, int], hold_s: float) -> None:
        self.cell = cell
        self.hold_s = hold_s
        self._frames = self._decode(segments)
        self._current: tuple[float, av.VideoFrame, float] | None = None
        self._next = next(self._frames, None)
        self._scaler = av.video.reformatter.VideoReformatter()  # keeps its scaling context between frames
        self.shown: av.VideoFrame | None | object = _NOTHING_DRAWN  # a frame, or None for the placeholder

    @staticmethod
    def _decode(segments: list[_Segment]) -> Iterator[tuple[float, av.VideoFrame, float]]:
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

    def draw(self, canvas: _Canvas, frame: av.VideoFrame | None) -> None:
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


# -- audio ------------------------------------------------------------------


class _AudioLane:
    """One audio track on the timeline as 16-bit mono samples, silence where it has none."""

    def __init__(self, segments: list[_Segment], t0: float) -> None:
        self._pieces = self._decode(segments, t0)
        self._held: list[tuple[int, bytes]] = []
        self._exhausted = False

    @staticmethod
    def _decode(segments: list[_Segment], t0: float) -> Iterator[tuple[int, bytes]]:
        for segment in segments:
            resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
            position: int | None = None
            with av.open(str(segment.path)) as container:
                for frame in container.decode(audio=0):
                    if frame.pts is None or frame.time_base is None:
                        continue
                    start = round((float(frame.pts * frame.time_base) - t0) * SAMPLE_RATE)
                    # Within a segment samples run on; jumps over 20 ms are real gaps.
                    if position is None or abs(start - position) > SAMPLE_RATE // 50:
                        position = start
                    for out in resampler.resample(frame):
                        data = bytes(out.planes[0])[: out.samples * 2]
                        yield position, data
                        position += out.samples

    def block(self, start: int, count: int) -> bytes:
        """Samples ``start`` .. ``start + count`` (timeline sample indices) as s16 bytes."""
        end = start + count
        while not self._exhausted and (
            not self._held or self._held[-1][0] + len(self._held[-1][1]) // 2 < end
        ):
            piece = next(self._pieces, None)
            if piece is None:
                self._exhausted = True
            else:
                self._held.append(piece)
        out = bytearray(count * 2)
        keep: list[tuple[int, bytes]] = []
        for piece_start, data in self._held:
            piece_end = piece_start + len(data) // 2
            lo, hi = max(start, piece_start), min(end, piece_end)
            if lo < hi:
                out[(lo - start) * 2 : (hi - start) * 2] = data[
                    (lo - piece_start) * 2 : (hi - piece_start) * 2
                ]
            if piece_end > end:
                keep.append((piece_start, data))
        self._held = keep
        return bytes(out)


class _Mixer:
    """Sums the audio lanes (amix, no normalisation) into AAC-sized float frames."""

    def __init__(self, lanes: int) -> None:
        self.graph = av.filter.Graph()
        self.sources = [
            self.graph.add_abuffer(
                format="s16", sample_rate=SAMPLE_RATE, layout="mono", time_base=Fraction(1, SAMPLE_RATE)
            )
            for _ in range(max(lanes, 1))
        ]
        mix = self.graph.add("amix", f"inputs={len(self.sources)}:normalize=0:duration=longest")
        fmt = self.graph.add("aformat", f"sample_fmts=fltp:sample_rates={SAMPLE_RATE}:channel_layouts=mono")
        sink = self.graph.add("abuffersink")
        for index, source in enumerate(self.sources):
            source.link_to(mix, 0, index)
        mix.link_to(fmt)
        fmt.link_to(sink)
        self.sink = sink
        self.graph.configure()
        self.fifo = av.AudioFifo()

    def push(self, blocks: Sequence[bytes], pts: int) -> list[av.AudioFrame]:
        count = len(blocks[0]) // 2 if blocks else AAC_FRAME
        for source, data in zip(self.sources, blocks or [bytes(AAC_FRAME * 2)], strict=True):
            frame = av.AudioFrame(format="s16", layout="mono", samples=count)
            frame.planes[0].update(data)
            frame.sample_rate = SAMPLE_RATE
            frame.time_base = Fraction(1, SAMPLE_RATE)
            frame.pts = pts
            source.push(frame)
        return self._drain(final=False)

    def finish(self) -> list[av.AudioFrame]:
        """Flush the graph; the last frame may be shorter than an AAC frame."""
        for source in self.sources:
            source.push(None)
        return self._drain(final=True)

    def _drain(self, *, final: bool) -> list[av.AudioFrame]:
        while True:
            try:
                mixed = self.sink.pull()
            except (BlockingIOError, av.EOFError):
                break
            assert isinstance(mixed, av.AudioFrame)
            self.fifo.write(mixed)
        frames = []
        while self.fifo.samples >= AAC_FRAME or (final and self.fifo.samples):
            chunk = self.fifo.read(min(AAC_FRAME, self.fifo.samples))
            if chunk is not None:
                frames.append(chunk)
        return frames


# -- rendering ----------------------------------------------------------------


@dataclass(frozen=True)
class RenderResult:
    """A finished playback copy and how fast it was made."""

    output: Path
    duration_s: float
    wall_s: float
    cpu_s: float

    @property
    def speed_x(self) -> float:
        """Seconds of hearing rendered per second of wall time."""
        return self.duration_s / self.wall_s if self.wall_s > 0 else float("inf")


def render_composite(
    folder: Path | str, settings: CompositeSettings = CompositeSettings(), *, progress_interval_s: float = 1.0
) -> RenderResult:
    """Render the playback copy of a hearing folder in this process (blocking)."""
    folder = Path(folder)
    out_dir = playback_dir(folder)
    out_dir.mkdir(exist_ok=True)
    output = out_dir / OUTPUT_NAME
    partial = out_dir / (OUTPUT_NAME + ".part")
    wall0, cpu0 = time.monotonic(), time.process_time()
    progress = RenderProgress(RenderState.RENDERING, pid=os.getpid())
    _write_progress(folder, progress)

    people = _participants(folder)
    if not people:
        raise ValueError(f"no recorded media in {folder}")
    segments = [s for p in people for s in p.video + p.audio]
    t0 = min(s.start for s in segments)
    duration = max(s.end for s in segments) - t0
    progress.duration_s = round(duration, 3)
    cells = _grid(len(people), settings.width, settings.height)
    video_lanes = [_VideoLane(p.video, cell, settings.hold_s) for p, cell in zip(people, cells, strict=True)]
    audio_lanes = [_AudioLane(p.audio, t0) for p in people if p.audio]
    canvas = _Canvas(settings.width, settings.height)
    mixer = _Mixer(len(audio_lanes))

    with av.open(str(partial), "w", format="mp4", options={"movflags": "+faststart"}) as container:
        vstream = container.add_stream("libx264", rate=settings.fps)
        vstream.width, vstream.height, vstream.pix_fmt = settings.width, settings.height, "yuv420p"
        vstream.codec_context.options = {
            "preset": settings.preset,
            "crf": str(settings.crf),
            "profile": "high",
        }
        vstream.codec_context.time_base = Fraction(1, settings.fps)
        astream = container.add_stream("aac", rate=SAMPLE_RATE)
        astream.codec_context.layout = "mono"
        astream.codec_context.bit_rate = settings.audio_bitrate

        total_frames = max(1, math.ceil(duration * settings.fps))
        total_samples = round(duration * SAMPLE_RATE)
        sample = 0
        audio_pts = 0
        last_report = wall0
        for index in range(total_frames):
            t = t0 + index / settings.fps
            frame_end_sample = round((index + 1) / settings.fps * SAMPLE_RATE)
            while sample < min(frame_end_sample, total_samples):
                count = min(AAC_FRAME, total_samples - sample)
                for mixed in mixer.push([lane.block(sample, count) for lane in audio_lanes], sample):
                    mixed.pts = audio_pts
                    audio_pts += mixed.samples
                    container.mux(astream.encode(mixed))
                sample += count
            for lane in video_lanes:
                lane.draw(canvas, lane.at(t))
            picture = canvas.frame()
            picture.pts = index
            picture.time_base = Fraction(1, settings.fps)
            container.mux(vstream.encode(picture))
            now = time.monotonic()
            if now - last_report >= progress_interval_s:
                last_report = now
                progress.percent = round(100 * (index + 1) / total_frames, 1)
                progress.speed_x = round(((index + 1) / settings.fps) / (now - wall0), 2)
                _write_progress(folder, progress)
        for rest in mixer.finish():
            rest.pts = audio_pts
            audio_pts += rest.samples
            container.mux(astream.encode(rest))
        container.mux(astream.encode(None))
        container.mux(vstream.encode(None))
    fd = os.open(partial, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(partial, output)
    result = RenderResult(output, duration, time.monotonic() - wall0, time.process_time() - cpu0)
    progress.state, progress.percent = RenderState.DONE, 100.0
    progress.speed_x, progress.output = round(result.speed_x, 2), str(output.relative_to(folder))
    _write_progress(folder, progress)
    return result


def start_composite(
    folder: Path | str, settings: CompositeSettings = CompositeSettings(), *, nice: int = 10
) -> subprocess.Popen[bytes]:
    """Start rendering in a separate, niced process; follow it with :func:`read_progress`."""
    folder = Path(folder)
    out_dir = playback_dir(folder)
    out_dir.mkdir(exist_ok=True)
    _write_progress(folder, RenderProgress(RenderState.QUEUED))
    args = [
        sys.executable, "-m", "recording.composite", str(folder),
        "--width", str(settings.width), "--height", str(settings.height), "--fps", str(settings.fps),
        "--crf", str(settings.crf), "--preset", settings.preset, "--nice", str(nice),
    ]  # fmt: skip
    with (out_dir / LOG_NAME).open("ab") as log_file:
        process = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file, start_new_session=True
        )
    # The child reports RENDERING with its pid within a second even if this write lands after its first.
    _write_progress(folder, RenderProgress(RenderState.QUEUED, pid=process.pid))
    return process


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the render process: lock, nice, render, report; 0 on success."""
    parser = argparse.ArgumentParser(prog="python -m recording.composite", description=__doc__)
    parser.add_argument("folder")
    parser.add_argument("--width", type=int, default=CompositeSettings.width)
    parser.add_argument("--height", type=int, default=CompositeSettings.height)
    parser.add_argument("--fps", type=int, default=CompositeSettings.fps)
    parser.add_argument("--crf", type=int, default=CompositeSettings.crf)
    parser.add_argument("--preset", default=CompositeSettings.preset)
    parser.add_argument("--nice", type=int, default=10)
    args = parser.parse_args(argv)
    folder = Path(args.folder)
    if args.nice:
        os.nice(args.nice)
    out_dir = playback_dir(folder)
    out_dir.mkdir(exist_ok=True)
    with (out_dir / LOCK_NAME).open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"a render of {folder} is already running", file=sys.stderr)
            return 3
        settings = CompositeSettings(
            width=args.width, height=args.height, fps=args.fps, crf=args.crf, preset=args.preset
        )
        try:
            result = render_composite(folder, settings)
        except Exception as exc:
            _write_progress(
                folder,
                RenderProgress(RenderState.FAILED, error=f"{type(exc).__name__}: {exc}", pid=os.getpid()),
            )
            raise
    print(
        f"rendered {result.duration_s:.1f} s in {result.wall_s:.1f} s "
        f"({result.speed_x:.1f}x real time, cpu {result.cpu_s:.1f} s)"
    )
    return 0


def describe(progress: RenderProgress | None) -> dict[str, Any]:
    """Progress as JSON-ready data for the API (``{"state": "none"}`` before any render)."""
    if progress is None:
        return {"state": "none"}
    data = asdict(progress)
    data["state"] = progress.state.value
    return data


if __name__ == "__main__":
    sys.exit(main())
