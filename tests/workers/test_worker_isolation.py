"""Two recorded hearings on two media workers of a real server process.

The control plane frozen for 2 s (SIGSTOP) and one worker killed (SIGKILL): the other hearing's media
flows on without a gap over 0.5 s at its subscribers; the killed worker's hearing becomes ``interrupted``
within seconds, is resumed on the restarted worker, and both hearings end, seal and verify.  A third
hearing, while both workers are full, is refused with ``capacity_exhausted``.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from pathlib import Path

import pytest
from hearing_pages import (
    TimedPage,
    candidate_ports,
    connected,
    free_port_block,
    open_hearing,
    start_recording,
    verify_folder,
    worker_pids,
)
from integration_harness import (
    Clip,
    ServerApi,
    ServerProcess,
    free_port,
    read_segment,
    sealed_record,
    stop_renders,
)

from hearing_server.bootstrap import FIRST_ADMIN

pytestmark = [pytest.mark.media, pytest.mark.slow]

MAX_GAP_S = 0.5
FREEZE_S = 2.0


async def test_a_killed_worker_costs_only_its_hearing_and_a_frozen_control_plane_costs_no_media(
    tmp_path: Path, clips: list[Clip], loopback_ice: None
) -> None:
    data_dir = tmp_path / "data"
    low = free_port_block(40)
    server = ServerProcess(
        data_dir,
        free_port(),
        env={
            "HEARING_MEDIA_WORKERS": "2",
            "HEARING_WORKER_MAX_HEARINGS": "1",
            "HEARING_ICE_PORT_MIN": str(low),
            "HEARING_ICE_PORT_MAX": str(low + 39),
        },
    )
    api: ServerApi | None = None
    pages: list[TimedPage] = []
    try:
        password = await server.start()
        assert password is not None
        api = ServerApi(server.base)
        await api.login(FIRST_ADMIN, password)
        await api.staff_operator()
        pids = await worker_pids(api)
        assert sorted(pids) == ["worker-0", "worker-1"], pids
        first, first_pages = await open_hearing(api, clips[0:2], 5)
        second, second_pages = await open_hearing(api, clips[2:4], 7)
        pages = first_pages + second_pages
        first_host = await start_recording(first_pages)
        second_host = await start_recording(second_pages)
        assert {first_host, second_host} == {"worker-0", "worker-1"}  # one hearing per worker

        # /metrics: each worker forwards its hearing's packets and times them.
        await asyncio.sleep(2.5)  # a load report or two
        async with api.http.get(f"{api.base}/metrics") as response:
            metrics = await response.text()
        for worker in ("worker-0", "worker-1"):
            rate = re.search(rf'hearing_worker_packet_rate{{worker="{worker}"}} ([0-9.e+]+)', metrics)
            timed = re.search(
                rf'hearing_worker_media_transit_seconds_count{{worker="{worker}"}} ([0-9.e+]+)', metrics
            )
            assert rate and float(rate.group(1)) > 50, (worker, rate)
            assert timed and float(timed.group(1)) > 100, (worker, timed)

        # Every worker is full (one hearing each): a third hearing cannot start its media.
        third = (await api.schedule(9))["id"]
        third_court = TimedPage(await api.courtroom(third), clips[0])
        pages.append(third_court)
        await third_court.send("open_waiting_room")
        await third_court.publish()
        refusal = await third_court.wait_for("error", lambda m: m["code"] == "capacity_exhausted")
        print(f"\nthird hearing refused: {refusal['message']}")

        # The control plane frozen for 2 s: media keeps flowing in both hearings.
        baseline_from = time.monotonic()
        await asyncio.sleep(2.5)
        baseline = max(max(p.largest_gap(baseline_from, time.monotonic()).values()) for p in pages[:4])
        print(f"largest gap at any subscriber in 2.5 s before the freeze (baseline): {baseline:.3f} s")
        frozen_at = time.monotonic()
        os.kill(server.pid, signal.SIGSTOP)
        await asyncio.sleep(FREEZE_S)
        os.kill(server.pid, signal.SIGCONT)
        await asyncio.sleep(0.5)
        for page in first_pages + second_pages:
            gaps = page.largest_gap(frozen_at - 0.5, time.monotonic())
            print(f"control plane stopped {FREEZE_S} s: largest gaps at a subscriber {gaps}")
            assert set(gaps) == {"audio", "video"} and max(gaps.values()) < MAX_GAP_S, gaps

        # SIGKILL the first hearing's worker: only that hearing is interrupted.
        killed_pid = pids[first_host]
        killed_at = time.monotonic()
        os.kill(killed_pid, signal.SIGKILL)
        statuses: list[str] = []

        async def first_status() -> str:
            assert api is not None
            status = str((await api.ok("GET", f"/hearings/{first}"))["status"])
            statuses.append(status)
            return status

        while await first_status() != "interrupted":
            assert time.monotonic() - killed_at < 10, statuses
            await asyncio.sleep(0.1)
        interrupted_after = time.monotonic() - killed_at
        events = [e["event"] for e in await api.events(first)]
        assert "hearing_interrupted" in events and "recording_failed" in events, events[-6:]
        while (restarted := (await worker_pids(api)).get(first_host)) in (None, killed_pid):
            assert time.monotonic() - killed_at < 15, "the worker was not restarted"
            await asyncio.sleep(0.1)
        restarted_after = time.monotonic() - killed_at
        await asyncio.sleep(2.0)
        for page in second_pages:
            gaps = page.largest_gap(killed_at - 0.5, time.monotonic())
            print(f"other worker killed: largest gaps at a subscriber of the other hearing {gaps}")
            assert max(gaps.values()) < MAX_GAP_S, gaps
        assert (await api.ok("GET", f"/hearings/{second}"))["status"] == "in_session"
        print(
            f"worker {first_host} SIGKILLed: hearing interrupted after {interrupted_after:.2f} s, "
            f"worker restarted (pid {killed_pid} → {restarted}) after {restarted_after:.2f} s"
        )

        # The operator resumes the first hearing: it runs on the restarted worker (the other is full).
        for page in first_pages:
            await page.close()
        court = TimedPage(await api.courtroom(first), clips[0])
        pages.append(court)
        await court.publish()
        await connected([court])
        resumed_host = await start_recording([court])
        assert resumed_host == first_host
        await asyncio.sleep(2.0)
        for hearing_court in (court, second_pages[0]):
            await hearing_court.send("end")
            await hearing_court.wait_for("hearing_ended", within=15)
        for hearing_id in (first, second):
            record = await sealed_record(api, hearing_id)
            assert record["status"] == "sealed" and record["seal"]["valid"] is True, record["seal"]
        # Every server-side ICE candidate of every worker was in the configured port range.
        server_ports = {
            port
            for page in pages
            for message in page.messages
            if message["type"] in ("publish_answer", "subscribe_offer")
            for port in candidate_ports(message["sdp"])
        }
        assert len(server_ports) >= 8 and server_ports <= set(range(low, low + 40)), (low, server_ports)
    finally:
        for page in pages:
            await page.close()
        if api is not None:
            await api.close()
        await server.stop()
        stop_renders(data_dir)

    first_folder = await verify_folder(data_dir, first)
    await verify_folder(data_dir, second)
    # The segments the killed worker wrote decode and are sealed with the later ones.
    tracks = sorted((first_folder / "tracks").iterdir())
    before = [read_segment(path) for path in tracks if path.name.endswith("-001.webm")]
    after = [read_segment(path) for path in tracks if not path.name.endswith("-001.webm")]
    assert len(before) == 4 and all(s.duration > 1.0 for s in before), [
        (s.path.name, s.duration) for s in before
    ]
    assert after and all(s.epoch == before[0].epoch for s in after)
    assert not any("Traceback" in line for line in server.output), "".join(server.output)[-4000:]


async def test_sigterm_stops_the_workers_and_interrupts_the_hearing(
    tmp_path: Path, clips: list[Clip], loopback_ice: None
) -> None:
    data_dir = tmp_path / "data"
    server = ServerProcess(data_dir, free_port(), env={"HEARING_MEDIA_WORKERS": "1"})
    api: ServerApi | None = None
    pages: list[TimedPage] = []
    try:
        password = await server.start()
        assert password is not None
        api = ServerApi(server.base)
        await api.login(FIRST_ADMIN, password)
        await api.staff_operator()
        [worker_pid] = (await worker_pids(api)).values()
        hearing_id, pages = await open_hearing(api, clips[0:2], 5)
        assert await start_recording(pages) == "worker-0"
        await asyncio.sleep(1.0)
        await api.close()
        api = None
        stopping = time.monotonic()
        await server.stop()  # SIGTERM
        stopped_after = time.monotonic() - stopping
        assert server.process is not None and server.process.returncode == 0, "".join(server.output)[-3000:]
        assert not await asyncio.to_thread(os.path.exists, f"/proc/{worker_pid}"), (
            "the worker outlived the server"
        )
        print(f"\nSIGTERM: server and worker stopped after {stopped_after:.2f} s")
        for page in pages:
            await page.close()
        pages = []

        assert await server.start() is None
        api = ServerApi(server.base)
        await api.login("clerk", "a long enough password for tests")
        assert (await api.ok("GET", f"/hearings/{hearing_id}"))["status"] == "interrupted"
        events = await api.events(hearing_id)
        stopped = [e for e in events if e["event"] == "recording_stopped"]
        assert stopped and stopped[-1]["details"]["reason"] == "interrupted", stopped
        assert stopped[-1]["details"]["segments"] == 4 and not stopped[-1]["details"]["failure"], stopped[-1]
        assert events[-1]["event"] == "hearing_interrupted" or "hearing_interrupted" in [
            e["event"] for e in events
        ]
    finally:
        for page in pages:
            await page.close()
        if api is not None:
            await api.close()
        await server.stop()
        stop_renders(data_dir)
    assert not any("Traceback" in line for line in server.output), "".join(server.output)[-4000:]
