"""One participant's WebSocket: reads and limits messages, dispatches them, writes the replies in order."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from typing import Any

from aiohttp import WSMsgType, web

from hearing_server.domain.errors import HearingError
from signaling import protocol as p
from signaling.admission import SocketTicket
from signaling.live import Gate, LiveHearings
from signaling.protocol import CloseCode, ErrorCode, ProtocolError
from signaling.room.hearing import LiveHearing
from signaling.room.participant import ClientInfo, Participant

log = logging.getLogger(__name__)

MAX_QUEUED = 512  # a client this far behind is not reading: it is dropped
MAX_INBOX = 64  # messages read but not yet handled
ABUSE_WINDOW_S = 10.0
DEFAULT_JOIN_TIMEOUT_S = 10.0  # a socket that has not joined by then is closed (``ws_join_timeout_s``)


class TokenBucket:
    """Allows ``rate`` messages a second on average and bursts of ``burst``."""

    def __init__(self, rate: float, burst: float, clock: Any = time.monotonic) -> None:
        self._rate = rate
        self._burst = burst
        self._tokens = burst
        self._clock = clock
        self._last = clock()

    def allow(self) -> bool:
        """Take one token if there is one."""
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
        self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


def _encode(message: dict[str, Any]) -> str:
    """The JSON text of a server message; a lone surrogate that slipped past validation goes escaped
    (``\\ud800``) rather than failing the UTF-8 encoding of the frame and the connection with it."""
    text = json.dumps(message, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        log.warning("a %s message carried a lone surrogate; sent escaped", message.get("type"))
        return json.dumps(message)
    return text


class SignalingSession:
    """A participant's signaling connection; implements the room's ``Connection``."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        client: ClientInfo,
        live: LiveHearings,
        gate: Gate,
        *,
        ticket: SocketTicket | None = None,
        join_timeout_s: float = DEFAULT_JOIN_TIMEOUT_S,
    ) -> None:
        self.client = client
        self._ticket = ticket
        self._join_timeout = join_timeout_s
        self._ws = ws
        self._gate = gate
        self._live = live
        settings = live.settings
        self._limit = settings.ws_max_message_bytes
        self._bucket = TokenBucket(settings.ws_messages_per_s, 2 * settings.ws_messages_per_s)
        self._abuse_limit = int(10 * settings.ws_messages_per_s) + 20
        self._dropped: deque[float] = deque()
        self._last_rate_error = 0.0
        self._parser = p.MessageParser()
        self._queue: asyncio.Queue[dict[str, Any] | int] = asyncio.Queue()
        self._inbox: asyncio.Queue[str | None] = asyncio.Queue()
        self._closing = False
        self._room: LiveHearing | None = None
        self._participant: Participant | None = None

    # --- Connection (used by the room) --------------------------------------------------------

    def send(self, message: dict[str, Any]) -> None:
        """Queue ``message``; a client that stops reading is closed."""
        if self._closing:
            return
        if self._queue.qsize() >= MAX_QUEUED:
            log.warning("dropping a signaling client that does not read (%s)", self.client.ip)
            self.close_soon(CloseCode.POLICY)
            return
        self._queue.put_nowait(message)

    def close_soon(self, code: int) -> None:
        """Send what is queued, then close with ``code``."""
        if not self._closing:
            self._closing = True
            self._queue.put_nowait(code)

    # --- the connection's life ------------------------------------------------------------------

    async def run(self) -> None:
        """Serve the connection until it closes.

        Messages are handled by a worker task of their own: aiohttp cancels this handler when the
        socket drops, and a half-done transition (or the disconnect itself) must still complete.
        """
        writer = self._live.track(asyncio.create_task(self._write()))
        worker = self._live.track(asyncio.create_task(self._work(writer)))
        overdue = asyncio.get_running_loop().call_later(self._join_timeout, self._join_overdue)
        try:
            async for frame in self._ws:
                if self._closing:
                    break
                text = self._admit(frame)
                if text is not None:
                    self._inbox.put_nowait(text)
        finally:
            overdue.cancel()
            self._inbox.put_nowait(None)
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(worker)

    def _join_overdue(self) -> None:
        # A socket that has not joined in time is closed: it costs memory and proves nothing (#18.4).
        if self._participant is None and not self._closing:
            self.send(p.error(ErrorCode.JOIN_TIMEOUT, f"join within {self._join_timeout:g} s of connecting"))
            self.close_soon(CloseCode.POLICY)

    async def _work(self, writer: asyncio.Task[None]) -> None:
        while (text := await self._inbox.get()) is not None:
            await self._handle(text)
        if self._room is not None and self._participant is not None:
            try:
                await self._room.connection_closed(self._participant, self)
            except Exception:
                log.exception("cleaning up a closed connection failed")
        self.close_soon(CloseCode.LEFT)
        try:
            await asyncio.wait_for(writer, timeout=5)
        except TimeoutError:
            writer.cancel()

    async def _write(self) -> None:
        while True:
            item = await self._queue.get()
            if isinstance(item, int):
                if not self._ws.closed:
                    with contextlib.suppress(ConnectionError, RuntimeError):
                        await self._ws.close(code=item)
                return
            if self._ws.closed:
                continue
            try:
                await self._ws.send_str(_encode(item))
            except (ConnectionError, RuntimeError):
                self._closing = True
                return

    def _admit(self, frame: Any) -> str | None:
        """The text of a frame worth handling; answers binary, flooding and oversized frames at once."""
        if frame.type is WSMsgType.BINARY:
            self.send(p.error(ErrorCode.BAD_JSON, "binary frames are not accepted"))
            return None
        if frame.type is not WSMsgType.TEXT or not self._within_rate():
            return None
        text: str = frame.data
        if len(text) > self._limit or len(text.encode("utf-8")) > self._limit:
            self.send(p.error(ErrorCode.TOO_LARGE, f"messages may be at most {self._limit} bytes"))
            return None
        if self._inbox.qsize() >= MAX_INBOX:
            self.send(p.error(ErrorCode.RATE_LIMITED, "too many messages waiting; slow down"))
            return None
        return text

    async def _handle(self, text: str) -> None:
        ref: str | None = None
        try:
            message = self._parser.parse(text)
            ref = message.ref
            reply = await self._dispatch(message)
            if reply is not None:
                self.send(reply)
        except ProtocolError as exc:
            ref = ref if ref is not None else p.ref_of(text)
            self.send(p.error(exc.code, exc.message, ref=ref, field=exc.field, **exc.extra))
        except HearingError as exc:
            self.send(p.error(p.error_code_for(exc), exc.message, ref=ref))
        except Exception:
            log.exception("signaling message failed")
            self.send(p.error(ErrorCode.INTERNAL_ERROR, "the server could not handle this message", ref=ref))

    def _within_rate(self) -> bool:
        if self._bucket.allow():
            return True
        now = time.monotonic()
        self._dropped.append(now)
        while self._dropped and self._dropped[0] < now - ABUSE_WINDOW_S:
            self._dropped.popleft()
        if len(self._dropped) > self._abuse_limit:
            log.warning("closing a signaling client that floods (%s)", self.client.ip)
            self.close_soon(CloseCode.POLICY)
        elif now - self._last_rate_error >= 1.0:
            self._last_rate_error = now
            self.send(p.error(ErrorCode.RATE_LIMITED, "too many messages; slow down"))
        return False

    async def _dispatch(self, message: p.ClientMessage) -> dict[str, Any] | None:
        if self._room is None or self._participant is None:
            if isinstance(message, p.Ping):
                return p.with_ref(p.simple("pong"), message.ref)
            if not isinstance(message, p.Join):
                raise ProtocolError(ErrorCode.NOT_JOINED, "send join first")
            try:
                self._room, self._participant = await self._join(message)
                if self._ticket is not None:
                    self._ticket.joined()
            except (ProtocolError, HearingError) as exc:
                code = exc.code if isinstance(exc, ProtocolError) else p.error_code_for(exc)
                extra = exc.extra if isinstance(exc, ProtocolError) else {}
                field = exc.field if isinstance(exc, ProtocolError) else None
                self.send(p.error(code, exc.message, ref=message.ref, field=field, **extra))
                self.close_soon(CloseCode.JOIN_FAILED)
            return None
        return await self._room.handle(self._participant, self, message)

    async def _join(self, message: p.Join) -> tuple[LiveHearing, Participant]:
        if message.token is not None:
            hearing_id, entrant = await self._gate.party_entrant(message.token, message.language)
        else:
            assert message.hearing_id is not None and message.as_ is not None  # the model guarantees it
            hearing_id = message.hearing_id
            entrant = await self._gate.staff_entrant(hearing_id, message.as_, message.language)
        return await self._live.enter(hearing_id, entrant, self)
