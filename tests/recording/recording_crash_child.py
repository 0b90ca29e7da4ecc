"""Child process for the crash test: records live-paced frames or RTP packets until it is killed.

Usage: python recording_crash_child.py FOLDER MEDIA_PICKLE [frames|packets].  Prints the epoch,
then feeds media forever; packets arrive with neighbours swapped now and then (reordered).
"""

from __future__ import annotations

import pickle
import random
import sys
import time
from pathlib import Path

from recording_media import Participant
from rtp_media import vp8_payloads

from media.contract import EncodedFrame, RtpPacket
from recording.recorder import HearingRecorder


def main() -> None:
    folder, media_path = Path(sys.argv[1]), Path(sys.argv[2])
    packets = len(sys.argv) > 3 and sys.argv[3] == "packets"
    data = media_path.read_bytes()
    clips: list[tuple[Participant, list[tuple[bytes, bool]], list[bytes]]] = pickle.loads(data)  # noqa: S301
    recorder = HearingRecorder(folder, "CRASH", min_free_bytes=0, warn_free_bytes=0)
    recorder.start()
    if packets:
        for party, _, _ in clips:
            recorder.track_started(party.video, lambda: None)
            recorder.track_started(party.audio, lambda: None)
    epoch = recorder.epoch
    print(repr(epoch), flush=True)
    sent = [[0, 0] for _ in clips]  # video, audio frames sent per participant
    seqs = [[0, 0] for _ in clips]
    rng = random.Random(5)
    while True:
        now = time.time()
        batch: list[RtpPacket] = []
        for (party, video, audio), counts, seq in zip(clips, sent, seqs, strict=True):
            while epoch + counts[0] / 30 <= now:
                data, key = video[counts[0] % len(video)]
                if packets:
                    payloads = vp8_payloads(data, counts[0], max_payload=200)
                    for n, payload in enumerate(payloads):
                        marker = n == len(payloads) - 1
                        batch.append(
                            RtpPacket(party.video, seq[0] & 0xFFFF, counts[0] * 3000, marker, payload, now)
                        )
                        seq[0] += 1
                else:
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
                if packets:
                    batch.append(RtpPacket(party.audio, seq[1] & 0xFFFF, counts[1] * 960, False, data, now))
                    seq[1] += 1
                else:
                    recorder.frame(
                        EncodedFrame(party.audio, data, counts[1] * 960, epoch + counts[1] * 0.02, False)
                    )
                counts[1] += 1
        for i in range(len(batch) - 1):
            if rng.random() < 0.1:  # the network swaps neighbours
                batch[i], batch[i + 1] = batch[i + 1], batch[i]
        for packet in batch:
            recorder.packet(packet)
        time.sleep(0.005)


if __name__ == "__main__":
    main()
