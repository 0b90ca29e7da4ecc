"""A media worker refuses malformed and oversized control messages with an error reply and keeps running."""

from __future__ import annotations

import asyncio
import json
import struct
from typing import Any

import pytest
from worker_harness import BareWorker

from hearing_server.media_workers.remote_router import RemoteRouter
from hearing_server.media_workers.worker import WorkerProcess
from media.contract import MediaSettings
from media.errors import MediaError, MediaErrorCode
from media_worker.messages import MAX_FRAME_BYTES


def _frame(body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + body


async def _alive(worker: BareWorker, request_id: int) -> None:
    worker.channel.send({"type": "ping", "id": request_id})
    reply = await worker.next_message()
    assert reply == {"type": "reply", "id": request_id, "result": {"pid": worker.process.pid, "hearings": 0}}
    assert worker.process.returncode is None


async def test_malformed_messages_get_error_replies_and_the_worker_keeps_running(
    bare_worker: BareWorker,
) -> None:
    worker = bare_worker
    writer = worker.channel._writer
    hostile: list[tuple[bytes, int | None, str]] = [
        (_frame(b"\xff\xfe not json"), None, "not JSON"),
        (_frame(b"[1, 2, 3]"), None, "JSON object"),
        (_frame(json.dumps({"type": "ping"}).encode()), None, "integer id"),
        (_frame(json.dumps({"type": "format_disk", "id": 7}).encode()), 7, "unknown request type"),
        (_frame(json.dumps({"type": "publish", "id": 8, "hearing_id": "h"}).encode()), 8, "'participant_id'"),
        (
            _frame(json.dumps({"type": "set_paused", "id": 9, "hearing_id": "h", "paused": "yes"}).encode()),
            9,
            "'paused'",
        ),
        (
            _frame(
                json.dumps(
                    {"type": "open", "id": 10, "hearing_id": "h", "settings": {"video_codec": 5, "x": 1}}
                ).encode()
            ),
            10,
            "unusable settings",
        ),
        (
            _frame(
                json.dumps(
                    {"type": "publish", "id": 11, "hearing_id": "nope", "participant_id": "p", "sdp": "v=0"}
                ).encode()
            ),
            11,
            "no such hearing",
        ),  # fmt: skip
    ]
    for index, (data, request_id, says) in enumerate(hostile):
        writer.write(data)
        reply = await worker.next_message()
        assert reply["type"] == "error", reply
        assert reply["id"] == request_id, reply
        assert says in reply["message"], reply
        await _alive(worker, 100 + index)


async def test_an_oversized_frame_is_skipped_unread_and_refused(bare_worker: BareWorker) -> None:
    worker = bare_worker
    body = b"x" * (MAX_FRAME_BYTES + 1)
    worker.channel._writer.write(_frame(body))
    reply = await worker.next_message()
    assert reply["type"] == "error" and reply["code"] == "bad_message"
    assert "exceeds" in reply["message"]
    # the stream is still in step: the next frame is read as a frame
    await _alive(worker, 1)


class _Events:
    """MediaEvents that keep what they are told."""

    def __init__(self) -> None:
        self.states: list[tuple[str, str]] = []

    async def subscriber_offer(self, participant_id: str, sdp: str, tracks: list[Any]) -> None:
        pass

    def connection_state_changed(self, participant_id: str, state: str) -> None:
        self.states.append((participant_id, state))


async def test_requests_reach_the_worker_in_call_order_and_a_dead_worker_fails_them() -> None:
    exits: list[WorkerProcess] = []
    worker = WorkerProcess(0, exits.append)
    await worker.start()
    try:
        router = RemoteRouter(worker, "hearing-1", MediaSettings(), _Events())  # posts "open"
        router.set_paused(True)  # posted: must not overtake "open"
        router.set_muted("p", "audio", True)
        assert await router.stats() == []  # would be "no such hearing" had anything overtaken "open"
        assert worker.alive and router.host == "worker-0"
        worker.kill()
        with pytest.raises(MediaError) as refused:
            while True:  # until the loss is noticed (EOF on the channel)
                await router.stats()
                await asyncio.sleep(0.05)
        assert refused.value.code in (MediaErrorCode.WORKER_LOST,)
        assert router.lost
        await asyncio.wait_for(worker.stopped(), 5)
        assert exits == [worker] and worker.returncode == -9
        await router.close()  # nothing to ask a dead worker: returns at once
    finally:
        await worker.stop()
