"""The recorder: real VP8/Opus frames in, decodable segment files out, on one shared timeline."""

from __future__ import annotations

import asyncio
import os
import subprocess
import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import pytest
from recording_media import (
    HEARING_ID,
    EncodedMedia,
    Participant,
    RecordedHearing,
    audio_frames,
    close_colour,
    decode_audio,
    decode_video,
    dominant_frequency,
    encode_vp8,
    interleave,
    video_frames,
)

from media.contract import EncodedFrame
from recording.disk import InsufficientDiskSpaceError, ensure_disk_space
from recording.media_info import read_media_info
from recording.recorder import HearingRecorder
from recording.recorder_types import RecorderEvent, RecorderEventType, RecorderState


def segment_files(folder: Path, participant: str, kind: str) -> list[Path]:
    return sorted((folder / "tracks").glob(f"{participant}-{kind}-*.webm"))


def test_every_track_decodes_with_its_colour_tone_and_length(
    recorded_hearing: RecordedHearing, media: list[EncodedMedia]
) -> None:
    folder = recorded_hearing.folder
    for m in media:
        pid = m.party.participant_id
        [video_path] = segment_files(folder, pid, "video")
        [audio_path] = segment_files(folder, pid, "audio")

        video = decode_video(video_path)
        assert len(video.times) == len(m.video)
        assert set(video.sizes) == {(m.party.width, m.party.height)}
        assert all(close_colour(c, m.party.rgb) for c in video.colours), (pid, video.colours[:3])
        assert abs((video.times[-1] - video.times[0] + 1 / 30) - m.seconds) < 0.5

        audio = decode_audio(audio_path)
        assert len(audio.samples) == len(m.audio) * 960  # every sample kept (pre-skip 0)
        assert abs(audio.duration - m.seconds) < 0.5
        assert abs(dominant_frequency(audio.samples[4800:]) - m.party.tone_hz) < 5


def test_tracks_share_one_timeline(recorded_hearing: RecordedHearing, media: list[EncodedMedia]) -> None:
    folder = recorded_hearing.folder
    epochs = set()
    for m in media:
        for kind in ("video", "audio"):
            [path] = segment_files(folder, m.party.participant_id, kind)
            info = read_media_info(path)
            epochs.add(info.epoch_us)
            assert (
                info.hearing_id == HEARING_ID
                and info.participant_id == m.party.participant_id
                and info.kind == kind
            )
            assert info.first_timestamp_s is not None
            assert abs(info.first_timestamp_s - m.offset) < 0.1, (path.name, info.first_timestamp_s, m.offset)
        video_start = decode_video(segment_files(folder, m.party.participant_id, "video")[0]).times[0]
        audio_start = decode_audio(segment_files(folder, m.party.participant_id, "audio")[0]).start
        assert abs(video_start - audio_start) < 0.1
    assert epochs == {round(recorded_hearing.epoch * 1_000_000)}


def test_segment_events_and_listing(recorded_hearing: RecordedHearing) -> None:
    opened = [e for e in recorded_hearing.events if e.type is RecorderEventType.SEGMENT_OPENED]
    closed = [e for e in recorded_hearing.events if e.type is RecorderEventType.SEGMENT_CLOSED]
    assert len(opened) == len(closed) == 6
    segments = recorded_hearing.recorder.segments
    assert len(segments) == 6 and all(s.closed for s in segments)
    witness = next(s for s in segments if s.participant_id == "witness" and s.kind == "video")
    assert (witness.width, witness.height, witness.frames) == (240, 320, 120)
    assert witness.first_time_s == pytest.approx(1.0, abs=0.002)


def record(folder: Path, frames: list[EncodedFrame], **kwargs) -> tuple[HearingRecorder, list[RecorderEvent]]:
    events: list[RecorderEvent] = []
    epoch = kwargs.pop("epoch", None)
    recorder = HearingRecorder(
        folder, "H", on_event=events.append, epoch=epoch, min_free_bytes=0, warn_free_bytes=0, **kwargs
    )
    recorder.start()
    for frame in frames:
        recorder.frame(frame)
    recorder.stop()
    return recorder, events


def test_resolution_change_starts_a_new_segment(tmp_path: Path) -> None:
    phone = Participant("phone", (200, 200, 40), 500, 320, 240)
    landscape = encode_vp8(phone.rgb, 320, 240, 60)
    portrait = encode_vp8(phone.rgb, 240, 320, 60)
    epoch = time.time()
    frames = video_frames(phone.video, landscape, epoch, 320, 240) + video_frames(
        phone.video, portrait, epoch + 2, 240, 320
    )
    recorder, _ = record(tmp_path, frames, epoch=epoch)
    first, second = segment_files(tmp_path, "phone", "video")
    a, b = decode_video(first), decode_video(second)
    assert (len(a.times), set(a.sizes)) == (60, {(320, 240)})
    assert (len(b.times), set(b.sizes)) == (60, {(240, 320)})
    assert b.times[0] == pytest.approx(2.0, abs=0.01)
    assert all(close_colour(c, phone.rgb) for c in a.colours + b.colours)


def test_recess_closes_segments_and_resumes_at_a_keyframe(tmp_path: Path, media: list[EncodedMedia]) -> None:
    judge = media[0]
    epoch = time.time()
    video = video_frames(judge.party.video, judge.video, epoch, 320, 240)  # keyframes at 0, 1, 2 ... s
    audio = audio_frames(judge.party.audio, judge.audio, epoch)
    recorder = HearingRecorder(tmp_path, "H", epoch=epoch, min_free_bytes=0, warn_free_bytes=0)
    recorder.start()
    for frame in interleave(video[:30], audio[:50]):  # 0 .. 1 s
        recorder.frame(frame)
    recorder.pause()
    assert recorder.state is RecorderState.PAUSED
    for frame in interleave(video[30:60], audio[50:100]):  # recess: nothing recorded
        recorder.frame(frame)
    recorder.resume()
    for frame in interleave(video[75:], audio[125:]):  # resumes mid-GOP at 2.5 s: video waits for 3.0 s
        recorder.frame(frame)
    recorder.stop()
    assert recorder.frames_paused == 80
    v1, v2 = (decode_video(p) for p in segment_files(tmp_path, "judge", "video"))
    a1, a2 = (decode_audio(p) for p in segment_files(tmp_path, "judge", "audio"))
    assert len(v1.times) == 30 and v2.times[0] == pytest.approx(3.0, abs=0.01) and len(v2.times) == 60
    assert a1.duration == pytest.approx(1.0, abs=0.02) and a2.start == pytest.approx(2.5, abs=0.01)


def test_gap_is_reported_and_kept(tmp_path: Path, media: list[EncodedMedia]) -> None:
    judge = media[0]
    epoch = time.time()
    audio = audio_frames(judge.party.audio, judge.audio[:100], epoch)
    later = [EncodedFrame(f.track, f.data, f.rtp_timestamp, f.wallclock + 3.0, False) for f in audio[50:]]
    _, events = record(tmp_path, audio[:50] + later, epoch=epoch)
    [gap] = [e for e in events if e.type is RecorderEventType.GAP_DETECTED]
    assert gap.track == judge.party.audio
    assert gap.gap_start_s == pytest.approx(0.98, abs=0.01) and gap.gap_end_s == pytest.approx(4.0, abs=0.01)
    [path] = segment_files(tmp_path, "judge", "audio")
    info = read_media_info(path)
    assert info.first_timestamp_s == pytest.approx(0.0) and info.last_timestamp_s == pytest.approx(
        5.0, abs=0.03
    )
    assert decode_audio(path).duration == pytest.approx(2.0, abs=0.03)  # the gap stays a gap


async def test_events_arrive_on_the_event_loop(tmp_path: Path, media: list[EncodedMedia]) -> None:
    threads: set[int] = set()
    got = asyncio.Event()

    def on_event(event: RecorderEvent) -> None:
        threads.add(threading.get_ident())
        if event.type is RecorderEventType.SEGMENT_OPENED:
            got.set()

    recorder = HearingRecorder(tmp_path, "H", on_event=on_event, min_free_bytes=0, warn_free_bytes=0)
    recorder.start()
    for frame in audio_frames(media[0].party.audio, media[0].audio[:10], recorder.epoch):
        recorder.frame(frame)
    await asyncio.wait_for(got.wait(), 2)
    await recorder.aclose()
    await asyncio.sleep(0)
    assert threads == {threading.get_ident()}


def test_start_refuses_below_the_disk_floor(tmp_path: Path) -> None:
    with pytest.raises(InsufficientDiskSpaceError):
        ensure_disk_space(tmp_path, 1 << 60)
    recorder = HearingRecorder(tmp_path / "h", "H", min_free_bytes=1 << 60)
    with pytest.raises(InsufficientDiskSpaceError):
        recorder.start()
    assert recorder.state is RecorderState.IDLE


def test_low_disk_space_is_warned(tmp_path: Path) -> None:
    events: list[RecorderEvent] = []
    recorder = HearingRecorder(
        tmp_path,
        "H",
        on_event=events.append,
        min_free_bytes=0,
        warn_free_bytes=1 << 60,
        disk_check_interval_s=0.05,
    )
    recorder.start()
    deadline = time.monotonic() + 2
    while not events and time.monotonic() < deadline:
        time.sleep(0.05)
    recorder.stop()
    [warning] = [e for e in events if e.type is RecorderEventType.DISK_SPACE_LOW]
    assert warning.free_bytes is not None and warning.free_bytes > 0


def test_queue_overflow_fails_loudly(tmp_path: Path, media: list[EncodedMedia]) -> None:
    events: list[RecorderEvent] = []
    recorder = HearingRecorder(
        tmp_path, "H", on_event=events.append, queue_frames=1, min_free_bytes=0, warn_free_bytes=0
    )
    recorder.start()
    frames = audio_frames(media[0].party.audio, media[0].audio, recorder.epoch)
    for frame in frames:
        recorder.frame(frame)
    recorder.stop()
    assert recorder.state is RecorderState.FAILED and "overflow" in (recorder.failure or "")
    assert [e.type for e in events].count(RecorderEventType.RECORDING_FAILED) == 1
    assert recorder.frames_written + recorder.frames_lost == len(frames)
    assert recorder.frames_lost > 0


@pytest.fixture
def tiny_disk(tmp_path: Path):
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount_point)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


async def test_full_disk_reports_recording_failed_within_two_seconds(tiny_disk: Path) -> None:
    failed = asyncio.Event()
    events: list[RecorderEvent] = []

    def on_event(event: RecorderEvent) -> None:
        events.append(event)
        if event.type is RecorderEventType.RECORDING_FAILED:
            failed.set()

    noisy = Participant("noisy", (0, 0, 0), 0, 320, 240)
    payload = os.urandom(20_000)  # incompressible frames fill 256 KiB in ~13 frames
    recorder = HearingRecorder(tiny_disk / "H", "H", on_event=on_event, min_free_bytes=0, warn_free_bytes=0)
    recorder.start()
    started = time.monotonic()
    for i in range(40):
        data = encode_vp8(noisy.rgb, 320, 240, 1)[0][0] + payload if i == 0 else payload
        recorder.frame(EncodedFrame(noisy.video, data, i * 3000, recorder.epoch + i / 30, i == 0, 320, 240))
    await asyncio.wait_for(failed.wait(), 2)
    assert time.monotonic() - started < 2
    assert recorder.failed and recorder.state is RecorderState.FAILED
    assert "No space" in (recorder.failure or "") or "28" in (recorder.failure or "")
    recorder.frame(EncodedFrame(noisy.video, payload, 0, recorder.epoch + 5, False))
    await recorder.aclose()
    assert recorder.frames_lost > 0 and recorder.frames_written + recorder.frames_lost == 41
    assert recorder.state is RecorderState.FAILED


def test_cpu_cost_per_recorded_track(tmp_path: Path, media: list[EncodedMedia]) -> None:
    """Measures (and prints) the recorder's CPU per second of one participant: 30 fps VP8 ~1 Mbps + Opus."""
    enc = av.CodecContext.create("libvpx", "w")
    enc.width, enc.height, enc.pix_fmt, enc.time_base = 640, 480, "yuv420p", Fraction(1, 30)
    enc.bit_rate, enc.gop_size = 1_000_000, 60
    enc.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    clip: list[tuple[bytes, bool]] = []
    noise = os.urandom(640 * 48 * 2)
    for i in range(60):
        frame = av.VideoFrame(640, 480, "yuv420p")
        # A flat picture with a moving noisy band: about a webcam's 1 Mbps of VP8.
        band = noise[i * 500 : i * 500 + 640 * 36]
        frame.planes[0].update(bytes([100]) * (640 * 200) + band + bytes([100]) * (640 * (480 - 200 - 36)))
        frame.planes[1].update(bytes([128]) * frame.planes[1].buffer_size)
        frame.planes[2].update(bytes([128]) * frame.planes[2].buffer_size)
        frame.pts = i
        clip.extend((bytes(p), p.is_keyframe) for p in enc.encode(frame))
    seconds = 20
    party = Participant("bench", (0, 0, 0), 0, 640, 480)
    epoch = time.time()
    video = [(clip[i % len(clip)][0], i % len(clip) == 0) for i in range(seconds * 30)]
    frames = interleave(
        video_frames(party.video, video, epoch, 640, 480),
        audio_frames(party.audio, (media[0].audio * 5)[: seconds * 50], epoch),
    )
    kbps = sum(len(d) for d, _ in video) * 8 / seconds / 1000
    cpu0 = time.process_time()
    recorder, _ = record(tmp_path, frames, epoch=epoch)
    cpu = time.process_time() - cpu0
    assert recorder.frames_written == len(frames) and recorder.failure is None
    per_second_ms = cpu / seconds * 1000
    print(
        f"\nrecorder CPU: {per_second_ms:.2f} ms per second of 640x480 VP8 ({kbps:.0f} kbps) + Opus "
        f"({per_second_ms / 10:.2f} % of a core)"
    )
    assert per_second_ms < 30  # < 3 % of a core per participant, even on a loaded machine


def test_h264_is_remuxed_into_matroska(tmp_path: Path) -> None:
    enc = av.CodecContext.create("libx264", "w")
    enc.width, enc.height, enc.pix_fmt, enc.time_base = 320, 240, "yuv420p", Fraction(1, 30)
    enc.gop_size = 30
    enc.options = {
        "preset": "ultrafast",
        "tune": "zerolatency",
        "profile": "baseline",
        "x264-params": "repeat-headers=1",
    }
    clip = []
    for i in range(45):
        frame = av.VideoFrame(320, 240, "yuv420p")
        for plane, value in zip(frame.planes, (41, 240, 110), strict=True):  # blue-ish
            plane.update(bytes([value]) * plane.buffer_size)
        frame.pts = i
        clip.extend((bytes(p), p.is_keyframe) for p in enc.encode(frame))
    clip.extend((bytes(p), p.is_keyframe) for p in enc.encode(None))
    party = Participant("courtroom", (0, 0, 0), 0, 320, 240)
    track = party.video.__class__("courtroom-v", "courtroom", "video", "H264", 90000)
    epoch = time.time()
    frames = [
        EncodedFrame(track, d, i * 3000, epoch + i / 30, k, 320 if k else None, 240 if k else None)
        for i, (d, k) in enumerate(clip)
    ]
    record(tmp_path, frames, epoch=epoch)
    [path] = sorted((tmp_path / "tracks").glob("courtroom-video-*.mkv"))
    decoded = decode_video(path)
    assert len(decoded.times) == 45 and set(decoded.sizes) == {(320, 240)}
    assert read_media_info(path).codec == "h264"
