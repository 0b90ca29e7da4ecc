"""RTP times land on the server's clock through sender reports, and never go backwards."""

from __future__ import annotations

import pytest

from media.contract import SenderReport
from media.wallclock import ParticipantClock, TrackClock


def report(ntp_time: float, rtp: int) -> SenderReport:
    return SenderReport(ntp_time=ntp_time, rtp_timestamp=rtp & 0xFFFFFFFF, received_at=0.0)


def test_arrival_time_until_a_sender_report_then_report_time_with_one_offset_per_participant() -> None:
    participant = ParticipantClock()
    video = TrackClock(participant, 90000)
    audio = TrackClock(participant, 48000)
    assert video.wallclock(1000, arrival=500.0, report=None) == 500.0
    # the publisher's clock is 100 s behind ours; the first mapped frame fixes the offset
    first = video.wallclock(1000 + 9000, arrival=500.2, report=report(400.0, 1000))
    assert first == pytest.approx(500.2)
    assert video.wallclock(1000 + 18000, arrival=500.9, report=report(400.0, 1000)) == pytest.approx(500.3)
    # audio of the same participant shares the offset: captured at sender time 400.1 → 500.2
    assert audio.wallclock(7000 + 4800, arrival=500.5, report=report(400.0, 7000)) == pytest.approx(500.2)


def test_report_rtp_time_is_matched_across_a_32_bit_wrap() -> None:
    clock = TrackClock(ParticipantClock(), 90000)
    unwrapped = (1 << 32) + 900  # the frame is past the wrap, the report just before it
    value = clock.wallclock(unwrapped, arrival=10.0, report=report(5.0, (1 << 32) - 8100))
    assert value == pytest.approx(10.0)
    assert clock.wallclock(
        unwrapped + 90000, arrival=99.0, report=report(5.0, (1 << 32) - 8100)
    ) == pytest.approx(11.0)


def test_wallclock_never_goes_backwards() -> None:
    clock = TrackClock(ParticipantClock(), 90000)
    a = clock.wallclock(0, arrival=10.0, report=None)
    b = clock.wallclock(3000, arrival=9.5, report=None)
    assert b > a
