"""The recorder fed RTP packets as a network delivers them: reordered, duplicated, lost and late.

Every recorded frame is compared bit for bit with the frame the publisher encoded; the files
decode with the right colours, tones and timeline, as when the recorder is fed frames.
"""

from __future__ import annotations

import fractions
import random
import time
from dataclasses import dataclass, replace
from pathlib import Path

import av
import pytest
from recording_media import (
    FPS,
    EncodedMedia,
    Participant,
    close_colour,
    decode_audio,
    decode_video,
    dominant_frequency,
    encode_vp8,
)
from rtp_media import (
    Sent,
    by_arrival,
    duplicate,
    h264_payloads,
    jitter,
    nal_units,
    opus_packets,
    packetize,
    vp8_packets,
)

from media.contract import RtpPacket, SenderReport, TrackInfo
from recording.media_info import read_media_info
from recording.packet_track import PacketTrack
from recording.recorder import HearingRecorder
from recording.recorder_types import RecorderEvent, RecorderEventType, RecorderState
from recording.timeline import PublisherClock, TrackClock


def demuxed(path: Path) -> list[bytes]:
    """The stored frames of a one-stream file, as bytes."""
    with av.open(str(path)) as container:
        return [bytes(p) for p in container.demux() if p.size]


def stored_nal_units(data: bytes) -> list[bytes]:
    """NAL units of a stored H.264 frame: length-prefixed (as Matroska keeps them) or Annex B."""
    if data.startswith(b"\x00\x00\x00\x01") or data.startswith(b"\x00\x00\x01"):
        return nal_units(data)
    units, pos = [], 0
    while pos < len(data):
        size = int.from_bytes(data[pos : pos + 4], "big")
        units.append(data[pos + 4 : pos + 4 + size])
        pos += 4 + size
    return units


def track_file(folder: Path, participant: str, kind: str, index: int = 1) -> Path:
    [path] = (folder / "tracks").glob(f"{participant}-{kind}-{index:03d}.*")
    return path


class KeyframeLog:
    """Counts keyframe requests (they come from the writer thread)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


@dataclass
class PacketRecording:
    """A recorder run fed packets."""

    folder: Path
    recorder: HearingRecorder
    events: list[RecorderEvent]
    requests: dict[str, KeyframeLog]


def record_packets(
    folder: Path,
    epoch: float,
    tracks: list[TrackInfo],
    packets: list[RtpPacket],
    reports: list[tuple[float, TrackInfo, SenderReport]] | None = None,
    **kwargs: float,
) -> PacketRecording:
    """Start a recorder, announce the tracks, feed the packets (and sender reports by arrival), stop."""
    events: list[RecorderEvent] = []
    recorder = HearingRecorder(
        folder, "H", on_event=events.append, epoch=epoch, min_free_bytes=0, warn_free_bytes=0, **kwargs
    )
    recorder.start()
    requests = {t.track_id: KeyframeLog() for t in tracks}
    for track in tracks:
        recorder.track_started(track, requests[track.track_id])
    pending = sorted(reports or [], key=lambda r: r[0])
    for packet in packets:
        while pending and pending[0][0] <= packet.arrival:  # reports land among the packets around them
            _, track, report = pending.pop(0)
            recorder.sender_report(track, report)
        recorder.packet(packet)
    for track in tracks:
        recorder.track_ended(track)
    recorder.stop()
    assert recorder.failure is None
    return PacketRecording(folder, recorder, events, requests)


# --- the three-party hearing, over a poor network --------------------------------------------


@pytest.fixture(scope="module")
def network_hearing(tmp_path_factory: pytest.TempPathFactory, media: list[EncodedMedia]) -> PacketRecording:
    """The shared hearing sent as packets: up to 60 ms jitter, 5 % retransmitted copies, wrapping numbers.

    The judge's publisher sends sender reports (its clock is 3.7 s ahead of the server's); the
    others do not, so their frames are placed by arrival time.
    """
    rng = random.Random(13)
    epoch = time.time() - 60
    streams: list[list[Sent]] = []
    reports: list[tuple[float, TrackInfo, SenderReport]] = []
    for n, m in enumerate(media):
        start = epoch + m.offset
        video = vp8_packets(
            m.party.video, [d for d, _ in m.video], start, first_seq=65400 + n, first_ts=2**32 - 9000
        )
        audio = opus_packets(m.party.audio, m.audio, start, first_seq=7 * n)
        streams += [jitter(duplicate(video, rng, 0.05, 0.15), rng, 0.06), jitter(audio, rng, 0.06)]
        if m.party.participant_id == "judge":
            for track, clock_rate, first_ts in (
                (m.party.video, 90000, 2**32 - 9000),
                (m.party.audio, 48000, 0),
            ):
                # the publisher's wall clock when the track's first frame was captured: start + 3.7 s
                reports.append(
                    (
                        start + 0.5,
                        track,
                        SenderReport(start + 3.7 + 0.5, (first_ts + clock_rate // 2) % 2**32, start + 0.5),
                    )
                )
    sent = by_arrival(*streams)
    tracks = [t for m in media for t in (m.party.video, m.party.audio)]
    folder = tmp_path_factory.mktemp("network") / "H"
    return record_packets(folder, epoch, tracks, [s.packet for s in sent], reports)


def test_every_frame_is_recorded_bit_exact_despite_reordering_and_duplicates(
    network_hearing: PacketRecording, media: list[EncodedMedia]
) -> None:
    stats = network_hearing.recorder.packet_stats
    assert stats.missing == 0 and stats.frames_incomplete == 0 and stats.frames_skipped == 0
    assert stats.duplicates > 10  # the retransmitted copies were seen and dropped
    assert stats.keyframe_requests == 0
    for m in media:
        pid = m.party.participant_id
        video_path = track_file(network_hearing.folder, pid, "video")
        audio_path = track_file(network_hearing.folder, pid, "audio")
        assert demuxed(video_path) == [d for d, _ in m.video]
        assert demuxed(audio_path) == m.audio
        video = decode_video(video_path)
        assert all(close_colour(c, m.party.rgb) for c in video.colours) and set(video.sizes) == {
            (m.party.width, m.party.height)
        }
        audio = decode_audio(audio_path)
        assert len(audio.samples) == len(m.audio) * 960
        assert abs(dominant_frequency(audio.samples[4800:]) - m.party.tone_hz) < 5


def test_packet_recorded_tracks_share_one_timeline(
    network_hearing: PacketRecording, media: list[EncodedMedia]
) -> None:
    for m in media:
        pid = m.party.participant_id
        video_path = track_file(network_hearing.folder, pid, "video")
        audio_path = track_file(network_hearing.folder, pid, "audio")
        for path in (video_path, audio_path):
            first = read_media_info(path).first_timestamp_s
            assert first is not None and abs(first - m.offset) < 0.1, (path.name, first, m.offset)
        video = decode_video(video_path)
        audio = decode_audio(audio_path)
        assert abs(video.times[0] - audio.start) < 0.1
        span = video.times[-1] - video.times[0] + 1 / FPS
        assert abs(span - m.seconds) < 0.15, (pid, span)


# --- loss, late retransmissions and keyframe requests ----------------------------------------


def test_a_lost_video_packet_skips_to_the_next_keyframe_and_asks_for_one(
    tmp_path: Path, media: list[EncodedMedia]
) -> None:
    judge = media[0]
    epoch = time.time() - 30
    video = vp8_packets(
        judge.party.video, [d for d, _ in judge.video], epoch, max_payload=16, first_seq=65500
    )
    audio = opus_packets(judge.party.audio, judge.audio, epoch)
    frame10 = [s for s in video if s.frame == 10]
    frame40 = [s for s in video if s.frame == 40]
    assert len(frame10) >= 2 and len(frame40) >= 2
    lost_audio = audio[100]
    # frame 10 loses its second packet for good (the retransmission comes 0.6 s later: too late);
    # frame 40's first packet is retransmitted 0.25 s later, within the hold, and is recovered.
    gone, recovered = frame10[1], frame40[0]
    late = [
        replace(gone, packet=replace(gone.packet, arrival=gone.packet.arrival + 0.6)),
        replace(recovered, packet=replace(recovered.packet, arrival=recovered.packet.arrival + 0.25)),
    ]
    kept = [s for s in video + audio if s not in (gone, recovered, lost_audio)]
    sent = by_arrival(kept, late)
    recording = record_packets(
        tmp_path, epoch, [judge.party.video, judge.party.audio], [s.packet for s in sent]
    )

    stats = recording.recorder.packet_stats
    assert (stats.missing, stats.frames_incomplete, stats.frames_skipped, stats.duplicates) == (2, 1, 19, 1)
    assert recording.requests[judge.party.video.track_id].count == 1
    assert recording.requests[judge.party.audio.track_id].count == 0
    expected = [d for i, (d, _) in enumerate(judge.video) if not 10 <= i < 30]
    assert demuxed(track_file(tmp_path, "judge", "video")) == expected  # 40 is there, bit-exact
    assert demuxed(track_file(tmp_path, "judge", "audio")) == judge.audio[:100] + judge.audio[101:]
    decoded = decode_video(track_file(tmp_path, "judge", "video"))
    assert len(decoded.times) == len(expected) and all(
        close_colour(c, judge.party.rgb) for c in decoded.colours
    )
    assert decoded.times[10] - decoded.times[9] == pytest.approx(21 / FPS, abs=0.01)  # the hole stays a hole
    assert not [e for e in recording.events if e.type is RecorderEventType.RECORDING_FAILED]


def feed_track(track: PacketTrack, sent: list[Sent]) -> tuple[list[int], list[int]]:
    """Push packets one by one; return the frame indices recorded and the packet index of each request."""
    by_timestamp = {s.packet.timestamp: s.frame for s in sent}
    recorded: list[int] = []
    requested_at: list[int] = []
    track.set_request_keyframe(lambda: requested_at.append(position))
    for position, s in enumerate(sent):  # noqa: B007 - read by the request callback
        recorded += [by_timestamp[f.rtp_timestamp % 2**32] for f in track.packet(s.packet)]
    recorded += [by_timestamp[f.rtp_timestamp % 2**32] for f in track.drain()]
    return recorded, requested_at


def test_the_keyframe_is_requested_exactly_when_the_loss_is_given_up(media: list[EncodedMedia]) -> None:
    judge = media[0]
    sent = vp8_packets(judge.party.video, [d for d, _ in judge.video], 1000.0)
    lost = next(s for s in sent if s.frame == 40)
    sent = [s for s in sent if s is not lost]
    track = PacketTrack(judge.party.video, TrackClock(PublisherClock(), 90000), hold_s=0.4)
    recorded, requested_at = feed_track(track, sent)
    # the first packet to arrive 0.4 s after the packet behind the hole gives it up
    behind = next(n for n, s in enumerate(sent) if s.packet.arrival > lost.packet.arrival)
    giving_up = next(n for n, s in enumerate(sent) if s.packet.arrival - sent[behind].packet.arrival >= 0.4)
    assert requested_at == [giving_up]
    assert recorded == [i for i in range(len(judge.video)) if not 40 <= i < 60]


def test_requests_repeat_while_no_keyframe_comes_and_a_track_starts_at_one(media: list[EncodedMedia]) -> None:
    party = Participant("slow", (90, 90, 200), 300, 320, 240)
    clip = encode_vp8(party.rgb, 320, 240, 150, gop=120)  # keyframes at 0 s and 4 s
    sent = vp8_packets(party.video, [d for d, _ in clip], 1000.0)
    joined = [s for s in sent if s.frame >= 5]  # the recorder starts mid-GOP
    track = PacketTrack(party.video, TrackClock(PublisherClock(), 90000), keyframe_retry_s=0.95)
    recorded, requested_at = feed_track(track, joined)
    request_frames = [joined[n].frame for n in requested_at]
    # as soon as the first frame is out of the start hold, then again after each 0.95 s of waiting
    start = next(
        s.frame for s in joined if s.packet.arrival - joined[0].packet.arrival >= track.reorder.hold_s
    )
    assert request_frames == [start, 34, 63, 92]
    assert recorded == list(range(120, 150))
    assert track.keyframes.frames_skipped == 115


# --- the rest of the recorder's behaviour, from packets ---------------------------------------


def test_resolution_change_from_packets_starts_a_new_segment(tmp_path: Path) -> None:
    phone = Participant("phone", (200, 200, 40), 500, 320, 240)
    landscape = [d for d, _ in encode_vp8(phone.rgb, 320, 240, 60)]
    portrait = [d for d, _ in encode_vp8(phone.rgb, 240, 320, 60)]
    epoch = time.time() - 10
    sent = vp8_packets(phone.video, landscape + portrait, epoch, first_seq=65000)
    recording = record_packets(tmp_path, epoch, [phone.video], [s.packet for s in sent])
    first, second = track_file(tmp_path, "phone", "video", 1), track_file(tmp_path, "phone", "video", 2)
    assert demuxed(first) == landscape and demuxed(second) == portrait
    a, b = decode_video(first), decode_video(second)
    assert set(a.sizes) == {(320, 240)} and set(b.sizes) == {(240, 320)}
    assert b.times[0] == pytest.approx(2.0, abs=0.01)
    assert recording.recorder.packet_stats.keyframe_requests == 0


def test_recess_with_packets_resumes_at_a_keyframe(tmp_path: Path, media: list[EncodedMedia]) -> None:
    judge = media[0]
    epoch = time.time() - 10
    sent = by_arrival(
        vp8_packets(judge.party.video, [d for d, _ in judge.video], epoch),
        opus_packets(judge.party.audio, judge.audio, epoch),
    )
    requests = KeyframeLog()
    recorder = HearingRecorder(tmp_path, "H", epoch=epoch, min_free_bytes=0, warn_free_bytes=0)
    recorder.start()
    recorder.track_started(judge.party.video, requests)
    recorder.track_started(judge.party.audio, KeyframeLog())
    for s in sent:
        at = s.packet.arrival - epoch
        if at >= 1.0 and recorder.state is RecorderState.RECORDING and at < 2.5:
            recorder.pause()
        if at >= 2.5 and recorder.state is RecorderState.PAUSED:
            recorder.resume()
        recorder.packet(s.packet)
    recorder.stop()
    assert recorder.packets_paused > 0
    v1, v2 = (demuxed(track_file(tmp_path, "judge", "video", i)) for i in (1, 2))
    assert v1 == [d for d, _ in judge.video[:30]] and v2 == [d for d, _ in judge.video[90:]]
    assert requests.count == 1  # asked at once on resuming mid-GOP
    a2 = decode_audio(track_file(tmp_path, "judge", "audio", 2))
    assert a2.start == pytest.approx(2.5, abs=0.03)


def test_h264_from_packets_is_remuxed_into_matroska(tmp_path: Path) -> None:
    encoder = av.CodecContext.create("libx264", "w")
    encoder.width, encoder.height, encoder.pix_fmt = 320, 240, "yuv420p"
    encoder.time_base = fractions.Fraction(1, 30)
    encoder.gop_size = 30
    encoder.options = {"preset": "ultrafast", "tune": "zerolatency", "profile": "baseline"}
    clip = []
    for i in range(45):
        frame = av.VideoFrame(320, 240, "yuv420p")
        for plane, value in zip(frame.planes, (41, 240, 110), strict=True):  # blue-ish
            plane.update(bytes([value]) * plane.buffer_size)
        frame.pts = i
        clip += [bytes(p) for p in encoder.encode(frame)]
    clip += [bytes(p) for p in encoder.encode(None)]
    track = TrackInfo("courtroom/video/1", "courtroom", "video", "H264", 90000)
    epoch = time.time() - 10
    sent = packetize(track, clip, lambda i, d: h264_payloads(d, 300), epoch, interval=1 / FPS)
    sent = jitter(sent, random.Random(2), 0.05)
    record_packets(tmp_path, epoch, [track], [s.packet for s in sent])
    path = track_file(tmp_path, "courtroom", "video")
    assert path.suffix == ".mkv" and read_media_info(path).codec == "h264"
    # Matroska stores H.264 length-prefixed: compare NAL unit by NAL unit
    assert [stored_nal_units(d) for d in demuxed(path)] == [nal_units(d) for d in clip]
    decoded = decode_video(path)
    assert len(decoded.times) == 45 and set(decoded.sizes) == {(320, 240)}
    assert all(close_colour(c, (0, 0, 255)) for c in decoded.colours)


def test_packet_queue_overflow_fails_loudly(tmp_path: Path, media: list[EncodedMedia]) -> None:
    judge = media[0]
    recorder = HearingRecorder(tmp_path, "H", queue_frames=1, min_free_bytes=0, warn_free_bytes=0)
    recorder.start()
    sent = opus_packets(judge.party.audio, judge.audio, recorder.epoch)
    for s in sent:
        recorder.packet(s.packet)
    recorder.stop()
    assert recorder.state is RecorderState.FAILED and "overflow" in (recorder.failure or "")
    assert recorder.packets_received == len(sent) and recorder.packets_lost > 0
    assert recorder.packet_stats.taken + recorder.packets_lost == len(sent)  # every packet accounted for
