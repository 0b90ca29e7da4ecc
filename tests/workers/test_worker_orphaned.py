"""Media workers whose control process is SIGKILLed exit by themselves: quietly, promptly, status 0.

The test process becomes the subreaper of its descendants for the test, so that the orphaned worker is
re-parented to it and its exit status can be read.  A recorded hearing's worker finalises the segments
it wrote (they decode), and the restarted server finds the hearing ``interrupted``.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hearing_pages import open_hearing, start_recording, worker_pids
from integration_harness import Clip, ServerApi, ServerProcess, free_port, read_segment, stop_renders

from hearing_server.bootstrap import FIRST_ADMIN
from media_worker.channel import Channel

pytestmark = [pytest.mark.media, pytest.mark.slow]

PR_SET_CHILD_SUBREAPER = 36
EXIT_WITHIN_S = 5.0


@pytest.fixture
def subreaper() -> Iterator[None]:
    """Orphans among this process's descendants become its children (Linux) while the test runs."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")
    try:
        yield
    finally:
        libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)


def exit_status(pid: int, within: float) -> int | None:
    """The exit status of the (adopted) child ``pid``; None if it still runs after ``within`` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.05)
    return None


async def test_a_worker_whose_control_process_is_killed_finalises_its_recording_and_exits_quietly(
    tmp_path: Path, clips: list[Clip], loopback_ice: None, subreaper: None
) -> None:
    data_dir = tmp_path / "data"
    server = ServerProcess(data_dir, free_port(), env={"HEARING_MEDIA_WORKERS": "2"})
    pages = []
    try:
        password = await server.start()
        assert password is not None
        api = ServerApi(server.base)
        try:
            await api.login(FIRST_ADMIN, password)
            await api.staff_operator()
            pids = await worker_pids(api)
            hearing_id, pages = await open_hearing(api, clips[0:2], 5)
            host = await start_recording(pages)
            await asyncio.sleep(1.5)
        finally:
            await api.close()
        assert len(pids) == 2
        seen = len(server.output)
        killed_at = time.monotonic()
        await server.kill()  # SIGKILL: no shutdown code runs in the control plane
        statuses = {n: await asyncio.to_thread(exit_status, pid, EXIT_WITHIN_S) for n, pid in pids.items()}
        exited_after = time.monotonic() - killed_at
        assert statuses == {"worker-0": 0, "worker-1": 0}, statuses  # None: still running
        await asyncio.sleep(0.2)  # the last lines through the pipe the workers shared with the server
        after = server.output[seen:]
        print(f"\nworkers exited {exited_after:.2f} s after the server was SIGKILLed:\n{''.join(after)}")
        assert not any("Traceback" in line for line in after), "".join(after)
        assert not any(" ERROR " in line for line in after), "".join(after)
        # One line from the hosting worker (the other one says at most that it closes no hearing).
        for name, pid in pids.items():
            lines = [line for line in after if f"media-worker {pid} " in line]
            if name == host:
                assert len(lines) == 1 and "closing 1 hearing(s) and exiting" in lines[0], lines
            else:
                assert all("closing 0 hearing(s) and exiting" in line for line in lines), lines

        # The segments the orphaned worker finalised decode; the restarted server interrupts the hearing.
        for page in pages:
            await page.close()
        pages = []
        tracks = sorted(p for p in data_dir.joinpath("recordings").rglob("*.webm") if hearing_id in str(p))
        segments = [read_segment(path) for path in tracks]
        assert len(segments) == 4 and all(s.duration > 1.0 for s in segments), [
            (s.path.name, s.duration) for s in segments
        ]
        assert await server.start() is None
        api = ServerApi(server.base)
        try:
            await api.login("clerk", "a long enough password for tests")
            assert (await api.ok("GET", f"/hearings/{hearing_id}"))["status"] == "interrupted"
        finally:
            await api.close()
    finally:
        for page in pages:
            await page.close()
        await server.stop()
        stop_renders(data_dir)


async def test_a_worker_exits_when_its_parent_dies_though_the_channel_stays_open(
    tmp_path: Path, subreaper: None
) -> None:
    """The channel's other end outlives the parent (here the test holds it): the parent check ends it."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    spawn = (
        "import subprocess, sys; fd = int(sys.argv[1]); "
        "worker = subprocess.Popen([sys.executable, '-m', 'media_worker', '--fd', str(fd)], pass_fds=[fd]); "
        "print(worker.pid, flush=True); sys.stdin.read()"
    )
    parent = await asyncio.create_subprocess_exec(
        sys.executable, "-c", spawn, str(theirs.fileno()), pass_fds=[theirs.fileno()],
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    theirs.close()
    channel = await Channel.open(ours)
    try:
        assert parent.stdout is not None and parent.stderr is not None
        worker_pid = int(await parent.stdout.readline())
        async with asyncio.timeout(30):
            assert (await channel.receive())["type"] == "ready"
        parent.kill()
        await parent.wait()
        status = await asyncio.to_thread(exit_status, worker_pid, EXIT_WITHIN_S)
        assert status == 0, status
        output = (await parent.stderr.read()).decode()
        assert "the control process died: closing 0 hearing(s) and exiting" in output, output
        assert "Traceback" not in output, output
    finally:
        await channel.close()
        if parent.returncode is None:
            parent.kill()
            await parent.wait()
