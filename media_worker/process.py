"""The media worker's main: hearings' routers and recorders on their own event loop, driven over a channel.

Started by the control plane as ``python -m media_worker --fd N`` with one end of a socketpair
inherited as ``N``.  Requests are validated (:func:`media_worker.messages.parse_request`); a bad one
gets an ``error`` reply and the worker carries on.  The worker exits when the channel closes, or
when its control process dies (its parent changes; the channel's end of stream usually comes first):
it closes its hearings (recordings finalised as on a stop) and exits with status 0.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import logging
import os
import resource
import signal
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from media.aiortc_adapter import install_port_range
from media.contract import ConnectionState, LinkQuality, MediaSettings, TrackMapping
from media.errors import MediaError, MediaErrorCode
from media.router import Router
from media.stats import MediaStats
from recording.disk import InsufficientDiskSpaceError
from recording.recorder import HearingRecorder
from recording.recorder_types import RecorderEvent

from .channel import Channel, FrameError
from .messages import (
    InvalidMessage,
    Request,
    mapping_to_dict,
    parse_request,
    settings_from_dict,
    stats_to_dict,
)
from .sink import HearingSink

log = logging.getLogger(__name__)

LOAD_INTERVAL_S = 1.0
PARENT_CHECK_S = 0.5


@dataclass
class _Hearing:
    router: Router
    events: _Events
    sink: HearingSink
    ice_servers: list[dict[str, Any]]  # refreshed by each publish (short-lived TURN credentials)
    recorder: HearingRecorder | None = None


class _Events:
    """The router's notices for one hearing, sent to the control plane as events."""

    def __init__(self, channel: Channel, hearing_id: str) -> None:
        self._channel = channel
        self._hearing_id = hearing_id
        self.states: dict[str, ConnectionState] = {}  # the load report counts who is not closed

    async def subscriber_offer(self, participant_id: str, sdp: str, tracks: list[TrackMapping]) -> None:
        self._channel.send(
            {
                "type": "subscriber_offer",
                "hearing_id": self._hearing_id,
                "participant_id": participant_id,
                "sdp": sdp,
                "tracks": [mapping_to_dict(t) for t in tracks],
            }
        )

    def link_quality_changed(self, participant_id: str, quality: LinkQuality) -> None:
        self._channel.send(
            {
                "type": "link_quality",
                "hearing_id": self._hearing_id,
                "participant_id": participant_id,
                "quality": dataclasses.asdict(quality),
            }
        )

    def connection_state_changed(self, participant_id: str, state: ConnectionState) -> None:
        if state == "closed":
            self.states.pop(participant_id, None)
        else:
            self.states[participant_id] = state
        self._channel.send(
            {
                "type": "connection_state",
                "hearing_id": self._hearing_id,
                "participant_id": participant_id,
                "state": state,
            }
        )


def recorder_event_to_dict(event: RecorderEvent) -> dict[str, Any]:
    """A recorder notice as a ``recorder_event`` message field."""
    return {
        "type": event.type.value,
        "track": dataclasses.asdict(event.track) if event.track else None,
        "segment": dataclasses.asdict(event.segment) if event.segment else None,
        "reason": event.reason,
        "gap_start_s": event.gap_start_s,
        "gap_end_s": event.gap_end_s,
        "free_bytes": event.free_bytes,
        "details": event.details,
    }


class Worker:
    """Serves one control plane: opens, drives and closes hearings' routers and recorders."""

    def __init__(self, channel: Channel, parent_pid: int | None = None) -> None:
        self._channel = channel
        self._parent_pid = parent_pid  # the control process; None: not watched
        self._orphaned = False  # it died while the channel was still open
        self._media_stats = MediaStats()
        self._hearings: dict[str, _Hearing] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._handlers: dict[str, Callable[[Request], Awaitable[Any]]] = {
            "open": self._open,
            "publish": self._publish,
            "subscriber_answer": self._subscriber_answer,
            "set_muted": self._set_muted,
            "set_paused": self._set_paused,
            "set_video_priority": self._set_video_priority,
            "leave": self._leave,
            "stats": self._stats,
            "close": self._close,
            "recording_start": self._recording_start,
            "recording_pause": self._recording_pause,
            "recording_resume": self._recording_resume,
            "recording_stop": self._recording_stop,
            "ping": self._ping,
        }
        # Handled in arrival order on the reading loop: they are instant and their order matters.
        self._inline = {
            "open",
            "set_muted",
            "set_paused",
            "set_video_priority",
            "recording_pause",
            "recording_resume",
            "ping",
        }

    async def run(self) -> None:
        """Serve requests until the channel closes, then close every hearing."""
        self._channel.send({"type": "ready", "pid": os.getpid()})
        background = [asyncio.create_task(self._report_load())]
        if self._parent_pid is not None:
            background.append(asyncio.create_task(self._watch_parent(self._parent_pid)))
        try:
            while True:
                try:
                    message = await self._channel.receive()
                    request = parse_request(message)
                except EOFError:
                    break
                except FrameError as exc:
                    self._channel.send(
                        {"type": "error", "id": None, "code": "bad_message", "message": str(exc)}
                    )
                    continue
                except InvalidMessage as exc:
                    self._channel.send(
                        {"type": "error", "id": exc.request_id, "code": "bad_message", "message": str(exc)}
                    )
                    continue
                if request.type in self._inline:
                    await self._serve(request)
                else:
                    task = asyncio.create_task(self._serve(request))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
        finally:
            for task in background:
                task.cancel()
            await self._shut_down()

    async def _shut_down(self) -> None:
        """Cancel requests in progress and close every hearing; one log line says why."""
        if self._orphaned or self._hearings:
            log.warning(
                "%s: closing %d hearing(s) and exiting",
                "the control process died" if self._orphaned else "the channel to the control plane ended",
                len(self._hearings),
            )
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for hearing_id in list(self._hearings):
            try:
                await self._close_hearing(hearing_id)
            except Exception as exc:  # the others still close; the recording of this one is what was written
                log.warning("closing hearing %s failed: %s: %s", hearing_id, type(exc).__name__, exc)

    async def _watch_parent(self, parent_pid: int) -> None:
        """End the channel when the control process dies (it may die without the channel ending)."""
        while True:
            await asyncio.sleep(PARENT_CHECK_S)
            if os.getppid() != parent_pid:
                break
        self._orphaned = True
        await self._channel.close()  # the reading loop sees the end of the stream

    async def _serve(self, request: Request) -> None:
        try:
            result = await self._handlers[request.type](request)
        except MediaError as exc:
            self._reply_error(request.id, exc.code.value, exc.message)
        except InvalidMessage as exc:
            self._reply_error(request.id, "bad_message", str(exc))
        except InsufficientDiskSpaceError as exc:
            self._reply_error(request.id, "disk_space_low", str(exc))
        except OSError as exc:
            self._reply_error(request.id, "recording_unavailable", str(exc))
        except Exception as exc:  # a bug here must not take the other hearings down
            log.exception("request %s failed", request.type)
            self._reply_error(request.id, "internal", f"{type(exc).__name__}: {exc}")
        else:
            self._channel.send({"type": "reply", "id": request.id, "result": result})

    def _reply_error(self, request_id: int, code: str, message: str) -> None:
        self._channel.send({"type": "error", "id": request_id, "code": code, "message": message[:1000]})

    def _hearing(self, request: Request) -> _Hearing:
        hearing = self._hearings.get(request.fields["hearing_id"])
        if hearing is None:
            raise MediaError(MediaErrorCode.ROUTER_CLOSED, "no such hearing on this worker")
        return hearing

    # -- media -----------------------------------------------------------------------------------

    async def _open(self, request: Request) -> dict[str, Any]:
        hearing_id = request.fields["hearing_id"]
        if hearing_id in self._hearings:
            raise MediaError(MediaErrorCode.ROUTER_CLOSED, "the hearing is already open on this worker")
        servers = list(request.fields["settings"].get("ice_servers") or [])
        settings: MediaSettings = settings_from_dict(
            request.fields["settings"], lambda: list(hearing.ice_servers)
        )
        sink = HearingSink()
        events = _Events(self._channel, hearing_id)
        try:
            router = Router(settings, events, sink, self._media_stats)
        except (ValueError, TypeError) as exc:
            raise InvalidMessage(f"open: unusable settings: {exc}", request.id) from exc
        hearing = _Hearing(router, events, sink, servers)
        self._hearings[hearing_id] = hearing
        return {"pid": os.getpid()}

    async def _publish(self, request: Request) -> dict[str, Any]:
        if request.fields["ice_servers"] is not None:
            self._hearing(request).ice_servers = request.fields["ice_servers"]
        sdp = await self._hearing(request).router.publish(
            request.fields["participant_id"], request.fields["sdp"]
        )
        return {"sdp": sdp}

    async def _subscriber_answer(self, request: Request) -> None:
        await self._hearing(request).router.subscriber_answer(
            request.fields["participant_id"], request.fields["sdp"]
        )

    async def _set_muted(self, request: Request) -> None:
        f = request.fields
        self._hearing(request).router.set_muted(f["participant_id"], f["kind"], f["muted"])

    async def _set_paused(self, request: Request) -> None:
        self._hearing(request).router.set_paused(request.fields["paused"])

    async def _set_video_priority(self, request: Request) -> None:
        self._hearing(request).router.set_video_priority(request.fields["participant_id"] or None)

    async def _leave(self, request: Request) -> None:
        await self._hearing(request).router.leave(request.fields["participant_id"])

    async def _stats(self, request: Request) -> list[dict[str, Any]]:
        return [dataclasses.asdict(q) for q in await self._hearing(request).router.stats()]

    async def _close(self, request: Request) -> dict[str, Any]:
        return await self._close_hearing(request.fields["hearing_id"])

    async def _close_hearing(self, hearing_id: str) -> dict[str, Any]:
        hearing = self._hearings.pop(hearing_id, None)
        if hearing is None:
            return {}
        await hearing.router.close()
        return await self._stop_recorder(hearing)

    async def _ping(self, request: Request) -> dict[str, Any]:
        return {"pid": os.getpid(), "hearings": len(self._hearings)}

    # -- recording -------------------------------------------------------------------------------

    async def _recording_start(self, request: Request) -> dict[str, Any]:
        hearing = self._hearing(request)
        f = request.fields
        if hearing.recorder is not None:
            await self._stop_recorder(hearing)
        hearing_id = f["hearing_id"]
        recorder = HearingRecorder(
            Path(f["folder"]),
            hearing_id,
            on_event=lambda event: self._recorder_event(hearing_id, event),
            loop=asyncio.get_running_loop(),
            epoch=f["epoch"],
            min_free_bytes=f["min_free_bytes"],
            warn_free_bytes=f["warn_free_bytes"],
        )
        await asyncio.to_thread(recorder.start)
        if self._hearings.get(hearing_id) is not hearing:  # closed meanwhile
            await recorder.aclose()
            raise MediaError(MediaErrorCode.ROUTER_CLOSED, "the hearing closed")
        hearing.recorder = recorder
        hearing.sink.attach(recorder)
        return {"epoch": recorder.epoch}

    async def _recording_pause(self, request: Request) -> None:
        recorder = self._hearing(request).recorder
        if recorder is not None:
            recorder.pause()

    async def _recording_resume(self, request: Request) -> None:
        recorder = self._hearing(request).recorder
        if recorder is not None:
            recorder.resume()

    async def _recording_stop(self, request: Request) -> dict[str, Any]:
        return await self._stop_recorder(self._hearing(request))

    async def _stop_recorder(self, hearing: _Hearing) -> dict[str, Any]:
        recorder, hearing.recorder = hearing.recorder, None
        hearing.sink.attach(None)
        if recorder is None:
            return {}
        segments = await recorder.aclose()
        return {
            "segments": [dataclasses.asdict(s) for s in segments],
            "frames_written": recorder.frames_written,
            "frames_lost": recorder.frames_lost,
            "failure": recorder.failure,
        }

    def _recorder_event(self, hearing_id: str, event: RecorderEvent) -> None:
        self._channel.send(
            {"type": "recorder_event", "hearing_id": hearing_id, "event": recorder_event_to_dict(event)}
        )

    # -- load ------------------------------------------------------------------------------------

    async def _report_load(self) -> None:
        last_count, last_at = 0, time.monotonic()
        while True:
            await asyncio.sleep(LOAD_INTERVAL_S)
            count = self._media_stats.packets_out  # every router of this worker counts into it
            now = time.monotonic()
            usage = resource.getrusage(resource.RUSAGE_SELF)
            self._channel.send(
                {
                    "type": "load",
                    "hearings": len(self._hearings),
                    "participants": sum(len(h.events.states) for h in self._hearings.values()),
                    "forwarded_per_s": max(0.0, (count - last_count) / (now - last_at)),
                    "forwarded_total": count,
                    "cpu_seconds": usage.ru_utime + usage.ru_stime,
                    "media": stats_to_dict(self._media_stats),
                }
            )
            last_count, last_at = count, now


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


async def _serve(fd: int, parent_pid: int) -> None:
    channel = await Channel.open(socket.socket(fileno=fd))
    await Worker(channel, parent_pid).run()
    await channel.close()


def main(argv: list[str] | None = None) -> int:
    """Run a worker on the inherited channel ``--fd`` until the control plane closes it."""
    parser = argparse.ArgumentParser(prog="media_worker")
    parser.add_argument("--fd", type=int, required=True, help="the inherited channel socket")
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--ice-ports", metavar="MIN-MAX", help="bind ICE host candidates in this UDP range")
    args = parser.parse_args(argv)
    parent_pid = os.getppid()
    logging.basicConfig(
        level=args.log_level, format="media-worker %(process)d %(levelname)s %(name)s: %(message)s"
    )
    # The control plane stops workers by closing the channel; a terminal's Ctrl-C goes to it, not here;
    # SIGTERM too: a service manager signalling the whole group must not kill hearings before the
    # control plane has interrupted them (it then closes the channel, and the worker exits).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if args.ice_ports:
        low, _, high = args.ice_ports.partition("-")
        install_port_range(int(low), int(high))
    loop = _new_loop()
    # What is loaded by now (aiortc, PyAV, …) lives as long as the worker: a full collection that walked it
    # would pause every hearing's packets for a large fraction of a second.
    gc.collect()
    gc.freeze()
    try:
        loop.run_until_complete(_serve(args.fd, parent_pid))
    finally:
        loop.close()
    return 0
