"""A bounded load/soak run: N hearings × M participants with real aiortc peers and pre-encoded media.

Defaults (CI): 2 hearings × 3 participants (courtroom + 2 parties) for 20 s. Larger runs:
``HEARING_SOAK_HEARINGS``, ``HEARING_SOAK_PARTICIPANTS``, ``HEARING_SOAK_SECONDS``, and the memory bound
``HEARING_SOAK_RSS_MB`` (growth of this process's RSS from the first frames to the end).

Asserted: media flows all the time (no publisher's audio or video absent for 2 s at any subscriber),
nothing is logged at ERROR, every hearing is sealed and its files, log and signature verify, and afterwards
no task is left.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path

import pytest
from live_media import (
    MediaBrowser,
    hearing_folder,
    log_verifies,
    sealed_and_verified,
    until,
)
from media_harness import make_clip
from reliability_harness import env_float, env_int
from signaling_harness import Bench

pytestmark = [pytest.mark.media, pytest.mark.slow]

HEARINGS = env_int("HEARING_SOAK_HEARINGS", 2)
PARTICIPANTS = env_int("HEARING_SOAK_PARTICIPANTS", 3)
SECONDS = env_float("HEARING_SOAK_SECONDS", 20.0)
RSS_BOUND_MB = env_float("HEARING_SOAK_RSS_MB", 120.0)
MAX_GAP_S = 2.0


def rss_mb() -> float:
    """This process's resident memory (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def _hearing(bench: Bench, index: int) -> tuple[str, list[MediaBrowser], list[str]]:
    """A started hearing with a courtroom and M-1 admitted parties, all publishing."""
    hearing_id = await bench.make_hearing()
    operator = await bench.operator(await bench.make_staff(username=f"operator{index}"))
    await operator.send("open_waiting_room")
    peers, ids = (
        [operator],
        [next(m for m in operator.seen if m["type"] == "hearing")["you"]["participant_id"]],
    )
    for number in range(PARTICIPANTS - 1):
        party_id, token = await bench.make_party(f"Party {index}.{number}", hearing_id=hearing_id)
        peer = await bench.waiting_party(token)
        await operator.send("admit", party_id=party_id)
        await peer.expect_state("in_hearing")
        peers.append(peer)
        ids.append(party_id)
    browsers = [MediaBrowser(peer, make_clip(n % 5)) for n, peer in enumerate(peers)]
    for browser in browsers:
        await browser.publish()
    await operator.send("start")
    return hearing_id, browsers, ids


def _everyone_receives_everyone(browsers: list[MediaBrowser], ids: list[str], frames: int) -> bool:
    return all(
        b.count(publisher) > frames
        for b, me in zip(browsers, ids, strict=True)
        for publisher in ids
        if publisher != me
    )


async def test_hearings_under_load_stay_healthy_and_verify(media_bench: Bench) -> None:
    bench = media_bench
    errors = _Errors()
    logging.getLogger().addHandler(errors)
    baseline_tasks = {t for t in asyncio.all_tasks() if not t.done()}
    hearings: list[tuple[str, list[MediaBrowser], list[str]]] = []
    try:
        for index in range(HEARINGS):
            hearings.append(await _hearing(bench, index))
        await until(
            lambda: all(_everyone_receives_everyone(b, ids, 10) for _h, b, ids in hearings),
            30,
            "media everywhere",
        )
        rss_start, started = rss_mb(), time.monotonic()
        await asyncio.sleep(SECONDS)
        rss_growth = rss_mb() - rss_start

        video_stalls: list[str] = []
        audio_stalls: list[str] = []
        for _hearing_id, browsers, ids in hearings:
            for browser, me in zip(browsers, ids, strict=True):
                for publisher in ids:
                    if publisher == me:
                        continue
                    for kind, stalls in (("video", video_stalls), ("audio", audio_stalls)):
                        gap = browser.longest_gap(publisher, started, kind)
                        if gap >= MAX_GAP_S:
                            stalls.append(f"{me[:8]} got no {kind} from {publisher[:8]} for {gap:.1f} s")
        for _hearing_id, browsers, _ids in hearings:
            await browsers[0].peer.send("end")
            last = browsers[-1]
            await until(lambda last=last: any(m["type"] == "hearing_ended" for m in last.messages), 10, "end")  # type: ignore[misc]
    finally:
        for _hearing_id, browsers, _ids in hearings:
            for browser in browsers:
                await browser.close()
        logging.getLogger().removeHandler(errors)

    for hearing_id, _browsers, ids in hearings:
        await sealed_and_verified(bench, hearing_id)
        manifest = json.loads(((await hearing_folder(bench, hearing_id)) / "manifest.json").read_text())
        tracks = {(f.get("participant_id"), f.get("kind")) for f in manifest["files"] if f.get("codec")}
        # every participant's audio and video was recorded
        assert tracks >= {(pid, kind) for pid in ids for kind in ("audio", "video")}, tracks
        await log_verifies(bench, hearing_id)
    assert not errors.records, [f"{r.name}: {r.getMessage()}" for r in errors.records[:5]]
    assert rss_growth < RSS_BOUND_MB, f"RSS grew {rss_growth:.0f} MB in {SECONDS:.0f} s"

    deadline = time.monotonic() + 10
    while True:
        left = {t for t in asyncio.all_tasks() if not t.done()} - baseline_tasks - {asyncio.current_task()}
        if not left or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert not left, sorted(str(t.get_coro()) for t in left)[:10]
    assert not audio_stalls, audio_stalls
    # a stall is a failure: keyframe requests repeat until a keyframe arrives (docs/reliability.md)
    assert not video_stalls, video_stalls
