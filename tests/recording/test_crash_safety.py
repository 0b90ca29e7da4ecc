"""A recorder killed mid-hearing leaves files that decode and lose at most about a second."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from recording_media import EncodedMedia, decode_audio, decode_video

from recording.media_info import read_media_info

HERE = Path(__file__).parent


@pytest.mark.slow
@pytest.mark.parametrize("given", ["frames", "packets"])
def test_sigkill_loses_at_most_one_and_a_half_seconds(
    tmp_path: Path, media: list[EncodedMedia], given: str
) -> None:
    clips = tmp_path / "clips.pickle"
    clips.write_bytes(pickle.dumps([(m.party, m.video, m.audio) for m in media]))
    folder = tmp_path / "hearing"
    child = subprocess.Popen(
        [sys.executable, str(HERE / "recording_crash_child.py"), str(folder), str(clips), given],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(HERE)},
    )
    try:
        assert child.stdout is not None
        epoch = float(child.stdout.readline())
        time.sleep(max(0.0, epoch + 4.0 - time.time()))
        killed_at = time.time()
        child.send_signal(signal.SIGKILL)
        child.wait(5)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    recorded = killed_at - epoch
    files = sorted((folder / "tracks").glob("*.webm"))
    assert len(files) == 6
    for path in files:
        info = read_media_info(path)
        assert info.last_timestamp_s is not None
        lost = recorded - info.last_timestamp_s
        assert lost <= 1.5, f"{path.name}: {lost:.2f} s lost"
        if info.kind == "video":
            decoded = decode_video(path)
            assert decoded.times and recorded - decoded.times[-1] <= 1.5
            assert len(decoded.times) >= (recorded - 1.5) * 30 * 0.95
        else:
            audio = decode_audio(path)
            assert recorded - (audio.start + audio.duration) <= 1.5
        print(
            f"{path.name}: recorded {recorded:.2f} s, kept up to {info.last_timestamp_s:.2f} s, "
            f"lost {lost:.2f} s"
        )
