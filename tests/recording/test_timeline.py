"""The hearing timeline: RTP times land on the server's clock through sender reports, one offset per
publisher connection, never going backwards; a publisher's audio and video stay aligned."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from recording_media import EncodedMedia, decode_audio, decode_video
from rtp_media import by_arrival, opus_packets, vp8_packets
from test_packet_recording import record_packets, track_file

from media.contract import SenderReport, TrackInfo
from recording.timeline import PublisherClock, TrackClock, publisher_connection


def report(ntp_time: float, rtp: int) -> SenderReport:
    return SenderReport(ntp_time=ntp_time, rtp_timestamp=rtp & 0xFFFFFFFF, received_at=0.0)


def test_tracks_of_one_publisher_connection_share_a_clock() -> None:
    def track(track_id: str, kind: str = "video") -> TrackInfo:
        return TrackInfo(track_id, "lawyer", kind, "VP8" if kind == "video" else "opus", 90000)

    assert publisher_connection(track("lawyer/video/2")) == publisher_connection(
        track("lawyer/audio/2", "audio")
    )
    assert publisher_connection(track("lawyer/video/2")) != publisher_connection(track("lawyer/video/3"))
    assert publisher_connection(track("lawyer-v")) == publisher_connection(track("lawyer-a", "audio"))


def test_arrival_time_until_a_sender_report_then_report_time_with_one_offset_per_publisher() -> None:
    publisher = PublisherClock()
    video = TrackClock(publisher, 90000)
    audio = TrackClock(publisher, 48000)
    assert video.wallclock(1000, arrival=500.0) == 500.0
    # the publisher's clock is 100 s behind ours; the first mapped frame fixes the offset
    video.report = report(400.0, 1000)
    assert video.wallclock(1000 + 9000, arrival=500.2) == pytest.approx(500.2)
    assert video.wallclock(1000 + 18000, arrival=500.9) == pytest.approx(500.3)
    # audio of the same publisher shares the offset: captured at sender time 400.1 → 500.2
    audio.report = report(400.0, 7000)
    assert audio.wallclock(7000 + 4800, arrival=500.5) == pytest.approx(500.2)


def test_report_rtp_time_is_matched_across_a_32_bit_wrap() -> None:
    clock = TrackClock(PublisherClock(), 90000)
    clock.report = report(5.0, (1 << 32) - 8100)
    assert clock.wallclock(900, arrival=10.0) == pytest.approx(10.0)  # past the wrap, as sent
    assert clock.wallclock(900 + 90000, arrival=99.0) == pytest.approx(11.0)


def test_wallclock_never_goes_backwards() -> None:
    clock = TrackClock(PublisherClock(), 90000)
    a = clock.wallclock(0, arrival=10.0)
    b = clock.wallclock(3000, arrival=9.5)
    assert b > a


def test_sender_reports_align_audio_and_video_that_arrive_apart(
    tmp_path: Path, media: list[EncodedMedia]
) -> None:
    """Video arrives 130 ms after the audio captured with it; sender reports put them back together.

    A reconnect (a new publisher connection, its clock 2 s off the first's) gets its own offset;
    a third connection sends no reports, so its tracks stay where they arrived.
    """
    judge = media[0]
    epoch = time.time() - 30
    skew = 3.7  # the publisher's clock runs this far ahead of the server's
    video_ts, audio_ts = 4_294_900_000, 987_654  # the video's RTP time wraps 32 bits at frame 23
    connections = ((1, 0.5, 0.0, True), (2, 3.0, 2.0, True), (3, 5.5, 0.0, False))
    tracks, packets, reports = [], [], []
    for generation, start, clock_error, reporting in connections:
        video_track = TrackInfo(f"judge/video/{generation}", "judge", "video", "VP8", 90000)
        audio_track = TrackInfo(f"judge/audio/{generation}", "judge", "audio", "opus", 48000, 1)
        tracks += [video_track, audio_track]
        arrive = epoch + start
        video = vp8_packets(video_track, [d for d, _ in judge.video[:60]], arrive + 0.15, first_ts=video_ts)
        audio = opus_packets(audio_track, judge.audio[:100], arrive + 0.02, first_ts=audio_ts)
        packets += [s.packet for s in by_arrival(video, audio)]
        if reporting:
            sender_start = arrive + skew + clock_error  # when both first frames were captured, its clock
            reports += [
                (
                    arrive + 0.3,
                    video_track,
                    SenderReport(sender_start + 0.3, (video_ts + 27000) % 2**32, 0.0),
                ),
                (arrive + 0.3, audio_track, SenderReport(sender_start + 0.3, audio_ts + 14400, 0.0)),
            ]
    recording = record_packets(tmp_path, epoch, tracks, sorted(packets, key=lambda p: p.arrival), reports)
    assert recording.recorder.packet_stats.missing == 0
    for index, (_, start, _, reporting) in enumerate(connections, 1):
        video = decode_video(track_file(tmp_path, "judge", "video", index))
        audio = decode_audio(track_file(tmp_path, "judge", "audio", index))
        assert len(video.times) == 60 and audio.duration == pytest.approx(2.0, abs=0.03)
        # with reports, one offset (set by the first frame mapped: the audio, 20 ms after capture)
        # puts frames captured together at the same time; without, they lie where they arrived
        assert video.times[0] - audio.start == pytest.approx(0.0 if reporting else 0.13, abs=0.01)
        assert audio.start == pytest.approx(start + 0.02, abs=0.01)
        assert video.times[30] == pytest.approx(video.times[0] + 1.0, abs=0.01)
