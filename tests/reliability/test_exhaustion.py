"""Exhaustion from outside, against a real server process: descriptors (#18.1, #12.8), slow and idle
connections (#18.4).

Run inside a loopback-only namespace (see docs/reliability.md).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter
from pathlib import Path

import aiohttp
import pytest
from flood_child import IDLE_SOCKETS, SLOW_CONNECTIONS, client_tls
from integration_harness import ServerApi, ServerProcess, free_port
from signaling_harness import WsPeer

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


TIMEOUT_S = 4.0  # join deadline, header and TLS-handshake timeouts of the server under test
FLOOD_CHILD = Path(__file__).with_name("flood_child.py")


async def _party_joins(base: str, token: str) -> float:
    """Seconds from opening the socket to the party's `hearing` message."""
    connector = aiohttp.TCPConnector(ssl=client_tls())
    async with aiohttp.ClientSession(connector=connector) as http:
        started = time.monotonic()
        ws = await http.ws_connect(f"{base}/ws", headers={"Origin": base, "User-Agent": "PartyPhone/1.0"})
        peer = WsPeer(ws)
        await peer.send("join", token=token)
        await peer.expect("hearing", within=5)
        took = time.monotonic() - started
        await ws.close()
        return took


async def test_slow_and_idle_connections_do_not_keep_a_party_out(tmp_path: Path) -> None:
    """#18.4: 600 slow connections and 300 idle WebSockets; a party joins in < 1 s; memory and
    descriptors come back near their baseline."""
    timeouts = {
        "HEARING_WS_JOIN_TIMEOUT_S": str(TIMEOUT_S),
        "HEARING_HTTP_HEADER_TIMEOUT_S": str(TIMEOUT_S),
        "HEARING_TLS_HANDSHAKE_TIMEOUT_S": str(TIMEOUT_S),
    }
    server = ServerProcess(tmp_path / "data", free_port(), env=timeouts, tls=True)
    password = await server.start()
    assert password is not None
    api = ServerApi(server.base)
    await api.http.close()
    api.http = aiohttp.ClientSession(
        cookie_jar=aiohttp.DummyCookieJar(), connector=aiohttp.TCPConnector(ssl=client_tls())
    )
    attackers: asyncio.subprocess.Process | None = None
    try:
        await api.login(FIRST_ADMIN, password)
        await api.staff_operator()
        hearing_id = (await api.schedule())["id"]
        tokens = [(await api.invite(hearing_id, f"Party {index}"))[1] for index in range(2)]
        court = await api.courtroom(hearing_id)
        await court.send("open_waiting_room")
        await court.expect("state", lambda m: m["hearing"]["status"] == "open")
        warm_up = await _party_joins(server.base, tokens[0])
        await asyncio.sleep(1.0)
        baseline_fds, baseline_rss = server.open_fds(), server.rss_mb()

        attackers = await asyncio.create_subprocess_exec(
            sys.executable,
            str(FLOOD_CHILD),
            str(server.port),
            "40",
            stdout=asyncio.subprocess.PIPE,
        )
        assert attackers.stdout is not None
        assert (await attackers.stdout.readline()).strip() == b"flooding"
        await asyncio.sleep(2.0)
        during_fds, during_rss = server.open_fds(), server.rss_mb()
        join_time = await _party_joins(server.base, tokens[1])
        outcome = json.loads(await asyncio.wait_for(attackers.stdout.readline(), 60))
        assert await attackers.wait() == 0
        cut_off, longest, idle = outcome["cut_off"], outcome["longest_s"], Counter(outcome["idle"])
        await asyncio.sleep(1.0)
        after_fds, after_rss = server.open_fds(), server.rss_mb()
        print(
            f"\njoin {warm_up:.2f} s before the flood, {join_time:.2f} s during it;"
            f" descriptors {baseline_fds} → {during_fds} → {after_fds};"
            f" RSS {baseline_rss:.0f} → {during_rss:.0f} → {after_rss:.0f} MB;"
            f" slow connections cut off by the server: {cut_off} of {SLOW_CONNECTIONS}, the longest after"
            f" {longest} s;"
            f" idle sockets: {dict(idle)}"
        )
        assert join_time < 1.0
        assert cut_off == SLOW_CONNECTIONS  # every slow connection was closed by the server
        assert longest < TIMEOUT_S + 2.0  # by the header or handshake timeout (or at once, at the cap)
        assert sum(idle.values()) == IDLE_SOCKETS
        held = [key for key in idle if key.startswith("closed")]
        assert all("['join_timeout']" in key for key in held), idle  # closed by the join deadline
        assert sum(idle[key] for key in held) <= 8  # ws_unjoined_per_address
        assert after_fds <= baseline_fds + 5, (baseline_fds, after_fds)
        assert after_rss <= baseline_rss + 40, (baseline_rss, after_rss)
    finally:
        if attackers is not None and attackers.returncode is None:
            attackers.kill()
            await attackers.wait()
        await api.close()
        await server.stop()
