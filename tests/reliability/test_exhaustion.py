"""Exhaustion from outside, against a real server process: descriptors (#18.1, #12.8).

Run inside a loopback-only namespace (see docs/reliability.md).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from pathlib import Path

import pytest
from integration_harness import ServerApi, ServerProcess, free_port

from hearing_server.bootstrap import FIRST_ADMIN
from recording.confirmation_log import LOG_FILE_NAME

pytestmark = pytest.mark.slow

HEARINGS = 2000
OPEN_FILES = 256
OPEN_LOGS = 16
CLIENT_CONNECTIONS = 8


def _first_entry(path: Path) -> dict[str, object]:
    with path.open("rb") as log:
        entry: dict[str, object] = json.loads(log.readline())
    return entry


async def test_two_thousand_scheduled_hearings_under_ulimit_256(tmp_path: Path) -> None:
    """Every hearing is scheduled (201) with its `hearing_scheduled` entry; open descriptors stay bounded."""
    server = ServerProcess(
        tmp_path / "data",
        free_port(),
        open_files=OPEN_FILES,
        env={"HEARING_MAX_OPEN_LOGS": str(OPEN_LOGS)},
    )
    password = await server.start()
    assert password is not None
    api = ServerApi(server.base)
    try:
        await api.login(FIRST_ADMIN, password)
        await api.staff_operator()
        baseline = server.open_fds()
        start = time.strftime("%Y-%m-%dT10:00:00Z", time.gmtime(time.time() + 2 * 86400))
        statuses: Counter[int] = Counter()
        peak = baseline
        gate = asyncio.Semaphore(CLIENT_CONNECTIONS)

        async def schedule(index: int) -> None:
            body = {
                "case_number": f"2-{index}/2026",
                "title": f"Claim {index}",
                "courtroom": "Room 5",
                "scheduled_start": start,
                "duration_minutes": 60,
                "presiding_judge": "A. Judge",
                "notice_language": "ru",
            }
            async with gate:
                status, _data = await api.call("POST", "/hearings", body)
            statuses[status] += 1

        started = time.monotonic()
        for batch in range(0, HEARINGS, 100):
            await asyncio.gather(*(schedule(i) for i in range(batch, batch + 100)))
            peak = max(peak, server.open_fds())
        elapsed = time.monotonic() - started
        now = server.open_fds()
        print(f"{HEARINGS} hearings in {elapsed:.1f} s; descriptors {baseline} → peak {peak}, now {now}")

        assert statuses == {201: HEARINGS}, statuses
        page = await api.ok("GET", "/hearings", limit=1)
        assert page["total"] == HEARINGS
        logs = list((tmp_path / "data" / "recordings").rglob(LOG_FILE_NAME))
        assert len(logs) == HEARINGS
        assert all(_first_entry(path)["event"] == "hearing_scheduled" for path in logs)
        # open logs, the client's connections, database connections and a few transient ones
        assert peak - baseline <= OPEN_LOGS + CLIENT_CONNECTIONS + 24, (baseline, peak)
    finally:
        await api.close()
        await server.stop()
