"""The scripted court operator: schedules hearings through the REST API and runs them from the
courtroom seat on ``/ws`` (opens the waiting room, starts, admits every waiting party)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

ROLES = ["lawyer", "defendant", "plaintiff", "witness", "prosecutor", "expert", "victim", "interpreter"]


@dataclass
class ScheduledHearing:
    """A hearing with its parties' invitation tokens."""

    hearing_id: str
    tokens: list[str]
    admitted: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)


class Operator:
    """One staff session (cookie + CSRF token) and a courtroom seat per hearing."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        # the server is addressed by IP; aiohttp's default jar would drop its cookie
        self._session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self._csrf = ""
        self._seats: list[asyncio.Task[None]] = []
        self._sockets: list[aiohttp.ClientWebSocketResponse] = []
        self.hearings: list[ScheduledHearing] = []

    async def _call(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        headers = {"X-CSRF-Token": self._csrf} if self._csrf else {}
        async with self._session.request(
            method, self.base_url + path, json=body, headers=headers
        ) as response:
            data = await response.json()
            if response.status >= 300:
                raise RuntimeError(f"{method} {path}: {response.status} {data}")
            return dict(data)

    async def login(self, username: str, password: str) -> None:
        session = await self._call("POST", "/api/v1/auth/login", {"username": username, "password": password})
        self._csrf = session["csrf_token"]

    async def schedule(self, number: int, parties: int) -> ScheduledHearing:
        """Schedule a hearing starting in five minutes, add ``parties`` parties and invite them."""
        hearing = await self._call(
            "POST",
            "/api/v1/hearings",
            {
                "case_number": f"2-{1000 + number}/2026",
                "title": f"Benchmark hearing {number}",
                "courtroom": f"Room {number}",
                "scheduled_start": (datetime.now(UTC) + timedelta(minutes=5)).isoformat(),
                "duration_minutes": 60,
                "presiding_judge": "Judge Bench",
                "notice_language": "en",
            },
        )
        tokens = []
        for index in range(parties):
            party = await self._call(
                "POST",
                f"/api/v1/hearings/{hearing['id']}/parties",
                {"role": ROLES[index % len(ROLES)], "display_name": f"Party {number}.{index + 1}"},
            )
            issued = await self._call(
                "POST", f"/api/v1/hearings/{hearing['id']}/parties/{party['id']}/invitation"
            )
            tokens.append(issued["url"].rsplit("/join/", 1)[1])
        scheduled = ScheduledHearing(hearing["id"], tokens)
        self.hearings.append(scheduled)
        return scheduled

    async def take_seat(self, hearing: ScheduledHearing, timeout_s: float = 20.0) -> None:
        """Join as the courtroom, open the waiting room and start; then admit parties as they wait."""
        ws = await self._session.ws_connect(
            f"{self.base_url}/ws", headers={"Origin": self.base_url, "User-Agent": "BenchCourtroom/1.0"}
        )
        self._sockets.append(ws)
        await ws.send_str(json.dumps({"type": "join", "hearing_id": hearing.hearing_id, "as": "courtroom"}))
        started = asyncio.get_running_loop().create_future()
        self._seats.append(asyncio.ensure_future(self._run_seat(ws, hearing, started)))
        await asyncio.wait_for(started, timeout_s)

    async def _run_seat(
        self, ws: aiohttp.ClientWebSocketResponse, hearing: ScheduledHearing, started: asyncio.Future[None]
    ) -> None:
        opened = starting = False
        async for frame in ws:
            if frame.type is not aiohttp.WSMsgType.TEXT:
                break
            message = json.loads(frame.data)
            if message["type"] == "error":
                hearing.errors.append(f"{message.get('code')}: {message.get('message')}")
            if message["type"] != "state":
                continue
            status = message["hearing"]["status"]
            if status == "scheduled" and not opened:
                opened = True
                await ws.send_str(json.dumps({"type": "open_waiting_room"}))
            elif status == "open" and not starting:
                starting = True
                await ws.send_str(json.dumps({"type": "start"}))
            elif status == "in_session" and not started.done():
                started.set_result(None)
            for waiting in message.get("waiting", []):
                if waiting["state"] == "waiting" and waiting["id"] not in hearing.admitted:
                    hearing.admitted.add(waiting["id"])
                    await ws.send_str(json.dumps({"type": "admit", "party_id": waiting["id"]}))

    async def close(self) -> None:
        for task in self._seats:
            task.cancel()
        for ws in self._sockets:
            await ws.close()
        await self._session.close()
