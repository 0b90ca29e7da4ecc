"""A whole hearing through the real server: recorded, logged, sealed, verifiable without our code, rendered.

The courtroom and two parties join through ``/ws`` with real aiortc peers publishing pre-encoded media
(a colour and a tone each); the hearing runs, goes into recess, resumes and ends; then the hearing
folder is checked with av, the hash chain, ``hearing-server archive verify`` and ``openssl cms``.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from integration_harness import (
    Browser,
    Clip,
    LiveServer,
    Segment,
    median,
    read_segment,
    sealed_record,
    served_offsets,
    thread_cpu_seconds,
    until,
)
from recording_media import close_colour, decode_audio, decode_video, dominant_frequency, pixel_rgb

from recording.composite import OUTPUT_NAME, playback_dir
from recording.confirmation_log import LOG_FILE_NAME
from recording.hashchain import verify_chain
from recording.seal import MANIFEST_NAME, SIGNATURE_NAME
from recording.verify import ProblemKind, verify_hearing

pytestmark = [pytest.mark.media, pytest.mark.slow]

FIRST_SITTING_S, RECESS_S, SECOND_SITTING_S = 3.0, 1.0, 2.0
REQUIRED_ORDER = [
    "party_invited",
    "link_opened",
    "notice_shown",
    "notice_confirmed",
    "party_admitted",
    "party_joined",
    "recording_started",
    "recess_called",
    "recording_stopped",
    "hearing_ended",
    "hearing_sealed",
]
# Entries caused by a person's request carry the address and browser of that request.
FROM_A_PERSON = {
    "party_invited",
    "link_opened",
    "notice_shown",
    "notice_confirmed",
    "party_admitted",
    "party_joined",
    "recess_called",
    "hearing_resumed",
    "hearing_started",
    "hearing_ended",
}


def openssl_verify(folder: Path, ca: Path) -> subprocess.CompletedProcess[str]:
    """The check anyone can run without our code (the invocation documented in recording/seal.py)."""
    return subprocess.run(
        ["openssl", "cms", "-verify", "-binary", "-content", str(folder / MANIFEST_NAME),
         "-in", str(folder / SIGNATURE_NAME), "-inform", "DER", "-CAfile", str(ca), "-purpose", "any",
         "-out", "/dev/null"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip


def archive_verify(folder: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """``hearing-server archive verify FOLDER`` as an archivist would run it."""
    script = Path(sys.executable).with_name("hearing-server")
    return subprocess.run(
        [str(script), "archive", "verify", str(folder), *extra], capture_output=True, text=True, timeout=60
    )


def is_subsequence(wanted: list[str], events: list[str]) -> bool:
    remaining = iter(events)
    return all(any(e == w for e in remaining) for w in wanted)


def recorder_thread(hearing_id: str) -> threading.Thread:
    return next(t for t in threading.enumerate() if t.name == f"recorder-{hearing_id}")


def log_time(entries: list[dict[str, Any]], event: str, nth: int = 0) -> float:
    found = [e for e in entries if e["event"] == event][nth]
    return datetime.fromisoformat(found["time"].replace("Z", "+00:00")).timestamp()


async def run_hearing(
    server: LiveServer, clips: list[Clip]
) -> tuple[str, dict[str, Browser], dict[str, float]]:
    """Invite, admit, publish, start, recess, resume, end; returns the hearing, the pages and measures."""
    api = server.api
    hearing_id = (await api.schedule())["id"]
    a_id, a_token = await api.invite(hearing_id, "Aliya Witness")
    b_id, b_token = await api.invite(hearing_id, "Bolat Expert", role="expert")
    court = await api.courtroom(hearing_id)
    await court.send("open_waiting_room")
    await court.expect("state", lambda m: m["hearing"]["status"] == "open")
    party_a = await api.waiting_party(a_token, "PartyPhone/1.0 (A)")
    party_b = await api.waiting_party(b_token, "PartyPhone/1.0 (B)")
    for party_id, peer in ((a_id, party_a), (b_id, party_b)):
        await court.send("admit", party_id=party_id)
        await peer.expect_state("in_hearing")
    pages = [Browser(court, clips[0]), Browser(party_a, clips[1]), Browser(party_b, clips[2])]
    operator = pages[0]
    for page in pages:
        await page.publish()

    def all_connected() -> bool:
        state = operator.state()
        return state is not None and sum(p["connection"] == "connected" for p in state["participants"]) == 3

    await until(all_connected, 20, "three media connections")
    # As in a courtroom, the start comes a moment after the last party connects: by then the keyframe
    # requests of the new subscriptions are past the publishers' rate limit (keyframe_min_interval_s),
    # so the recording's own request for a first keyframe is answered at once.
    await asyncio.sleep(1.0)
    await operator.send("start")
    await operator.wait_for("state", lambda m: m["hearing"]["recording"] == "recording")
    for page in pages[1:]:  # every participant sees the recording indicator
        await page.wait_for("state", lambda m: m["hearing"]["recording"] == "recording")
    thread = recorder_thread(hearing_id)
    cpu0, wall0 = thread_cpu_seconds(thread), time.monotonic()
    await asyncio.sleep(FIRST_SITTING_S)
    mark = await operator.send("recess")
    await operator.wait_for(
        "state",
        lambda m: m["hearing"] == {"status": "recess", "recording": "paused"},
        after=mark,
    )
    await asyncio.sleep(RECESS_S)
    mark = await operator.send("resume")
    await operator.wait_for(
        "state",
        lambda m: m["hearing"] == {"status": "in_session", "recording": "recording"},
        after=mark,
    )
    await asyncio.sleep(SECOND_SITTING_S)
    cpu = thread_cpu_seconds(thread) - cpu0
    wall = time.monotonic() - wall0
    await operator.send("end")
    for page in pages[1:]:
        await page.wait_for("hearing_ended")
    await until(lambda: not thread.is_alive(), 10, "the recorder to finish")
    measures = {"recorder_cpu_s": cpu, "recorder_wall_s": wall}
    return hearing_id, {page.participant_id: page for page in pages}, measures


async def test_a_recorded_hearing_is_sealed_verified_and_rendered(
    make_live_server: Any, clips: list[Clip], tmp_path: Path
) -> None:
    server: LiveServer = await make_live_server()
    api = server.api
    hearing_id, pages, measures = await run_hearing(server, clips)
    try:
        record = await sealed_record(api, hearing_id)
        assert record["status"] == "sealed" and record["seal"]["valid"] is True, record["seal"]
        # The playback copy starts after the seal; the console follows its progress meanwhile.
        progress = asyncio.ensure_future(follow_playback(api, hearing_id))
        assert record["seal"]["signer_subject"] and "CN=" in record["seal"]["signer_subject"]
        assert record["recording"] == {**record["recording"], "live": False, "status": "off"}
        folder = server.folder(record["folder"])
        listed = {f["path"]: f["size"] for f in record["files"]}
        assert listed[LOG_FILE_NAME] == (folder / LOG_FILE_NAME).stat().st_size

        entries = [json.loads(line) for line in (folder / LOG_FILE_NAME).read_text().splitlines()]
        check_log(entries, pages, api_events=await api.events(hearing_id))
        # The checks block (decoding, hashing, subprocesses): on a thread, so that the server in this
        # process and the progress polling above carry on meanwhile.
        segments = await asyncio.to_thread(check_tracks, folder, pages, entries, clips)
        await asyncio.to_thread(check_alignment, segments, pages)
        court_pem = server.config.court_cert_path
        await asyncio.to_thread(check_seal_and_tampering, folder, court_pem, tmp_path)
        speed = check_playback_copy(await progress, folder, segments, clips, pages)
    finally:
        for page in pages.values():
            await page.close()
    tracks = len({(s.participant_id, s.kind) for s in segments})
    per_track = measures["recorder_cpu_s"] / measures["recorder_wall_s"] / tracks
    print(
        f"\nrecorder writer thread: {measures['recorder_cpu_s']:.3f} s CPU over "
        f"{measures['recorder_wall_s']:.1f} s for {tracks} tracks = {100 * per_track:.2f} % of a core "
        f"per track; composite {speed} x real time"
    )


def check_log(
    entries: list[dict[str, Any]], pages: dict[str, Browser], api_events: list[dict[str, Any]]
) -> None:
    events = [e["event"] for e in entries]
    assert is_subsequence(REQUIRED_ORDER, events), events
    for entry in entries:
        if entry["event"] in FROM_A_PERSON:
            details = entry["details"]
            assert details.get("ip") == "127.0.0.1" and details.get("user_agent"), entry
    court_id, a_id, b_id = list(pages)
    for party_id, agent in ((a_id, "PartyPhone/1.0 (A)"), (b_id, "PartyPhone/1.0 (B)")):
        own = {
            e["event"]: e for e in entries if e["party_id"] == party_id and e["actor"] == f"party:{party_id}"
        }
        assert {"link_opened", "notice_shown", "notice_confirmed", "party_joined"} <= set(own), own.keys()
        assert own["link_opened"]["details"]["user_agent"] == agent
        shown, confirmed = own["notice_shown"]["details"], own["notice_confirmed"]["details"]
        assert shown["notice_sha256"] == confirmed["notice_sha256"] and shown["language"] == "ru"
    # The database mirror the console reads holds the same chain.
    assert [(e["seq"], e["hash"]) for e in api_events] == [(e["seq"], e["hash"]) for e in entries]


def check_tracks(
    folder: Path, pages: dict[str, Browser], entries: list[dict[str, Any]], clips: list[Clip]
) -> list[Segment]:
    chain = verify_chain(folder / LOG_FILE_NAME)
    assert chain.valid and chain.entries == len(entries), chain.problem
    in_session = (log_time(entries, "recess_called") - log_time(entries, "hearing_started")) + (
        log_time(entries, "hearing_ended") - log_time(entries, "hearing_resumed")
    )
    files = sorted((folder / "tracks").iterdir())
    segments = [read_segment(path) for path in files]
    colour = {pid: clip for pid, clip in zip(pages, clips, strict=True)}
    for participant_id in pages:
        for kind in ("audio", "video"):
            own = [s for s in segments if s.participant_id == participant_id and s.kind == kind]
            # One segment before the recess and one after it, named after the participant.
            assert len(own) == 2, [s.path.name for s in own]
            assert all(s.path.name.startswith(f"{participant_id}-{kind}-") for s in own)
            total = sum(s.duration for s in own)
            assert abs(total - in_session) < 0.5, (participant_id, kind, total, in_session)
            for segment in own:
                if kind == "video":
                    decoded = decode_video(segment.path)
                    assert len(decoded.times) >= len(segment.packets) - 1 > 10
                    for rgb in decoded.colours[:: max(1, len(decoded.colours) // 5)]:
                        assert close_colour(rgb, colour[participant_id].colour), (segment.path.name, rgb)
                else:
                    audio = decode_audio(segment.path)
                    assert audio.duration > 0.5
                    tone = dominant_frequency(audio.samples[:48000])
                    assert abs(tone - colour[participant_id].tone_hz) < 15, (segment.path.name, tone)
    return segments


def check_alignment(segments: list[Segment], pages: dict[str, Browser]) -> None:
    """Every track sits on one timeline: recorded time minus sending time agrees across tracks."""
    offsets: dict[str, float] = {}
    for segment in segments:
        page = pages[segment.participant_id]
        source = page.video if segment.kind == "video" else page.audio
        assert source is not None
        matched = served_offsets(segment, source)
        assert len(matched) >= 0.9 * len(segment.packets), (segment.path.name, len(matched))
        offsets[segment.path.name.replace(segment.participant_id, segment.participant_id[:8])] = median(
            matched
        )
    spread = max(offsets.values()) - min(offsets.values())
    print(
        f"\ntimeline offsets (recorded - sent), ms: { {k: round(v * 1000, 1) for k, v in offsets.items()} }"
    )
    assert spread < 0.1, offsets
    # The shared timeline is the server's reception clock: behind the sending by network and jitter buffer.
    assert all(-0.05 < v < 0.3 for v in offsets.values()), offsets


def check_seal_and_tampering(folder: Path, court_pem: Path, tmp_path: Path) -> None:
    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    tracks = [f for f in manifest["files"] if f["path"].startswith("tracks/")]
    assert len(tracks) == 12 and all(
        f["sha256"] and f["size"] and f["codec"] in ("vp8", "opus") for f in tracks
    )
    assert all(f["duration_s"] > 0.5 and f["first_timestamp_s"] is not None for f in tracks)
    done = archive_verify(folder, "--trusted-cert", str(court_pem))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "RESULT: VALID" in done.stdout
    assert openssl_verify(folder, court_pem).returncode == 0

    copy = tmp_path / "tampered"
    shutil.copytree(folder, copy, ignore=shutil.ignore_patterns("playback"))
    track = copy / tracks[0]["path"]
    data = bytearray(track.read_bytes())
    data[len(data) // 2] ^= 0x01
    track.write_bytes(bytes(data))
    report = verify_hearing(copy, court_pem)
    assert [(p.kind, p.path) for p in report.problems] == [(ProblemKind.FILE_HASH_CHANGED, tracks[0]["path"])]

    lines = (copy / LOG_FILE_NAME).read_text().splitlines(keepends=True)
    line_no = next(i for i, line in enumerate(lines, 1) if '"link_opened"' in line)
    lines[line_no - 1] = lines[line_no - 1].replace("PartyPhone/1.0 (A)", "PartyPhone/1.0 (Z)")
    (copy / LOG_FILE_NAME).write_text("".join(lines))
    report = verify_hearing(copy, court_pem)
    found = {(p.kind, p.path, p.line) for p in report.problems}
    assert (ProblemKind.LOG_BROKEN, LOG_FILE_NAME, line_no) in found, report.problems
    assert (ProblemKind.FILE_HASH_CHANGED, LOG_FILE_NAME, None) in found

    text = (copy / MANIFEST_NAME).read_text()
    (copy / MANIFEST_NAME).write_text(text.replace(tracks[0]["sha256"], "0" * 64))
    report = verify_hearing(copy, court_pem)
    kinds = {p.kind for p in report.problems}
    assert {ProblemKind.SIGNATURE_INVALID, ProblemKind.LOG_BROKEN} <= kinds and not report.valid
    refused = archive_verify(copy, "--trusted-cert", str(court_pem))
    assert refused.returncode == 1
    for named in ("signature_invalid", tracks[0]["path"], f"line {line_no}", "log_broken"):
        assert named in refused.stdout, (named, refused.stdout)
    assert openssl_verify(copy, court_pem).returncode != 0
    assert openssl_verify(folder, court_pem).returncode == 0  # the original is untouched


async def follow_playback(api: Any, hearing_id: str) -> list[dict[str, Any]]:
    """Every playback status GET …/record shows until the render is done or has failed."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        seen.append((await api.record(hearing_id))["playback"])
        if seen[-1]["state"] in ("done", "failed"):
            break
        await asyncio.sleep(0.2)
    return seen


def check_playback_copy(
    seen: list[dict[str, Any]],
    folder: Path,
    segments: list[Segment],
    clips: list[Clip],
    pages: dict[str, Browser],
) -> float:
    playback = seen[-1]
    assert playback["state"] == "done", (playback, (playback_dir(folder) / "render.log").read_text())
    states = [p["state"] for p in seen]
    assert {"queued", "rendering"} & set(states), states
    percents = [p["percent"] for p in seen if p["state"] == "rendering"]
    assert percents == sorted(percents) and playback["percent"] == 100.0
    output = folder / playback["output"]
    assert output == playback_dir(folder) / OUTPUT_NAME
    head = output.read_bytes()[:65536]
    assert 0 <= head.find(b"moov") < head.find(b"mdat"), "faststart: moov before mdat"
    span = max(s.last for s in segments) - min(s.first for s in segments)
    with av.open(str(output)) as container:
        assert [(s.type, s.codec_context.name) for s in container.streams] == [
            ("video", "h264"),
            ("audio", "aac"),
        ]
        assert container.duration is not None and abs(container.duration / 1e6 - span) < 0.5
    # 2x2 grid of 640x360 cells in order of first appearance; the fourth cell stays empty.
    t0 = min(s.first for s in segments)
    first_seen = {pid: min(s.first for s in segments if s.participant_id == pid) for pid in pages}
    order = sorted(pages, key=lambda pid: (first_seen[pid], pid))
    colour = {pid: clip.colour for pid, clip in zip(pages, clips, strict=True)}
    frame = frame_near(output, 1.5)
    centres = [(320, 180), (960, 180), (320, 540)]
    for pid, (x, y) in zip(order, centres, strict=True):
        assert close_colour(pixel_rgb(frame, x, y), colour[pid]), (pid, pixel_rgb(frame, x, y))
    assert close_colour(pixel_rgb(frame, 960, 540), (0, 0, 0), 12)
    audio = decode_audio(output)
    samples = np.asarray(audio.samples[48000 : 48000 * 3])
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    freqs = np.fft.rfftfreq(len(samples), 1 / 48000)
    floor = float(np.median(spectrum))
    for clip in clips:  # all three tones are in the mix
        peak = float(spectrum[(freqs > clip.tone_hz - 10) & (freqs < clip.tone_hz + 10)].max())
        assert peak > 100 * floor, (clip.tone_hz, peak, floor)
    assert t0 > 0
    return float(playback["speed_x"])


def frame_near(path: Path, t: float) -> av.VideoFrame:
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            if float(frame.pts * frame.time_base) >= t:
                return frame
    raise AssertionError(f"no frame at {t} s")
