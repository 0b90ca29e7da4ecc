"""The comparison server: aiortc's ``MediaRelay`` (decode once, re-encode per subscriber) behind ``/ws``.

This is how aiortc's own examples forward media, wrapped in just enough of our signaling
protocol for the same synthetic parties to use it unchanged.  Simplified on purpose: any
token is accepted (it becomes the participant id), the notice is confirmed but not
recorded, ``ready`` admits at once (no operator), there is no recording, and every
participant gets one ``subscribe_offer`` once all ``--participants`` have published (the
relay is not renegotiated as people come and go).  The relay itself is
:class:`benchmarks.relay_compare.RelayServer`.

    python -m benchmarks.relay_server --port 8080 --participants 4
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
from typing import Any

from aiohttp import web

from benchmarks.relay_compare import RelayServer

NOTICE = "This hearing is recorded (benchmark relay)."
RELAY = web.AppKey("relay", dict)


class Channel:
    """Carries the relay's subscribe offers to the participants' sockets."""

    def __init__(self) -> None:
        self.sockets: dict[str, web.WebSocketResponse] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def send(self, message: dict[str, Any]) -> None:
        ws = self.sockets.get(message.get("pid", ""))
        if ws is None or message.get("event") != "offer":
            return
        tracks = [
            {"mid": mid, "participant_id": owner, "kind": kind} for mid, owner, kind in message["tracks"]
        ]
        text = json.dumps({"type": "subscribe_offer", "sdp": message["sdp"], "tracks": tracks})
        task = asyncio.ensure_future(ws.send_str(text))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


async def websocket(request: web.Request) -> web.StreamResponse:
    """One participant: join, notice, ready, publish, then answers to the subscribe offer."""
    state = request.app[RELAY]
    relay: RelayServer = state["relay"]
    channel: Channel = state["channel"]
    ws = web.WebSocketResponse(max_msg_size=1 << 20)
    await ws.prepare(request)
    pid = ""

    async def send(message_type: str, **fields: Any) -> None:
        await ws.send_str(json.dumps({"type": message_type, **fields}))

    async for frame in ws:
        message = json.loads(frame.data)
        kind = message.get("type")
        if kind == "join":
            pid = message["token"]
            channel.sockets[pid] = ws
            sha = hashlib.sha256(NOTICE.encode()).hexdigest()
            notice = {"language": "en", "text": NOTICE, "sha256": sha, "languages": ["en"]}
            await send("hearing", you={"participant_id": pid, "state": "link_opened"}, notice=notice)
            await send("state", you={"participant_id": pid, "state": "link_opened"})
        elif kind == "confirm_notice":
            await send("state", you={"participant_id": pid, "state": "confirmed"})
        elif kind == "ready":
            await send("state", you={"participant_id": pid, "state": "in_hearing"})
        elif kind == "publish_offer":
            answer = await relay.publish(pid, message["sdp"])
            await send("publish_answer", sdp=answer)
            state["published"].add(pid)
            if len(state["published"]) == state["participants"] and not state["offered"]:
                state["offered"] = True
                await relay.subscribe_all()
        elif kind == "subscribe_answer":
            await relay.answer(pid, message["sdp"])
    return ws


async def healthz(_request: web.Request) -> web.StreamResponse:
    return web.json_response({"status": "ok"})


def create_app(participants: int) -> web.Application:
    """The relay application for a hearing of ``participants`` publishers."""
    app = web.Application()
    channel = Channel()
    app[RELAY] = {
        "relay": RelayServer(channel),  # type: ignore[arg-type]
        "channel": channel,
        "participants": participants,
        "published": set(),
        "offered": False,
    }

    async def close(app: web.Application) -> None:
        await app[RELAY]["relay"].close()

    app.on_shutdown.append(close)
    app.router.add_get("/ws", websocket)
    app.router.add_get("/healthz", healthz)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--participants", type=int, required=True)
    args = parser.parse_args()
    web.run_app(create_app(args.participants), host=args.host, port=args.port, print=None)


if __name__ == "__main__":
    main()
