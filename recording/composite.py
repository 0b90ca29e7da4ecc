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
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from recording.composite_audio import AAC_FRAME, SAMPLE_RATE, AudioLane, Mixer
from recording.composite_layout import Canvas, VideoLane, grid, participants
from recording.confirmation_log import utc_timestamp
from recording.seal import PLAYBACK_DIR

OUTPUT_NAME = "composite.mp4"
PROGRESS_NAME = "progress.json"
LOCK_NAME = ".render.lock"
LOG_NAME = "render.log"


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

    people = participants(folder)
    if not people:
        raise ValueError(f"no recorded media in {folder}")
    segments = [s for p in people for s in p.video + p.audio]
    t0 = min(s.start for s in segments)
    duration = max(s.end for s in segments) - t0
    progress.duration_s = round(duration, 3)
    cells = grid(len(people), settings.width, settings.height)
    video_lanes = [VideoLane(p.video, cell, settings.hold_s) for p, cell in zip(people, cells, strict=True)]
    audio_lanes = [AudioLane(p.audio, t0) for p in people if p.audio]
    canvas = Canvas(settings.width, settings.height)
    mixer = Mixer(len(audio_lanes))

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
