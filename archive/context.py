"""The archive's shared state and the helpers every archive endpoint uses."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from aiohttp import web
from cryptography import x509
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload

from archive.catalogue import ARCHIVED, catalogue_pending
from archive.storage import Storage
from hearing_server.config import Config
from hearing_server.domain.errors import HearingError, InvalidInput, NotFound
from hearing_server.domain.ids import is_valid_id
from hearing_server.store.models import Hearing

TAG = "archive"
BASE = "/api/v1/archive"
HEARING = BASE + "/hearings/{hearing_id}"
FILE = HEARING + "/files/{file_id}"
WRITE_TIMEOUT_S = 300.0
# A hearing that ended is found by party or judge name within this many seconds (or at once, when the
# sealer catalogues it).
CATALOGUE_EVERY_S = 5.0

log = logging.getLogger(__name__)
T = TypeVar("T")


class Gone(HearingError):
    """The hearing's files were deleted at the end of its retention period."""

    code = "hearing_deleted"
    status = 410


@dataclass
class Archive:
    """The archive's shared state: where files are, and when the catalogue last caught up."""

    storage: Storage
    catalogue_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    caught_up_at: float = -CATALOGUE_EVERY_S

    async def catch_up(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        """Catalogue newly archived hearings for name search, at most every few seconds."""
        async with self.catalogue_lock:
            if time.monotonic() - self.caught_up_at < CATALOGUE_EVERY_S:
                return
            await catalogue_pending(sessions, datetime.now(UTC))
            self.caught_up_at = time.monotonic()


ARCHIVE = web.AppKey("archive", Archive)


# -- helpers -----------------------------------------------------------------------------------


def trusted_certificate(config: Config) -> x509.Certificate | None:
    """The court certificate seals must be signed with (None when the server has none)."""
    path = config.court_cert_path
    try:
        return x509.load_pem_x509_certificate(path.read_bytes()) if path.exists() else None
    except ValueError:
        log.warning("the court certificate %s is unreadable; seals are checked without it", path)
        return None


def hearing_id_of(request: web.Request) -> str:
    """The hearing id in the request path; :class:`NotFound` if it cannot be one."""
    value = request.match_info.get("hearing_id", "")
    if not is_valid_id(value):
        raise NotFound("no such hearing", code="hearing_not_found")
    return value


async def archived_hearing(db: AsyncSession, hearing_id: str) -> Hearing:
    """An ended or sealed hearing with its parties; :class:`NotFound` for any other."""
    hearing = (
        await db.execute(
            select(Hearing).where(Hearing.id == hearing_id).options(selectinload(Hearing.parties))
        )
    ).scalar_one_or_none()
    if hearing is None or hearing.status not in ARCHIVED:
        raise NotFound("no such hearing in the archive", code="hearing_not_found")
    return hearing


def only_params(request: web.Request, allowed: set[str]) -> None:
    """Refuse query parameters other than ``allowed``, and repeated ones."""
    unknown = set(request.query) - allowed
    if unknown or len(request.query) != len(set(request.query)):
        raise InvalidInput(
            f"unknown or repeated query parameters: {sorted(unknown)[:5]}", code="invalid_input"
        )


async def in_thread(function: Callable[..., T], *args: Any) -> T:
    """Run a long blocking job on its own thread (not the shared pool that serves file chunks)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(value: Any, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)

    def run() -> None:
        try:
            value = function(*args)
        except BaseException as exc:  # handed to the awaiting coroutine
            loop.call_soon_threadsafe(settle, None, exc)
        else:
            loop.call_soon_threadsafe(settle, value, None)

    threading.Thread(target=run, name="archive-job", daemon=True).start()
    return await future


# Results recorded in the access audit for answers that are not errors of the request itself.
ANSWER_RESULT = {304: "not_modified", 412: "precondition_failed", 416: "range_not_satisfiable"}
