"""The C fan-out (``fan_out`` in media/_sender.c) against ``DownTrack.forward``: same datagrams, same state.

Two down tracks of one published track, identical legs, on twin SRTP sessions: one sends through
the C sender, so the fan-out forwards its steady-state packets in C; the other through the
Python sender, so every packet goes through ``DownTrack.forward``.  SRTP with the same keys is
deterministic, so every datagram must be byte-identical, and so must the rewrite state NACKs and
sender reports read (last sequence number, epoch, counters).  Real UDP sockets on 127.0.0.1.
"""

from __future__ import annotations

import random
import struct
from collections.abc import AsyncIterator

import pytest
from pylibsrtp import Policy
from test_packets import DELTA_START, KEY, MIDDLE, Published
from test_sender import Wire, _session

import media._sender as native
from media.downtrack import EPOCH_SETTLED, DownTrack, LegParameters
from media.fanout import PythonRoute, python_fan_out
from media.published_track import FLAG_MARKER, FLAG_PADDING
from media.rtcp import parse_rtcp
from media.stats import MediaStats


class Out:
    """A subscribe connection: its current sender."""

    def __init__(self, sender: object) -> None:
        self.sender = sender


class Pair:
    """The same leg twice: ``c`` forwarded by the C fan-out, ``python`` by ``DownTrack.forward``."""

    def __init__(self, published: Published, rtx: bool = True) -> None:
        self.wires = Wire(), Wire()
        self.c = self._track(published.stats, self.wires[0].native(_session(Policy.SSRC_ANY_OUTBOUND)), rtx)
        python_sender = self.wires[1].python(_session(Policy.SSRC_ANY_OUTBOUND))
        self.python = self._track(published.stats, python_sender, rtx)
        self.c_forward_calls = 0
        forward = self.c.forward

        def counted(*args: object) -> None:
            self.c_forward_calls += 1
            forward(*args)  # type: ignore[arg-type]

        self.c.forward = counted  # type: ignore[method-assign]
        for track in (self.c, self.python):
            track.attach(published.track)
            track.set_ready(True)

    @staticmethod
    def _track(stats: MediaStats, sender: object, rtx: bool) -> DownTrack:
        # no abs-send-time: it is the sending time, which differs between any two sends
        leg = LegParameters(5555, 6666, 97, 98 if rtx else None, "1", mid_id=4)
        return DownTrack("video", leg, Out(sender), stats)

    def same_state(self) -> None:
        c, python = self.c.route, self.python.route
        for field in (
            "steady",
            "seq_offset",
            "ts_offset",
            "epoch_start",
            "epoch_out_start",
            "last_out_seq",
            "last_out_ts",
            "packets_sent",
            "octets_sent",
        ):
            assert getattr(c, field) == getattr(python, field), field

    def close(self) -> None:
        for wire in self.wires:
            wire.close()


@pytest.fixture
async def published() -> Published:
    return Published()


@pytest.fixture
async def pair(published: Published) -> AsyncIterator[Pair]:
    pair = Pair(published)
    yield pair
    pair.close()


def drain(pair: Pair) -> list[bytes]:
    """The datagrams on the C track's wire after asserting the Python track's are the same."""
    sent: list[list[bytes]] = [[], []]
    for wire, into in zip(pair.wires, sent, strict=True):
        wire.receiver.setblocking(False)
        try:
            while True:
                into.append(wire.receiver.recv(4096))
        except BlockingIOError:
            pass
        wire.receiver.settimeout(1.0)
    assert sent[0] == sent[1], "the C fan-out and DownTrack.forward sent different datagrams"
    return sent[0]


def test_the_constants_are_the_pythons() -> None:
    assert (native.FLAG_MARKER, native.FLAG_PADDING, native.EPOCH_SETTLED) == (
        FLAG_MARKER,
        FLAG_PADDING,
        EPOCH_SETTLED,
    )


async def test_a_stream_with_loss_reordering_padding_and_wraps_goes_out_the_same(
    published: Published, pair: Pair
) -> None:
    rng = random.Random(7)
    published.feed(65000, 0, DELTA_START)  # no keyframe yet: left out (both ask for one)
    assert drain(pair) == []
    published.feed(65001, 3000, KEY)
    seq, frames = 65001, 0
    late: list[tuple[int, int]] = []
    for step in range(1, 6000):  # across two 16-bit wraps of the sequence number and past EPOCH_SETTLED
        seq = (seq + 1) & 0xFFFF
        frames += step % 4 == 0
        timestamp = (3000 * frames + 0xFFFF_0000) & 0xFFFFFFFF  # the timestamp wraps too
        roll = rng.random()
        if roll < 0.02:
            late.append((seq, timestamp))  # lost for now, comes late below
            continue
        if roll < 0.03:
            data = published.track  # a padding-only packet: the flag rides along
            data.receive(
                struct.pack("!BBHII", 0xA0, 96, seq, timestamp, 1234) + b"\x00\x00\x02",
                12,
                15,
                seq,
                timestamp,
                False,
                False,
                0,
            )
        else:
            published.feed(seq, timestamp, MIDDLE, marker=step % 4 == 3)
        if late and rng.random() < 0.3:
            published.feed(*late.pop(0), MIDDLE)  # reordered: an older sequence number after newer ones
        if step % 100 == 0:  # drained before a socket buffer (~250 small datagrams) fills
            sent = drain(pair)
            assert sent, "packets went out"
            pair.same_state()
    published.feed((65001 - 5) & 0xFFFF, 0, MIDDLE)  # from before the epoch: left out by both
    drain(pair)
    pair.same_state()
    assert pair.c.route.packets_sent > 5500 and pair.c.route.epoch_start == -1  # settled
    # after the keyframe, nothing went through the C track's Python forward
    assert pair.c_forward_calls == 2


async def test_the_first_packets_of_an_epoch_before_it_settles_are_left_out_the_same(
    published: Published, pair: Pair
) -> None:
    published.feed(100, 0, KEY)
    for seq in range(101, 120):
        published.feed(seq, 3000, MIDDLE)
    published.feed(95, 0, MIDDLE)  # older than the epoch's first packet: the subscriber never had it
    published.feed(99, 0, MIDDLE)
    sent = drain(pair)
    assert len(sent) == 20
    pair.same_state()
    assert pair.c.route.epoch_start == 100 and pair.c_forward_calls == 1
    for seq in range(120, 100 + EPOCH_SETTLED + 1):
        published.feed(seq, 3000 + seq // 4 * 3000, MIDDLE)
    drain(pair)
    pair.same_state()
    assert pair.c.route.epoch_start == 100  # EPOCH_SETTLED packets in: not yet settled
    published.feed(100 + EPOCH_SETTLED + 1, 3000 + (100 + EPOCH_SETTLED + 1) // 4 * 3000, MIDDLE)
    assert pair.c.route.epoch_start == pair.python.route.epoch_start == -1  # settled by the very same packet
    assert len(drain(pair)) == 1


async def test_hold_resume_and_mute_switch_both_paths_alike(published: Published, pair: Pair) -> None:
    published.feed(1, 0, KEY)
    for seq in range(2, 50):
        published.feed(seq, seq // 4 * 3000, MIDDLE)
    for track in (pair.c, pair.python):
        track.hold(True)
    assert not pair.c.route.steady
    for seq in range(50, 60):
        published.feed(seq, seq // 4 * 3000, MIDDLE)  # held: left out
    for track in (pair.c, pair.python):
        assert track.padding()
    for track in (pair.c, pair.python):
        track.hold(False)
    published.feed(60, 45000, MIDDLE)  # resumed, but only from a keyframe
    published.feed(61, 48000, KEY)
    for seq in range(62, 80):
        published.feed(seq, 48000 + seq * 3000, MIDDLE)
    published.track.set_forwarding(False)  # mute
    published.feed(80, 300000, MIDDLE)
    published.track.set_forwarding(True)
    published.feed(81, 303000, KEY)
    published.feed(82, 306000, MIDDLE)
    sent = drain(pair)
    assert len(sent) == 49 + 1 + 19 + 2  # 1–49, one padding packet, 61–79, 81–82
    pair.same_state()
    # and NACKs map back through the same offsets: the same retransmissions
    last = pair.c.route.last_out_seq
    for track in (pair.c, pair.python):
        track.nack([last, (last - 1) & 0xFFFF, (last - 30) & 0xFFFF])
    assert len(drain(pair)) == 2  # the last two are this epoch's; 30 back is from before the mute
    sr = pair.c.sender_report(), pair.python.sender_report()
    assert sr == (None, None)  # no sender report from the publisher yet


async def test_a_connection_sending_from_python_takes_the_python_path_for_every_packet(
    published: Published,
) -> None:
    pair = Pair(published)
    try:
        pair.c.route.out.sender = pair.python.route.out.sender  # e.g. the pair became TURN-relayed
        pair.wires = pair.wires[1], pair.wires[1]
        published.feed(1, 0, KEY)
        for seq in range(2, 20):
            published.feed(seq, 3000, MIDDLE)
        assert pair.c_forward_calls == 19
        assert pair.c.route.packets_sent == pair.python.route.packets_sent == 19
    finally:
        pair.close()


async def test_packets_out_are_counted_once(published: Published, pair: Pair) -> None:
    published.feed(1, 0, KEY)
    for seq in range(2, 101):
        published.feed(seq, 3000, MIDDLE)
    drain(pair)
    assert published.stats.packets_out == 200


def test_the_python_fan_out_calls_every_down_track() -> None:
    calls: list[tuple[object, ...]] = []

    class Track:
        def forward(self, *args: object) -> None:
            calls.append(args)

    routes = PythonRoute(None), PythonRoute(None)
    assert python_fan_out(routes, (Track(), Track()), 5, 6, FLAG_MARKER, b"x", True) == 0
    assert calls == [(5, 6, FLAG_MARKER, b"x", True)] * 2


def test_bad_arguments_are_refused() -> None:
    route = native.Route(Out(None))

    class Track:
        def forward(self, *args: object) -> None:
            raise AssertionError("not called")

    with pytest.raises(TypeError):
        native.fan_out((route,), (), 1, 2, 0, b"", False)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        native.fan_out([route], [Track()], 1, 2, 0, b"", False)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        native.fan_out((object(),), (Track(),), 1, 2, 0, b"", False)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        native.fan_out((route,), (Track(),), 1, 2, 0, "text", False)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        native.fan_out((route,), (Track(),), 1)  # type: ignore[call-arg]
    route.steady = True  # steady, but its connection has no C sender: the track's forward, which raises
    with pytest.raises(AssertionError):
        native.fan_out((route,), (Track(),), 1, 2, 0, b"", False)


async def test_sender_reports_count_what_the_c_path_sent(published: Published, pair: Pair) -> None:
    published.track.on_sender_report(0x1234_5678_0000_0000, 1000)
    published.feed(1, 0, KEY)
    for seq in range(2, 11):
        published.feed(seq, 3000, MIDDLE)
    drain(pair)
    reports = [parse_rtcp(track.sender_report() or b"") for track in (pair.c, pair.python)]
    counts = [(r[0].sender_info.packet_count, r[0].sender_info.octet_count) for r in reports]  # type: ignore[index,union-attr]
    assert counts[0] == counts[1] == (10, 20)


async def test_without_the_extension_python_routes_forward_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    """An install without a compiler: Python routes and fan-out, the same datagrams as the C path."""

    def run(published: Published, pair: Pair) -> list[bytes]:
        sent: list[bytes] = []
        for start in range(1, 300, 100):  # drained every 100 packets: a socket buffer holds ~250 small ones
            for seq in range(start, start + 100):
                published.feed(seq, seq // 4 * 3000, KEY if seq == 1 else MIDDLE, marker=seq % 4 == 3)
            sent.extend(drain(pair))
        return sent

    with_c = Published()
    c_pair = Pair(with_c)
    try:
        sent_with_c = run(with_c, c_pair)
    finally:
        c_pair.close()
    assert c_pair.c_forward_calls == 1  # the keyframe; the rest forwarded in C

    monkeypatch.setattr("media.downtrack.Route", PythonRoute)
    monkeypatch.setattr("media.published_track.fan_out", python_fan_out)
    without_c = Published()
    python_pair = Pair(without_c)
    try:
        assert isinstance(python_pair.c.route, PythonRoute)
        sent_without_c = run(without_c, python_pair)
    finally:
        python_pair.close()
    assert python_pair.c_forward_calls == 300
    assert len(sent_with_c) == 300 and sent_with_c == sent_without_c
    assert without_c.stats.packets_out == with_c.stats.packets_out == 2 * 300


async def test_a_route_without_an_extension_block_is_refused(published: Published, pair: Pair) -> None:
    published.feed(1, 0, KEY)
    drain(pair)
    del pair.c.route.extension  # type: ignore[attr-defined]
    with pytest.raises(TypeError, match="extension"):
        published.feed(2, 0, MIDDLE)
    pair.c.route.extension = "not bytes"  # type: ignore[assignment]
    with pytest.raises(TypeError, match="extension"):
        published.feed(3, 0, MIDDLE)
