"""The reorder buffer: packets back in sending order, duplicates dropped, holes given up after the hold."""

from __future__ import annotations

import random

from media.contract import RtpPacket, TrackInfo
from recording.reorder import Loss, ReorderBuffer

TRACK = TrackInfo("p/video/1", "p", "video", "VP8", 90000)


def pkt(seq: int, arrival: float) -> RtpPacket:
    return RtpPacket(TRACK, seq & 0xFFFF, 0, False, seq.to_bytes(4, "big"), arrival)


def seqs(items: list[RtpPacket | Loss]) -> list[int | str]:
    return [f"loss{i.count}" if isinstance(i, Loss) else int.from_bytes(i.payload, "big") for i in items]


def started(buffer: ReorderBuffer, seq: int) -> ReorderBuffer:
    """A buffer past its first hold: ``seq`` arrived at time 0 and was released at the hold."""
    assert buffer.push(pkt(seq, 0.0)) == []  # the first packet waits for any sent before it
    assert seqs(buffer.expire(buffer.hold_s)) == [seq]
    return buffer


def test_the_first_packets_wait_for_earlier_ones_then_go_in_order() -> None:
    buffer = ReorderBuffer(hold_s=0.4)
    assert buffer.push(pkt(12, 0.0)) == []
    assert buffer.push(pkt(10, 0.05)) == []  # sent first, overtaken
    assert buffer.push(pkt(13, 0.1)) == []
    assert seqs(buffer.push(pkt(14, 0.41))) == [10, "loss1", 12, 13, 14]
    assert buffer.stats.duplicates == 0 and buffer.stats.lost == 1


def test_in_order_packets_pass_at_once_across_the_wrap() -> None:
    buffer = started(ReorderBuffer(), 65529)
    for n, seq in enumerate(range(65530, 65540)):
        assert seqs(buffer.push(pkt(seq, 1 + n * 0.01))) == [seq]
    assert buffer.waiting == 0 and buffer.stats.received == 11


def test_shuffled_within_the_hold_comes_out_in_order_without_loss() -> None:
    rng = random.Random(7)
    buffer = ReorderBuffer(hold_s=0.3)
    sent = list(range(65000, 65000 + 2000))  # wraps at 65536
    arrivals = sorted(((s - 65000) * 0.005 + rng.uniform(0, 0.2), s) for s in sent)
    out: list[RtpPacket | Loss] = []
    for arrival, seq in arrivals:
        out += buffer.push(pkt(seq, arrival))
    out += buffer.drain()
    assert seqs(out) == list(range(65000, 67000))
    assert buffer.stats.lost == 0 and buffer.stats.duplicates == 0


def test_duplicates_are_dropped_whether_released_or_waiting() -> None:
    buffer = started(ReorderBuffer(), 10)
    assert buffer.push(pkt(10, 0.01)) == []  # already released
    assert buffer.push(pkt(12, 0.02)) == []  # waits for 11
    assert buffer.push(pkt(12, 0.03)) == []  # already waiting
    assert seqs(buffer.push(pkt(11, 0.04))) == [11, 12]
    assert buffer.stats.duplicates == 2 and buffer.stats.lost == 0


def test_a_hole_is_given_up_once_a_later_packet_has_waited_the_hold() -> None:
    buffer = started(ReorderBuffer(hold_s=0.4), 1)
    assert buffer.push(pkt(3, 1.1)) == []
    assert buffer.push(pkt(4, 1.3)) == []
    assert seqs(buffer.push(pkt(5, 1.51))) == ["loss1", 3, 4, 5]  # 3 waited the hold
    assert buffer.push(pkt(2, 1.6)) == []  # the retransmission came too late
    assert buffer.stats.lost == 1 and buffer.stats.duplicates == 1


def test_a_late_retransmission_within_the_hold_fills_the_hole() -> None:
    buffer = started(ReorderBuffer(hold_s=0.4), 1)
    for n, seq in enumerate(range(3, 10)):
        assert buffer.push(pkt(seq, 1.1 + n * 0.03)) == []
    assert seqs(buffer.push(pkt(2, 1.45))) == list(range(2, 10))
    assert buffer.stats.lost == 0


def test_the_next_hole_waits_from_its_own_first_packet() -> None:
    buffer = started(ReorderBuffer(hold_s=0.4), 1)
    buffer.push(pkt(3, 1.1))
    buffer.push(pkt(5, 1.35))
    assert seqs(buffer.push(pkt(2, 1.4))) == [2, 3]  # 4 is still missing; 5 has waited 0.05 s
    assert buffer.push(pkt(6, 1.7)) == []
    assert seqs(buffer.push(pkt(7, 1.76))) == ["loss1", 5, 6, 7]


def test_an_idle_track_gives_up_its_holes_on_expiry_and_drain() -> None:
    buffer = started(ReorderBuffer(hold_s=0.4), 1)
    buffer.push(pkt(4, 1.1))
    assert buffer.expire(1.3) == []
    assert seqs(buffer.expire(1.51)) == ["loss2", 4]
    buffer.push(pkt(6, 1.6))
    assert seqs(buffer.drain()) == ["loss1", 6]


def test_a_restarted_sequence_is_followed_after_a_few_packets() -> None:
    buffer = started(ReorderBuffer(), 29999)
    for seq in range(30000, 30010):
        buffer.push(pkt(seq, 1.0))
    out: list[RtpPacket | Loss] = []
    for seq in range(100, 120):
        out += buffer.push(pkt(seq, 1.1))
    out += buffer.drain()
    assert buffer.stats.resets == 1
    assert seqs(out) == ["loss0", *range(107, 120)]  # the strays before the reset are dropped
