"""Child process for the crash test: records live-paced frames until it is killed.

Usage: python recording_crash_child.py FOLDER MEDIA_PICKLE.  Prints the epoch, then feeds frames forever.
"""

from __future__ import annotations

import pickle
import sys
import time
from pathlib import Path

from recording_media import Participant

from media.contract import EncodedFrame
from recording.recorder import HearingRecorder


def main() -> None:
    folder, media_path = Path(sys.argv[1]), Path(sys.argv[2])
    data = media_path.read_bytes()
    clips: list[tuple[Participant, list[tuple[bytes, bool]], list[bytes]]] = pickle.loads(data)  # noqa: S301
    recorder = HearingRecorder(folder, "CRASH", min_free_bytes=0, warn_free_bytes=0)
    recorder.start()
    epoch = recorder.epoch
    print(repr(epoch), flush=True)
    sent = [[0, 0] for _ in clips]  # video, audio frames sent per participant
    while True:
        now = time.time()
        for (party, video, audio), counts in zip(clips, sent, strict=True):
            while epoch + counts[0] / 30 <= now:
                data, key = video[counts[0] % len(video)]
                recorder.frame(
                    EncodedFrame(
                        party.video,
                        data,
                        counts[0] * 3000,
                        epoch + counts[0] / 30,
                        key,
                        party.width,
                        party.height,
                    )
                )
                counts[0] += 1
            while epoch + counts[1] * 0.02 <= now:
                data = audio[counts[1] % len(audio)]
                recorder.frame(
                    EncodedFrame(party.audio, data, counts[1] * 960, epoch + counts[1] * 0.02, False)
                )
                counts[1] += 1
        time.sleep(0.005)


if __name__ == "__main__":
    main()
