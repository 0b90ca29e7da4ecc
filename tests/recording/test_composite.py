"""The playback copy: a niced child process renders an H.264 + AAC faststart MP4 of grid and mix."""

from __future__ import annotations

import fcntl
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import av
import pytest
from recording_media import close_colour, decode_audio, pixel_rgb

from recording.composite import (
    LOCK_NAME,
    OUTPUT_NAME,
    PROGRESS_NAME,
    RenderState,
    playback_dir,
    read_progress,
    start_composite,
)

BLACK = (0, 0, 0)
GREY = (28, 28, 28)


def frame_at(path: Path, t: float) -> av.VideoFrame:
    with av.open(str(path)) as c:
        best = None
        for frame in c.decode(video=0):
            if best is None or abs(float(frame.pts * frame.time_base) - t) < abs(
                float(best.pts * best.time_base) - t
            ):
                best = frame
        assert best is not None
        return best


def rms(samples: list[float]) -> float:
    return math.sqrt(sum(s * s for s in samples) / len(samples))


def crashed_render(folder: Path) -> None:
    """Leave what a render killed mid-way leaves: a partial file and progress naming a dead process."""
    dead = subprocess.Popen(["true"])
    dead.wait()
    playback_dir(folder).mkdir()
    (playback_dir(folder) / (OUTPUT_NAME + ".part")).write_bytes(b"half a render")
    (playback_dir(folder) / PROGRESS_NAME).write_text(
        json.dumps(
            {"state": "rendering", "percent": 41.0, "pid": dead.pid, "updated_at": "2024-05-01T10:00:00Z"}
        )
    )


@pytest.mark.slow
def test_render_in_a_separate_process(hearing_copy: Path) -> None:
    crashed_render(hearing_copy)
    stale = read_progress(hearing_copy)
    assert stale is not None and stale.state is RenderState.FAILED and stale.percent == 41.0

    process = start_composite(hearing_copy)
    try:
        seen = set()
        deadline = time.monotonic() + 90
        while process.poll() is None and time.monotonic() < deadline:
            progress = read_progress(hearing_copy)
            if progress is not None:
                seen.add(progress.state)
            time.sleep(0.1)
        assert process.returncode == 0, (playback_dir(hearing_copy) / "render.log").read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    progress = read_progress(hearing_copy)
    assert progress is not None and progress.state is RenderState.DONE and progress.percent == 100.0
    assert seen & {RenderState.QUEUED, RenderState.RENDERING}
    assert progress.speed_x is not None and progress.speed_x > 0
    print(f"composite rendered at {progress.speed_x}x real time")
    output = playback_dir(hearing_copy) / OUTPUT_NAME
    assert not list(playback_dir(hearing_copy).glob("*.part"))

    head = output.read_bytes()[:65536]
    assert 0 <= head.find(b"moov") < head.find(b"mdat"), "faststart: moov must precede mdat"
    with av.open(str(output)) as c:
        assert [(s.type, s.codec_context.name) for s in c.streams] == [("video", "h264"), ("audio", "aac")]
        assert (c.streams.video[0].width, c.streams.video[0].height) == (1280, 720)
        assert c.duration is not None and abs(c.duration / 1e6 - 5.0) < 0.5

    # Grid 2x2 of 640x360 cells: judge, lawyer / witness, empty.  The witness joins at 1.0 s.
    early, late = frame_at(output, 0.5), frame_at(output, 3.0)
    assert close_colour(pixel_rgb(late, 320, 180), (220, 30, 30))
    assert close_colour(pixel_rgb(late, 960, 180), (30, 200, 40))
    assert close_colour(pixel_rgb(late, 320, 540), (40, 40, 220))
    assert close_colour(pixel_rgb(late, 960, 540), BLACK, 12)
    assert close_colour(pixel_rgb(early, 320, 540), GREY, 12)  # witness not there yet: placeholder
    assert close_colour(pixel_rgb(late, 20, 180), BLACK, 12)  # letterbox beside the 4:3 judge

    audio = decode_audio(output)
    assert abs(audio.duration - 5.0) < 0.5
    two = rms(audio.samples[int(0.3 * 48000) : int(0.9 * 48000)])  # judge + lawyer
    three = rms(audio.samples[int(2.0 * 48000) : int(4.0 * 48000)])  # + witness
    assert 0.2 < two < 0.3 and 0.26 < three < 0.36 and three > two * 1.1


def test_a_second_render_of_the_same_hearing_is_refused(hearing_copy: Path) -> None:
    playback_dir(hearing_copy).mkdir()
    with (playback_dir(hearing_copy) / LOCK_NAME).open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        done = subprocess.run(
            [sys.executable, "-m", "recording.composite", str(hearing_copy), "--nice", "0"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 3 and "already running" in done.stderr
    assert not (playback_dir(hearing_copy) / OUTPUT_NAME).exists()
