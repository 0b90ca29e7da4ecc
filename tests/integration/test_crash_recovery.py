"""The server killed mid-hearing (SIGKILL): about a second lost per track, the hearing resumed and sealed.

The real server runs as a subprocess (``python -m hearing_server serve``); the courtroom and two parties
are aiortc peers in this process.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from integration_harness import (
    Browser,
    Clip,
    Segment,
    ServerApi,
    ServerProcess,
    free_port,
    process_cpu_seconds,
    read_segment,
    sealed_record,
    stop_renders,
    until,
)
from recording_media import decode_audio, decode_video

from hearing_server.bootstrap import FIRST_ADMIN
from recording.confirmation_log import LOG_FILE_NAME
from recording.hashchain import verify_chain
from recording.seal import MANIFEST_NAME

pytestmark = [pytest.mark.media, pytest.mark.slow]

RECORD_BEFORE_KILL_S = 4.0
RECORD_AFTER_RESTART_S = 2.0
MAX_LOSS_S = 1.5


async def connected(pages: list[Browser], within: float = 20) -> None:
    operator = pages[0]

    def all_connected() -> bool:
        state = operator.state()
        return state is not None and sum(
            p["connection"] == "connected" for p in state["participants"]
        ) == len(pages)

    await until(all_connected, within, f"{len(pages)} media connections")


def hearing_folder(data_dir: Path, hearing_id: str) -> Path:
    [folder] = [p for p in (data_dir / "recordings").rglob(hearing_id) if p.is_dir()]
    return folder


def check_segments_after_kill(folder: Path, killed_at: float, pages: dict[str, Browser]) -> list[Segment]:
    """Every track of the killed recording decodes and ends at most MAX_LOSS_S before the kill."""
    segments = [read_segment(path) for path in sorted((folder / "tracks").iterdir())]
    assert {(s.participant_id, s.kind) for s in segments} == {
        (p, k) for p in pages for k in ("audio", "video")
    }
    losses = {}
    for segment in segments:
        if segment.kind == "video":
            decoded = decode_video(segment.path)
            assert len(decoded.times) >= len(segment.packets) - 1
            last = segment.epoch + decoded.times[-1] + 1 / 15
        else:
            audio = decode_audio(segment.path)
            last = segment.epoch + audio.start + audio.duration
        assert last <= killed_at + 0.05
        losses[f"{segment.participant_id[:8]}/{segment.kind}"] = killed_at - last
    print(f"\nloss window after SIGKILL per track (s): { {k: round(v, 3) for k, v in losses.items()} }")
    assert max(losses.values()) <= MAX_LOSS_S, losses
    return segments


async def test_a_killed_server_loses_at_most_a_second_and_the_hearing_is_resumed_and_sealed(
    tmp_path: Path, clips: list[Clip], loopback_ice: None
) -> None:
    data_dir = tmp_path / "data"
    server = ServerProcess(data_dir, free_port())
    api: ServerApi | None = None
    pages: list[Browser] = []
    try:
        password = await server.start()
        assert password is not None
        api = ServerApi(server.base)
        await api.login(FIRST_ADMIN, password)
        await api.staff_operator()
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
        for page in pages:
            await page.publish()
        await connected(pages)
        await asyncio.sleep(1.0)  # past the keyframe rate limit of the new subscriptions
        await pages[0].send("start")
        await pages[0].wait_for("state", lambda m: m["hearing"]["recording"] == "recording")
        cpu0, wall0 = process_cpu_seconds(server.pid), time.monotonic()
        await asyncio.sleep(RECORD_BEFORE_KILL_S)
        server_cpu = process_cpu_seconds(server.pid) - cpu0
        wall = time.monotonic() - wall0
        killed_at = await server.kill()
        by_id = {page.participant_id: page for page in pages}
        for page in pages:
            await page.close()
        await api.close()

        folder = hearing_folder(data_dir, hearing_id)
        chain = verify_chain(folder / LOG_FILE_NAME)
        assert chain.valid, chain.problem
        before = await asyncio.to_thread(check_segments_after_kill, folder, killed_at, by_id)
        print(
            f"server process CPU while recording 3 participants (6 tracks, forwarding included): "
            f"{server_cpu / wall:.3f} cores = {100 * server_cpu / wall / 6:.1f} % of a core per track"
        )

        # Restart: the hearing shows as interrupted, with the interruption in its log.
        assert await server.start() is None
        api = ServerApi(server.base)
        await api.login("clerk", "a long enough password for tests")
        hearing = await api.ok("GET", f"/hearings/{hearing_id}")
        assert hearing["status"] == "interrupted"
        events = await api.events(hearing_id)
        assert events[-1]["event"] == "hearing_interrupted", [e["event"] for e in events[-3:]]
        assert events[-1]["details"]["previous_status"] == "in_session"
        record = await api.record(hearing_id)
        assert record["status"] == "interrupted" and record["recording"]["live"] is False

        # The operator comes back and resumes: new segment files on the same timeline; then the end.
        court = await api.courtroom(hearing_id)
        resumed = Browser(court, clips[0])
        pages = [resumed]
        await resumed.publish()
        await connected(pages)
        await asyncio.sleep(1.0)
        await resumed.send("start")
        await resumed.wait_for("state", lambda m: m["hearing"]["recording"] == "recording")
        await asyncio.sleep(RECORD_AFTER_RESTART_S)
        await resumed.send("end")
        await resumed.wait_for("hearing_ended")
        record = await sealed_record(api, hearing_id)
        assert record["status"] == "sealed" and record["seal"]["valid"] is True, record["seal"]
    finally:
        for page in pages:
            await page.close()
        if api is not None:
            await api.close()
        await server.stop()
        stop_renders(data_dir)

    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    listed = {f["path"]: f for f in manifest["files"]}
    for segment in before:
        assert segment.path.relative_to(folder).as_posix() in listed
    courtroom_id = pages[0].participant_id
    after = [
        read_segment(folder / path)
        for path in listed
        if path.startswith(f"tracks/{courtroom_id}-") and path.endswith("-002.webm")
    ]
    assert {s.kind for s in after} == {"audio", "video"}
    for segment in after:
        first = next(s for s in before if s.participant_id == courtroom_id and s.kind == segment.kind)
        assert segment.epoch == first.epoch  # one timeline for the whole hearing
        assert segment.first > first.last and segment.duration > RECORD_AFTER_RESTART_S - 0.5
    log_events = [json.loads(line)["event"] for line in (folder / LOG_FILE_NAME).read_text().splitlines()]
    assert log_events.count("recording_started") == 2 and "hearing_interrupted" in log_events
    assert log_events[-3:] == ["hearing_ended", "recording_stopped", "hearing_sealed"]
    script = Path(sys.executable).with_name("hearing-server")
    done = await asyncio.to_thread(
        subprocess.run, [str(script), "archive", "verify", str(folder)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    print("".join(line for line in server.output if "ERROR" in line or "Traceback" in line)[:2000])
    assert not any("Traceback" in line for line in server.output), "".join(server.output)[-4000:]
