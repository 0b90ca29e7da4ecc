"""A hearing's media on a worker process, driven through :class:`media.contract.MediaRouter`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from media.contract import ConnectionQuality, LinkQuality, MediaEvents, MediaSettings, TrackKind
from media.errors import MediaError, MediaErrorCode
from media_worker.messages import current_ice_servers, mapping_from_dict, quality_from_dict, settings_to_dict

from .worker import WorkerProcess

log = logging.getLogger(__name__)


class RemoteRouter:
    """Implements :class:`MediaRouter` by asking the worker that hosts the hearing.

    Instant commands (mute, pause) are posted without waiting, in order; the worker's notices come back
    to ``events``; recorder notices go to :attr:`recorder_events` (the hearing's remote recorder).
    """

    def __init__(
        self,
        worker: WorkerProcess,
        hearing_id: str,
        settings: MediaSettings,
        events: MediaEvents,
        on_closed: Callable[[RemoteRouter], None] | None = None,
    ) -> None:
        self.worker = worker
        self.hearing_id = hearing_id
        self.recorder_events: Callable[[dict[str, Any]], None] | None = None
        self.on_lost: list[Callable[[], None]] = []
        self._events = events
        self._settings = settings
        self._on_closed = on_closed
        self._lost = False
        self._closed = False
        self._tasks: set[asyncio.Task[None]] = set()
        worker.listeners[hearing_id] = self
        worker.post("open", hearing_id=hearing_id, settings=settings_to_dict(settings))

    @property
    def host(self) -> str:
        """The name of the worker hosting the hearing (shown in the console)."""
        return self.worker.name

    @property
    def lost(self) -> bool:
        """The hosting worker died."""
        return self._lost

    async def request(self, message_type: str, /, **fields: Any) -> Any:
        """A request about this hearing to its worker."""
        if self._lost:
            raise MediaError(MediaErrorCode.WORKER_LOST, "the media worker of this hearing stopped")
        return await self.worker.request(message_type, hearing_id=self.hearing_id, **fields)

    def post(self, message_type: str, /, **fields: Any) -> None:
        """A request about this hearing, not waited for."""
        if not self._lost:
            self.worker.post(message_type, hearing_id=self.hearing_id, **fields)

    async def publish(self, participant_id: str, offer_sdp: str) -> str:
        """Accept the participant's publish offer; return the answer."""
        self._check_open()
        servers = current_ice_servers(self._settings) if self._settings.ice_servers_source else None
        result = await self.request(
            "publish", participant_id=participant_id, sdp=offer_sdp, ice_servers=servers
        )
        return str(result["sdp"])

    async def subscriber_answer(self, participant_id: str, answer_sdp: str) -> None:
        """Complete the server-offered negotiation of the participant's subscribe connection."""
        self._check_open()
        await self.request("subscriber_answer", participant_id=participant_id, sdp=answer_sdp)

    def set_muted(self, participant_id: str, kind: TrackKind, muted: bool) -> None:
        """Stop (or restart) forwarding and recording the participant's audio or video."""
        if kind not in ("audio", "video"):
            raise MediaError(MediaErrorCode.MEDIA_UNSUPPORTED, f"unknown media kind {kind!r}")
        self.post("set_muted", participant_id=participant_id, kind=kind, muted=muted)

    def set_paused(self, paused: bool) -> None:
        """Recess: forward and record nothing while paused."""
        self.post("set_paused", paused=paused)

    def set_video_priority(self, participant_id: str | None) -> None:
        """Whose video a congested subscriber keeps longest (the courtroom's); None: nobody's."""
        self.post("set_video_priority", participant_id=participant_id or "")

    async def leave(self, participant_id: str) -> None:
        """Close the participant's connections."""
        if not self._closed:
            await self.request("leave", participant_id=participant_id)

    async def stats(self) -> list[ConnectionQuality]:
        """Current connection quality of every participant."""
        if self._closed or self._lost:
            return []
        return [quality_from_dict(item) for item in await self.request("stats")]

    async def close(self) -> None:
        """End the hearing's media on the worker (its recorder, if any, is stopped there too)."""
        if self._closed:
            return
        self._closed = True
        try:
            if not self._lost:
                await self.request("close")
        except MediaError:
            log.warning("media of hearing %s already gone", self.hearing_id)
        finally:
            if self.worker.listeners.get(self.hearing_id) is self:
                del self.worker.listeners[self.hearing_id]
            for task in list(self._tasks):
                task.cancel()
            if self._on_closed is not None:
                self._on_closed(self)

    def _check_open(self) -> None:
        if self._closed:
            raise MediaError(MediaErrorCode.ROUTER_CLOSED, "the hearing's media has ended")

    # -- from the worker -------------------------------------------------------------------------

    def worker_event(self, message: dict[str, Any]) -> None:
        """Deliver one of the worker's notices about this hearing."""
        kind = message.get("type")
        try:
            if kind == "subscriber_offer":
                tracks = [mapping_from_dict(t) for t in message["tracks"]]
                self._spawn(self._events.subscriber_offer(message["participant_id"], message["sdp"], tracks))
            elif kind == "connection_state":
                self._events.connection_state_changed(message["participant_id"], message["state"])
            elif kind == "link_quality":
                self._events.link_quality_changed(
                    message["participant_id"], LinkQuality(**message["quality"])
                )
            elif kind == "recorder_event" and self.recorder_events is not None:
                self.recorder_events(message["event"])
        except (KeyError, TypeError, ValueError):
            log.exception("malformed %s from media %s", kind, self.worker.name)

    def worker_lost(self) -> None:
        """The worker died: every later request fails with ``worker_lost``."""
        self._lost = True
        for callback in self.on_lost:
            callback()

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
