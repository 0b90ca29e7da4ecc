"""A live-hearing test bench: the app with ``/ws``, database rows made directly, and WebSocket clients."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from hearing_server.auth.tokens import hash_token, new_token
from hearing_server.record.event_log import EVENTS
from hearing_server.store.db import SESSIONS
from hearing_server.store.models import Hearing, HearingEvent, Invitation, Party, StaffSession, User
from hearing_server.web.ws import LIVE_HEARINGS
from media.contract import (
    ConnectionQuality,
    FrameSink,
    MediaEvents,
    MediaSettings,
    TrackKind,
    TrackMapping,
)
from media.errors import MediaError, MediaErrorCode

TIMEOUT = 5.0


class FakeRouter:
    """A media router that answers every offer, offers each publisher a subscription, and logs calls."""

    def __init__(self, settings: MediaSettings, events: MediaEvents, sink: FrameSink | None) -> None:
        self.settings = settings
        self.events = events
        self.sink = sink
        self.calls: list[tuple[Any, ...]] = []
        self.muted: dict[str, set[TrackKind]] = {}
        self.paused: bool | None = None
        self.priority: str | None = None
        self.closed = False

    async def publish(self, participant_id: str, offer_sdp: str) -> str:
        self.calls.append(("publish", participant_id))
        if "garbage" in offer_sdp:
            raise MediaError(MediaErrorCode.SDP_INVALID, "unreadable offer")
        tracks = [TrackMapping("0", "someone", "audio"), TrackMapping("1", "someone", "video")]
        await self.events.subscriber_offer(participant_id, f"offer-for-{participant_id}", tracks)
        self.events.connection_state_changed(participant_id, "connected")
        return f"answer-for-{participant_id}"

    async def subscriber_answer(self, participant_id: str, answer_sdp: str) -> None:
        self.calls.append(("subscriber_answer", participant_id, answer_sdp))

    def set_muted(self, participant_id: str, kind: TrackKind, muted: bool) -> None:
        self.calls.append(("set_muted", participant_id, kind, muted))
        kinds = self.muted.setdefault(participant_id, set())
        (kinds.add if muted else kinds.discard)(kind)

    def set_paused(self, paused: bool) -> None:
        self.calls.append(("set_paused", paused))
        self.paused = paused

    def set_video_priority(self, participant_id: str | None) -> None:
        self.priority = participant_id

    async def leave(self, participant_id: str) -> None:
        self.calls.append(("leave", participant_id))
        self.muted.pop(participant_id, None)

    async def stats(self) -> list[ConnectionQuality]:
        return [ConnectionQuality(pid, "connected", 12.5, 0.0, 800.0, 1600.0) for pid in self.muted]

    async def close(self) -> None:
        self.calls.append(("close",))
        self.closed = True


class WsPeer:
    """One client of ``/ws``: sends messages and waits for the ones it expects."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.seen: list[dict[str, Any]] = []
        self._unread: list[dict[str, Any]] = []

    async def send(self, message_type: str, /, **fields: Any) -> None:
        await self.ws.send_str(json.dumps({"type": message_type, **fields}))

    async def send_raw(self, text: str) -> None:
        await self.ws.send_str(text)

    async def _next(self, within: float) -> dict[str, Any]:
        frame = await self.ws.receive(timeout=within)
        if frame.type is not aiohttp.WSMsgType.TEXT:
            raise ConnectionError(f"socket closed ({frame.type.name}, code {self.ws.close_code})")
        message = json.loads(frame.data)
        self.seen.append(message)
        return message

    async def expect(
        self, kind: str, where: Callable[[dict[str, Any]], bool] | None = None, within: float = TIMEOUT
    ) -> dict[str, Any]:
        """The next ``kind`` message matching ``where``; skipped ones of that kind are dropped."""

        def take(message: dict[str, Any]) -> bool:
            return message["type"] == kind and (where is None or where(message))

        for index, message in enumerate(self._unread):
            if take(message):
                self._unread = [m for m in self._unread[:index] if m["type"] != kind] + self._unread[
                    index + 1 :
                ]
                return message
        self._unread = [m for m in self._unread if m["type"] != kind]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"no {kind} message; saw {[m['type'] for m in self.seen[-8:]]}")
            message = await self._next(remaining)
            if take(message):
                return message
            if message["type"] != kind:
                self._unread.append(message)

    async def expect_state(self, you_state: str | None = None, **checks: Any) -> dict[str, Any]:
        """The next ``state`` in which this participant is ``you_state`` and ``checks`` hold."""

        def matches(message: dict[str, Any]) -> bool:
            if you_state is not None and message["you"]["state"] != you_state:
                return False
            return all(check(message) for check in checks.values())

        return await self.expect("state", matches)

    async def expect_error(self, code: str) -> dict[str, Any]:
        message = await self.expect("error")
        assert message["code"] == code, message
        return message

    async def expect_closed(self, within: float = TIMEOUT) -> int | None:
        """Read until the server closes; return the code of its close frame (what a browser reports)."""
        async with asyncio.timeout(within):
            while True:
                frame = await self.ws.receive()
                if frame.type is aiohttp.WSMsgType.TEXT:
                    self.seen.append(json.loads(frame.data))
                    continue
                if frame.type is aiohttp.WSMsgType.CLOSE:
                    return int(frame.data)
                return self.ws.close_code

    async def close(self) -> None:
        await self.ws.close()


@dataclass
class Bench:
    """The running app, its database and the routers the rooms created."""

    client: TestClient[Any, Any]
    app: web.Application
    routers: list[FakeRouter] = field(default_factory=list)
    hearing_id: str = ""

    @property
    def origin(self) -> str:
        return str(self.client.make_url("/")).rstrip("/")

    @property
    def router(self) -> FakeRouter:
        assert self.routers, "no media router was created"
        return self.routers[-1]

    async def make_hearing(
        self, *, start_in: timedelta = timedelta(minutes=10), status: str = "scheduled"
    ) -> str:
        now = datetime.now(UTC)
        async with self.app[SESSIONS]() as db:
            hearing = Hearing(
                court="Almaty District Court No. 2",
                courtroom="Room 7",
                case_number="2-345/2025",
                title="Sample v. Example",
                scheduled_start=now + start_in,
                duration_minutes=60,
                presiding_judge="A. Judge",
                notice_language="ru",
                status=status,
                created_at=now,
                updated_at=now,
            )
            db.add(hearing)
            await db.commit()
            self.hearing_id = hearing.id
            return hearing.id

    async def make_party(
        self, name: str, role: str = "witness", *, hearing_id: str | None = None
    ) -> tuple[str, str]:
        """A party with an active invitation; returns (party id, token)."""
        now = datetime.now(UTC)
        token = new_token()
        async with self.app[SESSIONS]() as db:
            party = Party(
                hearing_id=hearing_id or self.hearing_id,
                role=role,
                display_name=name,
                state="invited",
                created_at=now,
            )
            db.add(party)
            await db.flush()
            db.add(
                Invitation(
                    party_id=party.id,
                    hearing_id=party.hearing_id,
                    token_hash=hash_token(token),
                    created_at=now,
                    expires_at=now + timedelta(days=1),
                )
            )
            await db.commit()
            return party.id, token

    async def make_staff(self, role: str = "operator", username: str = "operator1") -> str:
        """A staff account with a live session; returns the cookie value."""
        now = datetime.now(UTC)
        token = new_token()
        async with self.app[SESSIONS]() as db:
            user = User(
                username=username, display_name=username.title(), role=role, password_hash="x", created_at=now
            )
            db.add(user)
            await db.flush()
            db.add(
                StaffSession(
                    id_hash=hash_token(token),
                    user_id=user.id,
                    csrf_token=new_token(),
                    created_at=now,
                    expires_at=now + timedelta(hours=1),
                )
            )
            await db.commit()
        return token

    async def connect(
        self,
        *,
        cookie: str | None = None,
        origin: str | None = "",
        user_agent: str = "TestBrowser/1.0",
    ) -> WsPeer:
        headers = {"User-Agent": user_agent}
        if origin is not None:
            headers["Origin"] = origin or self.origin
        if cookie is not None:
            headers["Cookie"] = f"hs_session={cookie}"
        ws = await self.client.ws_connect("/ws", headers=headers)
        return WsPeer(ws)

    async def party(
        self, token: str, *, language: str | None = None, user_agent: str = "PartyPhone/1.0"
    ) -> WsPeer:
        """A party that has joined (the ``hearing`` message read)."""
        peer = await self.connect(user_agent=user_agent)
        fields: dict[str, Any] = {"token": token}
        if language:
            fields["language"] = language
        await peer.send("join", **fields)
        await peer.expect("hearing")
        return peer

    async def waiting_party(self, token: str, **kwargs: Any) -> WsPeer:
        """A party through the notice, in the waiting room."""
        peer = await self.party(token, **kwargs)
        hearing = next(m for m in peer.seen if m["type"] == "hearing")
        notice = hearing["notice"]
        await peer.send("confirm_notice", language=notice["language"], notice_sha256=notice["sha256"])
        await peer.expect_state("confirmed")
        await peer.send("ready")
        await peer.expect_state("waiting")
        return peer

    async def operator(self, cookie: str, *, seat: str = "courtroom") -> WsPeer:
        peer = await self.connect(cookie=cookie, user_agent="CourtroomPC/1.0")
        await peer.send("join", hearing_id=self.hearing_id, **{"as": seat})
        await peer.expect("hearing")
        return peer

    async def events(self, hearing_id: str | None = None) -> list[HearingEvent]:
        return await self.app[EVENTS].entries(hearing_id or self.hearing_id)

    async def row(self, model: type[Any], key: str) -> Any:
        async with self.app[SESSIONS]() as db:
            return await db.get(model, key)

    async def invitations(self, party_id: str) -> list[Invitation]:
        async with self.app[SESSIONS]() as db:
            return list(
                (await db.execute(select(Invitation).where(Invitation.party_id == party_id))).scalars()
            )

    def live(self) -> Any:
        return self.app[LIVE_HEARINGS]


def types_of(events: list[HearingEvent]) -> list[str]:
    return [e.event for e in events]
