"""Recording that cannot go on: a disk that fills mid-hearing, and a floor below which no hearing starts.

The full disk is real: a small tmpfs mounted over the hearing's ``tracks`` folder (needs root), filled
while the hearing is in session.
"""

from __future__ import annotations

import asyncio
import errno
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from integration_harness import Browser, Clip, LiveServer, read_segment, sealed_record, until
from recording_media import close_colour, decode_audio, decode_video, dominant_frequency

from recording.segments import TRACKS_DIR

FILLER = "filler.bin"


@pytest.fixture
def tmpfs() -> Iterator[Callable[[Path, str], None]]:
    """Mounts a small tmpfs on a folder (a disk that can really fill up); unmounted afterwards."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    mounted: list[Path] = []

    def mount(path: Path, size: str) -> None:
        path.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
        mounted.append(path)

    yield mount
    for path in mounted:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(folder: Path) -> int:
    """Write until the volume is full; returns the bytes written."""
    written = 0
    with (folder / FILLER).open("wb") as f:
        chunk = b"\0" * 65536
        try:
            while True:
                written += f.write(chunk)
                f.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
    return written


async def seated(server: LiveServer, clips: list[Clip]) -> tuple[str, list[Browser]]:
    """A hearing with the courtroom and one admitted party, both publishing, before the start."""
    api = server.api
    hearing_id = (await api.schedule())["id"]
    party_id, token = await api.invite(hearing_id, "Aliya Witness")
    court = await api.courtroom(hearing_id)
    await court.send("open_waiting_room")
    await court.expect("state", lambda m: m["hearing"]["status"] == "open")
    party = await api.waiting_party(token, "PartyPhone/1.0 (A)")
    await court.send("admit", party_id=party_id)
    await party.expect_state("in_hearing")
    return hearing_id, [Browser(court, clips[0]), Browser(party, clips[1])]


@pytest.mark.media
@pytest.mark.slow
async def test_a_full_disk_alerts_the_operator_at_once_and_what_was_written_stays_readable(
    make_live_server: Any, clips: list[Clip], tmpfs: Callable[[Path, str], None]
) -> None:
    server: LiveServer = await make_live_server()
    api = server.api
    hearing_id, pages = await seated(server, clips)
    operator = pages[0]
    folder = server.folder((await api.record(hearing_id))["folder"])
    tracks = folder / TRACKS_DIR
    tmpfs(tracks, "8m")
    try:
        for page in pages:
            await page.publish()
        await until(
            lambda: (
                sum(p["connection"] == "connected" for p in (operator.state() or {}).get("participants", []))
                == 2
            ),
            20,
            "two media connections",
        )
        await asyncio.sleep(1.0)
        await operator.send("start")
        await operator.wait_for("state", lambda m: m["hearing"]["recording"] == "recording")
        await asyncio.sleep(1.5)

        filled = await asyncio.to_thread(fill, tracks)
        full_at = time.monotonic()
        alert = await operator.wait_for("alert", lambda m: m["code"] == "recording_failed", within=2.0)
        alerted_after = time.monotonic() - full_at
        print(f"\ndisk full ({filled >> 10} KiB filler): operator alerted after {alerted_after:.2f} s")
        assert "No space left" in alert["message"] or "ENOSPC" in alert["message"], alert
        assert not any(m["type"] == "alert" for m in pages[1].messages)  # staff only
        await operator.wait_for("state", lambda m: m["hearing"]["recording"] == "failed")
        await pages[1].wait_for("state", lambda m: m["hearing"]["recording"] == "failed")
        record = await api.record(hearing_id)
        assert record["recording"]["live"] and record["recording"]["status"] == "failed"
        assert "No space left" in record["recording"]["failure"]
        events = await api.events(hearing_id)
        failed = [e for e in events if e["event"] == "recording_failed"]
        assert len(failed) == 1 and "No space left" in failed[0]["details"]["reason"], failed

        # The hearing can be paused until it is fixed.
        mark = await operator.send("recess")
        await operator.wait_for(
            "state", lambda m: m["hearing"] == {"status": "recess", "recording": "failed"}, after=mark
        )
        assert not any(m["type"] == "error" for m in operator.messages), operator.messages

        # What was recorded before the disk filled is intact.
        before = sorted(p for p in tracks.iterdir() if p.name != FILLER)
        assert len(before) == 4, before
        own_clips = {page.participant_id: clip for page, clip in zip(pages, clips[:2], strict=True)}
        await asyncio.to_thread(check_readable, before, own_clips)

        # Space is freed; the resume records again, into new segment files.
        (tracks / FILLER).unlink()
        mark = await operator.send("resume")
        await operator.wait_for(
            "state", lambda m: m["hearing"] == {"status": "in_session", "recording": "recording"}, after=mark
        )
        await until(lambda: len(list(tracks.glob("*-002.webm"))) == 4, 5, "new segments after the fix")
        await asyncio.sleep(1.0)
        await operator.send("end")
        await pages[1].wait_for("hearing_ended")
        record = await sealed_record(api, hearing_id)
        assert record["seal"]["valid"] is True, record["seal"]
        events = [e["event"] for e in await api.events(hearing_id)]
        start = events.index("recording_failed")
        assert events[start:].count("recording_stopped") == 2  # the failed recorder's, then the last one's
    finally:
        for page in pages:
            await page.close()


def check_readable(paths: list[Path], clips: dict[str, Clip]) -> None:
    for path in paths:
        segment = read_segment(path)
        clip = clips[segment.participant_id]
        if segment.kind == "video":
            decoded = decode_video(path)
            assert len(decoded.times) > 10, path.name
            assert all(close_colour(rgb, clip.colour) for rgb in decoded.colours), path.name
        else:
            audio = decode_audio(path)
            assert audio.duration > 0.5, path.name
            assert abs(dominant_frequency(audio.samples[:24000]) - clip.tone_hz) < 15, path.name


async def test_no_hearing_starts_below_the_disk_space_floor(make_live_server: Any) -> None:
    server: LiveServer = await make_live_server(min_free_disk_mb=1 << 40)
    api = server.api
    hearing_id = (await api.schedule())["id"]
    court = await api.courtroom(hearing_id)
    await court.send("open_waiting_room")
    await court.expect("state", lambda m: m["hearing"]["status"] == "open")
    await court.send("start")
    error = await court.expect_error("recording_unavailable")
    assert "floor" in error["message"], error
    await court.send("ping")
    await court.expect("pong")  # the connection stays, the hearing stays open
    hearing = await api.ok("GET", f"/hearings/{hearing_id}")
    assert hearing["status"] == "open"
    events = await api.events(hearing_id)
    assert "hearing_started" not in [e["event"] for e in events]
    assert events[-1]["event"] == "recording_failed" and "floor" in events[-1]["details"]["reason"]
    record = await api.record(hearing_id)
    assert record["status"] == "open" and record["recording"]["status"] == "off"
