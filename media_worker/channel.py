"""The private channel between the control plane and one media worker: length-prefixed JSON frames.

A frame is a 4-byte big-endian length and that many bytes of UTF-8 JSON.  Frames above
:data:`media_worker.messages.MAX_FRAME_BYTES` are skipped unread and reported, so one hostile or
broken frame never desynchronises the stream.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
from typing import Any

from .messages import MAX_FRAME_BYTES

_HEADER = struct.Struct(">I")


class FrameError(Exception):
    """A frame that cannot be used (too large or not JSON); the channel stays usable."""


class Channel:
    """Sends and receives JSON messages over one stream socket (one end of a socketpair).

    Once the other end has gone (end of stream, or the socket closed here), sending drops messages:
    nobody is left to read them.
    """

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, max_bytes: int = MAX_FRAME_BYTES
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._max_bytes = max_bytes
        self._ended = False

    @property
    def ended(self) -> bool:
        """The other end closed the channel, or it was closed here."""
        return self._ended or self._writer.is_closing()

    @classmethod
    async def open(cls, sock: socket.socket, max_bytes: int = MAX_FRAME_BYTES) -> Channel:
        """Wrap a connected stream socket on the running loop."""
        reader, writer = await asyncio.open_unix_connection(sock=sock, limit=max_bytes + _HEADER.size)
        return cls(reader, writer, max_bytes)

    def send(self, message: dict[str, Any]) -> None:
        """Queue one message (never blocks; the socket buffer drains on the loop)."""
        body = json.dumps(message, separators=(",", ":")).encode()
        if len(body) > self._max_bytes:
            raise FrameError(f"message of {len(body)} bytes exceeds the {self._max_bytes}-byte cap")
        if self.ended:
            return
        self._writer.write(_HEADER.pack(len(body)) + body)

    async def receive(self) -> Any:
        """The next message; raises :class:`FrameError` for an unusable frame, EOFError at the end."""
        try:
            header = await self._reader.readexactly(_HEADER.size)
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            self._ended = True
            raise EOFError("channel closed") from exc
        (length,) = _HEADER.unpack(header)
        if length > self._max_bytes:
            await self._skip(length)
            raise FrameError(f"frame of {length} bytes exceeds the {self._max_bytes}-byte cap")
        try:
            body = await self._reader.readexactly(length)
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            self._ended = True
            raise EOFError("channel closed mid-frame") from exc
        try:
            return json.loads(body)
        except (UnicodeDecodeError, ValueError) as exc:
            raise FrameError(f"frame is not JSON: {exc}") from exc

    async def _skip(self, length: int) -> None:
        while length > 0:
            chunk = await self._reader.read(min(length, 1 << 16))
            if not chunk:
                self._ended = True
                raise EOFError("channel closed mid-frame")
            length -= len(chunk)

    async def close(self) -> None:
        """Close the socket."""
        self._ended = True
        self._writer.close()
        try:
            await self._writer.wait_closed()
        except (ConnectionError, OSError):
            pass
