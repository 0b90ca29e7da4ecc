"""A bare media worker process for tests that speak its channel directly."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from media_worker.channel import Channel


@dataclass
class BareWorker:
    """``python -m media_worker`` with the test holding the other end of its channel."""

    process: asyncio.subprocess.Process
    channel: Channel

    async def next_message(self, within: float = 10.0) -> Any:
        """The next message that is not a load report."""
        async with asyncio.timeout(within):
            while True:
                message = await self.channel.receive()
                if message.get("type") != "load":
                    return message
