"""A subscriber's egress under congestion, fed crafted receiver reports: the others' video is held back
before the courtroom's, audio never, and the room hears of each change."""

from __future__ import annotations

import asyncio

from test_packets import KEY, Captured, Published, down_track

from media.contract import LinkQuality, TrackInfo
from media.downtrack import DownTrack, LegParameters
from media.egress import Egress
from media.rtcp import RtcpReceiverInfo, build_rr
from media.stats import MediaStats


class _Events:
    def on(self, event: str, handler: object) -> None:
        pass


def report(ssrcs: list[int], highest: int, lost: int) -> bytes:
    blocks = [
        RtcpReceiverInfo(
            ssrc=ssrc, fraction_lost=0, packets_lost=lost, highest_sequence=highest, jitter=0, lsr=0, dlsr=0
        )
        for ssrc in ssrcs
    ]
    return build_rr(4242, blocks)


async def test_others_video_is_held_first_then_the_courtrooms() -> None:
    stats = MediaStats()
    changes: list[LinkQuality] = []
    egress = Egress(_Events(), stats, changes.append)  # type: ignore[arg-type]
    egress.priority_participant = "court"
    court = Published(TrackInfo("court/video/1", "court", "video", "VP8", 90000))
    other = Published(TrackInfo("other/video/1", "other", "video", "VP8", 90000))
    tracks = []
    for published, ssrc in ((court, 5555), (other, 7777)):
        track, _ = down_track(stats)
        track.leg.ssrc = ssrc
        track.attach(published.track)
        track.set_ready(True)
        published.feed(1, 0, KEY, marker=True)
        egress.down_tracks.append(track)
        tracks.append(track)
    court_track, other_track = tracks
    audio = DownTrack("audio", LegParameters(ssrc=3333, rtx_ssrc=0, payload_type=111), Captured([]), stats)
    audio.attach(Published(TrackInfo("court/audio/1", "court", "audio", "opus", 48000)).track)
    egress.down_tracks.append(audio)
    ssrcs = [5555, 7777, 3333]

    highest, lost = 1000, 0
    egress._on_rtcp(report(ssrcs, highest, lost))
    for _ in range(3):  # 0.3 s of reports with 40 % lost
        await asyncio.sleep(0.1)
        highest, lost = highest + 50, lost + 20
        egress._on_rtcp(report(ssrcs, highest, lost))
    assert other_track.held and not court_track.held
    assert changes and changes[-1].video_paused and not changes[-1].all_video_paused
    await asyncio.sleep(1.0)  # still congested a second later: the courtroom's video too
    highest, lost = highest + 50, lost + 20
    egress._on_rtcp(report(ssrcs, highest, lost))
    await asyncio.sleep(0.3)
    highest, lost = highest + 50, lost + 20
    egress._on_rtcp(report(ssrcs, highest, lost))
    assert other_track.held and court_track.held and not audio.held
    assert changes[-1].all_video_paused and changes[-1].loss_pct is not None and changes[-1].loss_pct > 10
    assert stats.video_pauses == 2 and stats.video_resumes == 0
    egress.close()
