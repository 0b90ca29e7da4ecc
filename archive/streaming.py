"""Sending a stored file over HTTP with ranges, validators and a known length, read in chunks off the loop.

A seek goes straight to the requested offset: the last minute of a three-hour recording costs one
``seek`` and the bytes sent, never a read from the start.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import BinaryIO
from urllib.parse import quote

from aiohttp import web

from archive.ranges import (
    ByteRange,
    RangeAnswer,
    if_match_fails,
    if_none_match_holds,
    if_range_holds,
    parse_range,
)
from archive.storage import ObjectInfo, ObjectMissing, Storage, StorageError
from hearing_server.api.errors import error_response
from hearing_server.domain.errors import NotFound

CHUNK = 256 * 1024

# Called once the answer is decided and before any byte is sent (the access audit records it there).
OnAnswer = Callable[[int, str], Awaitable[None]]


@dataclass(frozen=True)
class Download:
    """What to send: a stored object, how to label it, and how many of its bytes exist."""

    key: str
    content_type: str
    filename: str
    attachment: bool = False
    length: int | None = None  # send only the first ``length`` bytes (a snapshot of a growing file)


def content_disposition(filename: str, *, attachment: bool) -> str:
    """``inline``/``attachment`` with an ASCII fallback name and the exact UTF-8 name (RFC 6266)."""
    fallback = "".join(ch if 32 < ord(ch) < 127 and ch not in '"\\;%' else "_" for ch in filename) or "file"
    kind = "attachment" if attachment else "inline"
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def _read_at(reader: BinaryIO, offset: int, count: int) -> bytes:
    reader.seek(offset)
    return reader.read(count)


async def _send_range(response: web.StreamResponse, reader: BinaryIO, part: ByteRange) -> None:
    offset, remaining = part.start, part.length
    while remaining > 0:
        chunk = await asyncio.to_thread(_read_at, reader, offset, min(CHUNK, remaining))
        if not chunk:
            raise OSError("the file became shorter while it was being sent")
        await response.write(chunk)
        offset += len(chunk)
        remaining -= len(chunk)


def _multipart_heads(parts: list[ByteRange], content_type: str, size: int, boundary: str) -> list[bytes]:
    heads = []
    for index, part in enumerate(parts):
        lead = "" if index == 0 else "\r\n"
        heads.append(
            f"{lead}--{boundary}\r\nContent-Type: {content_type}\r\n"
            f"Content-Range: {part.content_range(size)}\r\n\r\n".encode("latin-1")
        )
    return heads


async def send_object(
    request: web.Request, storage: Storage, download: Download, on_answer: OnAnswer | None = None
) -> web.StreamResponse:
    """Answer ``request`` with the object: 200, 206 (one range or multipart), 304, 412 or 416."""
    try:
        info: ObjectInfo = await asyncio.to_thread(storage.stat, download.key)
    except ObjectMissing as exc:
        raise NotFound("the file is missing from the archive storage", code="file_missing") from exc
    except StorageError as exc:
        raise NotFound("the file cannot be served from the archive storage", code="file_missing") from exc
    size = info.size if download.length is None else min(download.length, info.size)
    etag = info.etag if download.length is None else f'"{info.mtime_ns:x}-{size:x}"'
    last_modified = datetime.fromtimestamp(info.mtime_ns / 1e9, UTC)
    headers = {
        "ETag": etag,
        "Accept-Ranges": "bytes",
        "Cache-Control": "private, no-store",
        "Content-Disposition": content_disposition(download.filename, attachment=download.attachment),
    }

    async def answered(status: int, detail: str) -> None:
        if on_answer is not None:
            await on_answer(status, detail)

    if if_match_fails(request.headers.get("If-Match"), etag):
        await answered(412, "If-Match failed")
        failed = error_response(412, "precondition_failed", "the file changed (If-Match)")
        failed.headers["ETag"] = etag
        return failed
    if if_none_match_holds(request.headers.get("If-None-Match"), etag):
        await answered(304, "not modified")
        return web.Response(status=304, headers={"ETag": etag, "Cache-Control": headers["Cache-Control"]})

    answer: RangeAnswer = RangeAnswer.FULL
    parts: list[ByteRange] = []
    range_header = request.headers.get("Range")
    if request.method in ("GET", "HEAD") and if_range_holds(
        request.headers.get("If-Range"), etag, last_modified
    ):
        answer, parts = parse_range(range_header, size)
    if answer is RangeAnswer.UNSATISFIABLE:
        await answered(416, f"range {range_header!r} of {size} bytes")
        refused = error_response(416, "range_not_satisfiable", f"the file has {size} bytes")
        refused.headers.update({"Content-Range": f"bytes */{size}", "Accept-Ranges": "bytes", "ETag": etag})
        return refused
    if answer is RangeAnswer.FULL:
        parts = [ByteRange(0, size - 1)] if size else []

    response = web.StreamResponse(status=200 if answer is RangeAnswer.FULL else 206, headers=headers)
    # Truncated, not rounded up as aiohttp does, so that an If-Range date compares exactly.
    response.headers["Last-Modified"] = format_datetime(last_modified.replace(microsecond=0), usegmt=True)
    heads: list[bytes] = []
    tail = b""
    if answer is RangeAnswer.PARTIAL and len(parts) > 1:
        boundary = secrets.token_hex(16)
        heads = _multipart_heads(parts, download.content_type, size, boundary)
        tail = f"\r\n--{boundary}--\r\n".encode("latin-1")
        response.headers["Content-Type"] = f"multipart/byteranges; boundary={boundary}"
        response.content_length = sum(len(h) for h in heads) + sum(p.length for p in parts) + len(tail)
    else:
        response.headers["Content-Type"] = download.content_type
        response.content_length = sum(p.length for p in parts)
        if answer is RangeAnswer.PARTIAL:
            response.headers["Content-Range"] = parts[0].content_range(size)
    await answered(response.status, ", ".join(f"{p.start}-{p.end}" for p in parts) if parts else "empty")
    await response.prepare(request)
    if request.method == "HEAD" or not parts:
        await response.write_eof()
        return response
    reader = await asyncio.to_thread(storage.open, download.key)
    try:
        for index, part in enumerate(parts):
            if heads:
                await response.write(heads[index])
            await _send_range(response, reader, part)
        if heads:
            await response.write(tail)
        await response.write_eof()
    except ConnectionResetError:
        pass  # the player went away (seeking elsewhere, or closed): nothing left to do
    finally:
        await asyncio.to_thread(reader.close)
    return response
