"""A video down track held back by congestion control: padding continues the sequence, the
resume starts on a keyframe with no gap, and NACKs of padding resend nothing."""

from __future__ import annotations

from test_packets import DELTA_START, KEY, Published, down_track

from media.rtp import parse_rtp


async def test_held_track_pads_then_resumes_on_a_keyframe_without_a_gap() -> None:
    published = Published()
    track, sent = down_track(published.stats)
    track.attach(published.track)
    track.set_ready(True)
    published.feed(10, 0, KEY, marker=True)
    published.feed(11, 3000, DELTA_START, marker=True)
    track.hold(True)
    published.feed(12, 6000, DELTA_START, marker=True)  # held back
    assert track.padding() and track.padding()
    requests = len(published.rtcp)
    track.hold(False)  # resume: a keyframe is asked for, deltas wait for it
    assert len(published.rtcp) > requests
    published.feed(13, 9000, DELTA_START, marker=True)
    published.feed(14, 12000, KEY, marker=True)
    headers = [parse_rtp(data) for data in sent]
    assert all(h is not None for h in headers)
    seqs = [h.sequence_number for h in headers]  # type: ignore[union-attr]
    assert seqs == [10, 11, 12, 13, 14], "padding and the resume continue the sequence"
    for header, data in zip(headers[2:4], sent[2:4], strict=True):
        assert header is not None and header.padding == 4 and header.payload_start == len(data) - 4
    assert sent[4].endswith(KEY)
    resent = len(sent)
    track.nack([12, 13])  # padding sequence numbers map to nothing in the cache
    assert len(sent) == resent
    track.nack([14])
    assert len(sent) == resent + 1


async def test_padding_only_while_held_and_after_something_was_sent() -> None:
    published = Published()
    track, sent = down_track(published.stats)
    track.attach(published.track)
    track.set_ready(True)
    track.hold(True)
    assert not track.padding()  # nothing sent yet: no sequence to continue
    track.hold(False)
    published.feed(10, 0, KEY, marker=True)
    assert not track.padding() and len(sent) == 1
