"""Issue #16, test 3: the phone's link shaped to 300 kbit/s, 5 % loss and 150 ms round trip. Audio at
the phone has no gap longer than 0.5 s over 30 s (getStats concealment); the server's per-subscriber
congestion control pauses the courtroom's video to the phone (the page shows the weak-connection banner,
the operator gets the warning) and resumes it once the shaping is lifted.

The shaping is the lab's user-space cable (:mod:`wire`; this kernel has no netem). Without congestion
control the courtroom's ~1 Mbit/s video fills the 300 kbit/s link, whose queue then delays and drops the
audio too.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from lab_hearing import LabHearing, busy_clip
from netlab import Netlab, phone_network
from playwright.async_api import Playwright

from media_harness import FPS  # isort: skip (on sys.path through lab_hearing)

pytestmark = [pytest.mark.network, pytest.mark.slow, pytest.mark.browser, pytest.mark.media]

MEASURE_S = 30.0
GAP_LIMIT_S = 0.5
CONCEALED_LIMIT = 0.10
PAUSE_WITHIN_S = 6.0  # from the shaping to the banner on the phone
RESUME_WITHIN_S = 8.0  # from lifting it to video decoded again
WEAK = {"delay_ms": 75, "loss_pct": 5, "rate_kbit": 300, "queue_ms": 500}

AUDIO_JS = """
async () => {
  const pc = window.hearingClient.call._subscribe.pc;
  const publish = window.hearingClient.call._publish;
  const out = {audio: null, video: null, sent: 0};
  if (publish && publish.pc) (await publish.pc.getStats()).forEach((s) => {
    if (s.type === 'outbound-rtp' && s.kind === 'video') out.sent += s.bytesSent || 0;
  });
  if (!pc) return out;
  (await pc.getStats()).forEach((s) => {
    if (s.type !== 'inbound-rtp') return;
    if (s.kind === 'audio') out.audio = {total: s.totalSamplesReceived || 0,
                                         concealed: s.concealedSamples || 0, lost: s.packetsLost || 0};
    if (s.kind === 'video') out.video = {frames: s.framesDecoded || 0, freezes: s.freezeCount || 0,
                                         frozen_s: s.totalFreezesDuration || 0};
  });
  return out;
}
"""


async def media_counters(hearing: LabHearing) -> dict[str, float]:
    """The server's congestion-control counters from /metrics."""
    assert hearing.api is not None and hearing.server is not None
    async with hearing.api.http.get(f"{hearing.server.base_url}/metrics") as response:
        text = await response.text()
    counters = {}
    for line in text.splitlines():
        for name in ("video_pauses", "video_resumes"):
            if line.startswith(f"hearing_media_{name}_total "):
                counters[name] = float(line.split()[-1])
    return counters


def longest_audio_gap(samples: list[tuple[float, dict[str, Any]]]) -> tuple[float, float]:
    """(longest run of time in which at least 90 % of the played samples were concealed, the concealed
    share over the whole measurement); counters that start over (a new connection) are skipped."""
    longest = run = 0.0
    played = hidden = 0
    for (t0, a), (t1, b) in zip(samples[:-1], samples[1:], strict=True):
        total = b["total"] - a["total"]
        concealed = b["concealed"] - a["concealed"]
        if total < 0 or concealed < 0:
            continue  # a new subscribe connection
        played += total
        hidden += concealed
        if total == 0 or concealed >= 0.9 * total:
            run += t1 - t0
            longest = max(longest, run)
        else:
            run = 0.0
    return longest, hidden / max(1, played)


async def test_audio_keeps_going_on_a_weak_link(lab: Netlab, playwright: Playwright, tmp_path: Path) -> None:
    net = phone_network(lab, shaped=True)
    assert net.link is not None
    court_clip = await asyncio.to_thread(busy_clip)
    kbit = sum(len(p) for p in court_clip.video) * 8 / (len(court_clip.video) / FPS) / 1000
    hearing = LabHearing(net, tmp_path, playwright, court_clip)
    try:
        await hearing.start(relay=False)
        await hearing.party_waits()
        await hearing.admit_and_start()
        page = hearing.page
        assert page is not None

        banner = page.locator("#banner-weak-link")
        moments: dict[str, float] = {}  # first time each thing was seen, since the shaping began

        def note(what: str, since: float) -> None:
            moments.setdefault(what, time.monotonic() - since)

        async def measure(
            seconds: float, since: float = 0.0
        ) -> tuple[list[tuple[float, dict[str, Any]]], dict[str, Any]]:
            audio: list[tuple[float, dict[str, Any]]] = []
            first = None
            last: dict[str, Any] = {}
            sent: list[tuple[float, int]] = []  # the phone's own video bytes sent (its uplink)
            last_frame_s = None  # when a frame was last decoded, since ``since``
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                stats = await page.evaluate(AUDIO_JS)
                sent.append((time.monotonic(), stats["sent"]))
                if stats["audio"] is not None:
                    audio.append((time.monotonic(), stats["audio"]))
                if stats["video"] is not None:
                    if first is not None and stats["video"]["frames"] > last["frames"]:
                        last_frame_s = time.monotonic() - since
                        if since and "lifted" in moments:
                            note("frames_again", since)
                    first = first or stats["video"]
                    last = stats["video"]
                if since:
                    visible = await banner.is_visible()
                    paused = [m["video_paused"] for m in warnings()]
                    for index, flag in enumerate(paused):
                        note(f"warning {index} paused={flag}", since)  # first seen, since shaping or lifting
                    if "lifted" not in moments:
                        if visible:
                            note("banner", since)
                        if any(paused):
                            note("operator_warned", since)
                    else:
                        if not visible:
                            note("banner_gone", since)
                        if paused and not paused[-1]:
                            note("operator_cleared", since)
                await asyncio.sleep(0.1)
            frames = last.get("frames", 0) - (first or {}).get("frames", 0)
            tail = [(t, b) for t, b in sent if t >= sent[-1][0] - 5]  # the last 5 s
            uplink = (tail[-1][1] - tail[0][1]) * 8 / 1000 / max(1e-3, tail[-1][0] - tail[0][0])
            return audio, {"fps": frames / seconds, "last_frame_s": last_frame_s, "uplink_kbps": int(uplink)}

        def warnings() -> list[dict[str, Any]]:
            court = hearing.court
            assert court is not None
            return [
                m
                for m in list(court.messages)
                if m["type"] == "link_quality" and m["participant_id"] == hearing.party_id
            ]

        clear_audio, clear_video = await measure(5.0)
        assert not await banner.is_visible()
        shaped_at = time.monotonic()
        net.link.shape(a_to_b=WEAK, b_to_a=WEAK)
        weak_audio, weak_video = await measure(MEASURE_S, shaped_at)
        net.link.unshape()
        lifted_at = time.monotonic()
        moments["lifted"] = 0.0
        after_audio, after_video = await measure(RESUME_WITHIN_S, lifted_at)
        _, back_video = await measure(3.0)  # once back, the video plays at its rate again
        restarts = await page.evaluate("() => window.hearingClient.call.restarts")
        counters = await hearing.on_court(media_counters(hearing))
        court = hearing.court
        assert court is not None
        console = [
            q
            for m in list(court.messages)
            if m["type"] == "quality"
            for q in m["participants"]
            if q["participant_id"] == hearing.party_id
        ]

        clear_gap, clear_share = longest_audio_gap(clear_audio)
        weak_gap, weak_share = longest_audio_gap(weak_audio)
        after_gap, after_share = longest_audio_gap(after_audio)
        print(
            f"\ncourtroom video {kbit:.0f} kbit/s; weak link {WEAK}: "
            f"audio longest gap {weak_gap:.2f} s, concealed {100 * weak_share:.1f} %, "
            f"courtroom video {weak_video['fps']:.1f} fps; before: gap {clear_gap:.2f} s, "
            f"{100 * clear_share:.1f} %, {clear_video['fps']:.1f} fps; after lifting: gap {after_gap:.2f} s, "
            f"{100 * after_share:.1f} %, {after_video['fps']:.1f} fps, then {back_video['fps']:.1f} fps; "
            f"client media restarts {restarts}"
        )
        seen = {what: round(at, 2) for what, at in moments.items()}
        print(f"seconds after shaping / lifting: {seen}; last frame when weak: {weak_video['last_frame_s']}")
        uplink = [video["uplink_kbps"] for video in (clear_video, weak_video, after_video)]
        print(f"phone's video uplink (kbit/s, last 5 s of clear / weak / after): {uplink}")
        figures = [(m["video_paused"], m["loss_pct"], m["rtt_ms"]) for m in warnings()]
        print(f"warnings (paused, loss %, RTT ms): {figures}; /metrics {counters}")
        assert moments.get("banner", 99) <= PAUSE_WITHIN_S, "the phone must show that its video is paused"
        assert moments.get("operator_warned", 99) <= PAUSE_WITHIN_S, "the operator must be warned"
        assert any(q.get("video_paused") and q.get("downlink_loss_pct") is not None for q in console)
        assert weak_video["fps"] < 2, "the courtroom's video to the phone must pause on the weak link"
        assert moments.get("frames_again", 99) <= RESUME_WITHIN_S, "video must resume"
        assert moments.get("banner_gone", 99) <= RESUME_WITHIN_S and "operator_cleared" in moments
        assert back_video["fps"] > 0.7 * clear_video["fps"], "video plays at its rate again"
        assert [m["video_paused"] for m in warnings()] == [True, False], "one pause, one resume: no flapping"
        assert counters["video_pauses"] >= 1 and counters["video_resumes"] >= 1, counters
        assert weak_gap <= GAP_LIMIT_S, f"audio gap {weak_gap:.2f} s on the weak link"
        # and the audio is mostly real: concealment not much above the link's own loss
        assert weak_share <= CONCEALED_LIMIT, f"{100 * weak_share:.1f} % of the audio concealed"
    finally:
        await hearing.close()
