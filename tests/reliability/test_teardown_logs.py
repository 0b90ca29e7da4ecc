"""A normal hearing with real aiortc peers ends quietly: join, leave, end log nothing above INFO.

Browsers hang up their peer connections when a participant leaves, so the server sees connections that
aiortc has already closed (DTLS closed by the other side) while it renegotiates the others: that is the
normal end of a hearing, not an error (#18.6).
"""

from __future__ import annotations

import asyncio
import logging

import pytest
from live_media import MediaBrowser, sealed_and_verified, until
from media_harness import make_clip
from signaling_harness import Bench, types_of

pytestmark = [pytest.mark.media, pytest.mark.slow]


async def _hang_up(browser: MediaBrowser) -> None:
    """What a page does when its participant leaves: its peer connections close first."""
    for pc in (browser.publish_pc, browser.subscribe_pc):
        if pc is not None:
            await pc.close()


async def test_a_normal_teardown_logs_nothing_above_info(
    media_bench: Bench, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    bench = media_bench
    operator = await bench.operator(await bench.make_staff())
    await operator.send("open_waiting_room")
    parties = [await bench.make_party(name) for name in ("Witness", "Expert")]
    peers = [await bench.waiting_party(token) for _party_id, token in parties]
    for party_id, _token in parties:
        await operator.send("admit", party_id=party_id)
    for peer in peers:
        await peer.expect_state("in_hearing")
    courtroom = MediaBrowser(operator, make_clip(0))
    browsers = [MediaBrowser(peer, make_clip(index + 1)) for index, peer in enumerate(peers)]
    try:
        for browser in (courtroom, *browsers):
            await browser.publish()
        await operator.send("start")
        (witness_id, _), (expert_id, _) = parties
        await until(
            lambda: (
                all(courtroom.count(pid) > 10 for pid in (witness_id, expert_id))
                and browsers[0].count(expert_id) > 10
            ),
            30,
            "media everywhere",
        )
        # The expert's page hangs up; the server's side of its connections closes by itself (DTLS closed).
        await _hang_up(browsers[1])
        await asyncio.sleep(1.0)
        # Meanwhile the witness leaves: its tracks go from everyone's subscribe connection, the expert's too.
        await browsers[0].peer.send("leave")
        await _hang_up(browsers[0])
        await browsers[1].peer.send("leave")
        await asyncio.sleep(1.0)
        # The end as it usually comes: every page that is left hangs up at once.
        await asyncio.gather(*(_hang_up(b) for b in (courtroom, *browsers)))
        await operator.send("end")
        await until(lambda: any(m["type"] == "hearing_ended" for m in courtroom.messages), 10, "ended")
    finally:
        for browser in (courtroom, *browsers):
            await browser.close()
    await sealed_and_verified(bench, bench.hearing_id)
    events = types_of(await bench.events())
    assert events.count("party_left") >= 2 and events.count("hearing_ended") == 1, events
    loud = [f"{r.name} {r.levelname}: {r.getMessage()}" for r in caplog.records if r.levelno > logging.INFO]
    assert not loud, "\n".join(loud)
