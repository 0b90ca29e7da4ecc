"""A media worker refuses malformed and oversized control messages with an error reply and keeps running."""

from __future__ import annotations

import json
import struct

from worker_harness import BareWorker

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
            "",
        ),  # fmt: skip
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
