"""One media worker process as the control plane sees it: started, asked, listened to, and noticed dying."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from media.errors import MediaError, MediaErrorCode
from media.stats import MediaStats
from media_worker.channel import Channel, FrameError
from media_worker.messages import stats_from_dict

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0


class WorkerError(Exception):
    """A request the worker refused with a code outside :class:`MediaErrorCode` (e.g. ``bad_message``)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class HearingListener(Protocol):
    """What receives a hosted hearing's events: the remote router."""

    def worker_event(self, message: dict[str, Any]) -> None:
        """A ``subscriber_offer``, ``connection_state`` or ``recorder_event`` of the hearing."""

    def worker_lost(self) -> None:
        """The worker died: the hearing's media and recording are gone."""


@dataclass
class WorkerLoad:
    """The latest load report of a worker."""

    hearings: int = 0
    participants: int = 0
    forwarded_per_s: float = 0.0  # RTP packets sent to subscribers per second
    forwarded_total: int = 0
    cpu_seconds: float = 0.0
    cpu_share: float = 0.0  # of one core, over the last report interval
    media: MediaStats = field(default_factory=MediaStats)  # counters and transit histogram since it started
    reported_at: float = 0.0  # time.monotonic()


class WorkerProcess:
    """A spawned ``python -m media_worker`` and its channel; ``index`` names its slot in the pool."""

    def __init__(
        self,
        index: int,
        on_exit: Callable[[WorkerProcess], None],
        log_level: str = "INFO",
        ice_ports: tuple[int, int] | None = None,
    ) -> None:
        self.index = index
        self.load = WorkerLoad()
        self.listeners: dict[str, HearingListener] = {}
        self.started_at = 0.0
        self._on_exit = on_exit
        self._log_level = log_level
        self._ice_ports = ice_ports
        self._process: asyncio.subprocess.Process | None = None
        self._channel: Channel | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._reader: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._alive = False
        self._stopping = False

    @property
    def name(self) -> str:
        """How the console and the metrics name the worker."""
        return f"worker-{self.index}"

    @property
    def pid(self) -> int | None:
        """The worker's process id while it runs."""
        return self._process.pid if self._process is not None else None

    @property
    def ready(self) -> bool:
        """The worker said it was ready (it started)."""
        return self._ready.is_set()

    @property
    def alive(self) -> bool:
        """Started and not (known to be) dead."""
        return self._alive

    async def start(self) -> None:
        """Spawn the process with one end of a private socketpair and wait for its ``ready``."""
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        arguments = ["--fd", str(child.fileno()), "--log-level", self._log_level]
        if self._ice_ports is not None:
            arguments += ["--ice-ports", f"{self._ice_ports[0]}-{self._ice_ports[1]}"]
        try:
            self._process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "media_worker", *arguments,
                pass_fds=[child.fileno()], stdin=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
        finally:
            child.close()
        self._channel = await Channel.open(parent)
        self._alive = True
        self.started_at = time.monotonic()
        self._reader = asyncio.create_task(self._read())
        try:
            async with asyncio.timeout(READY_TIMEOUT_S):
                await self._ready.wait()
        except TimeoutError:
            self.kill()
            raise
        log.info("media %s started (pid %s)", self.name, self.pid)

    async def request(self, message_type: str, /, **fields: Any) -> Any:
        """Send a request and wait for its reply.

        A refusal raises :class:`MediaError` (its codes) or :class:`WorkerError` (any other code).
        """
        return await self._send(message_type, fields)

    def post(self, message_type: str, /, **fields: Any) -> None:
        """Send a request now (in order with every other) without waiting for it; a refusal is logged."""
        if not self._alive:
            return
        try:
            future = self._send(message_type, fields)
        except MediaError as exc:
            log.warning("media %s: %s not sent: %s", self.name, message_type, exc)
            return
        future.add_done_callback(lambda f: self._log_refusal(message_type, f))

    def _send(self, message_type: str, fields: dict[str, Any]) -> asyncio.Future[Any]:
        """Write the request at once (requests reach the worker in call order); the future gets its reply."""
        if not self._alive or self._channel is None:
            raise MediaError(MediaErrorCode.WORKER_LOST, f"media {self.name} is not running")
        request_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        try:
            self._channel.send({**fields, "type": message_type, "id": request_id})
        except FrameError as exc:
            raise MediaError(MediaErrorCode.SDP_INVALID, str(exc)) from exc
        self._pending[request_id] = future
        return future

    def send_raw(self, data: bytes) -> None:
        """Write bytes as they are onto the channel (tests of the worker's input checking)."""
        assert self._channel is not None
        self._channel._writer.write(data)

    def _log_refusal(self, message_type: str, future: asyncio.Future[Any]) -> None:
        if not future.cancelled() and future.exception() is not None:
            log.warning("media %s refused %s: %s", self.name, message_type, future.exception())

    async def _read(self) -> None:
        assert self._channel is not None
        try:
            while True:
                try:
                    message = await self._channel.receive()
                except FrameError:
                    log.exception("unusable frame from media %s", self.name)
                    continue
                if isinstance(message, dict):
                    self._dispatch(message)
        except (EOFError, ConnectionError, OSError):
            pass
        finally:
            await self._exited()

    def _dispatch(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind in ("reply", "error"):
            future = self._pending.pop(message.get("id") or -1, None)
            if future is None:
                if kind == "error":
                    log.warning("media %s: %s", self.name, message.get("message"))
                return
            if future.done():
                return
            if kind == "reply":
                future.set_result(message.get("result"))
            else:
                code, text = str(message.get("code")), str(message.get("message"))
                if code in MediaErrorCode._value2member_map_:
                    future.set_exception(MediaError(code, text))
                else:
                    future.set_exception(WorkerError(code, text))
        elif kind == "load":
            self._update_load(message)
        elif kind == "ready":
            self._ready.set()
        else:
            listener = self.listeners.get(str(message.get("hearing_id")))
            if listener is not None:
                listener.worker_event(message)

    def _update_load(self, message: dict[str, Any]) -> None:
        now = time.monotonic()
        previous = self.load
        cpu = float(message.get("cpu_seconds", 0.0))
        span = now - previous.reported_at if previous.reported_at else 0.0
        self.load = WorkerLoad(
            hearings=int(message.get("hearings", 0)),
            participants=int(message.get("participants", 0)),
            forwarded_per_s=float(message.get("forwarded_per_s", 0.0)),
            forwarded_total=int(message.get("forwarded_total", 0)),
            cpu_seconds=cpu,
            cpu_share=max(0.0, (cpu - previous.cpu_seconds) / span) if span > 0 else 0.0,
            reported_at=now,
            media=stats_from_dict(media) if isinstance(media := message.get("media"), dict) else MediaStats(),
        )

    async def _exited(self) -> None:
        self._alive = False
        for future in self._pending.values():
            if not future.done():
                future.set_exception(MediaError(MediaErrorCode.WORKER_LOST, f"media {self.name} stopped"))
        self._pending.clear()
        listeners, self.listeners = self.listeners, {}
        for listener in listeners.values():
            try:
                listener.worker_lost()
            except Exception:
                log.exception("a hearing of media %s did not take the loss", self.name)
        if self._process is not None:
            await self._process.wait()
        if not self._stopping:
            log.error("media %s (pid %s) died with status %s", self.name, self.pid, self.returncode)
        self._on_exit(self)

    @property
    def returncode(self) -> int | None:
        """The exit status once the process has ended."""
        return self._process.returncode if self._process is not None else None

    async def stopped(self) -> None:
        """Wait until the process has ended and its loss was handled."""
        if self._reader is not None:
            await asyncio.shield(self._reader)

    def kill(self) -> None:
        """SIGKILL the process (a crash, as far as everyone else can tell)."""
        if self._process is not None and self._process.returncode is None:
            os.kill(self._process.pid, signal.SIGKILL)

    async def stop(self) -> None:
        """Close the channel (the worker closes its hearings and exits); SIGKILL if it lingers."""
        self._stopping = True
        if self._channel is not None:
            await self._channel.close()
        if self._process is not None:
            try:
                async with asyncio.timeout(STOP_TIMEOUT_S):
                    await self._process.wait()
            except TimeoutError:
                log.error("media %s did not stop; killing it", self.name)
                self.kill()
                await self._process.wait()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)
