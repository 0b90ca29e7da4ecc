"""Shortcuts for the notification tests: issuing by a channel, waiting for queue states, reading the log."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from api_harness import Api, Who
from sqlalchemy import select

from hearing_server.config import CONFIG
from hearing_server.record.event_log import EVENTS
from hearing_server.store.models import Notification
from recording.confirmation_log import LOG_FILE_NAME
from recording.hashchain import read_chain, verify_chain

StartApi = Callable[..., Awaitable[Api]]
"""Starts the app with configuration overrides (the ``start_api`` fixture)."""


async def issue_by(
    api: Api, who: Who, hearing_id: str, party_id: str, channel: str, to: str | None = None
) -> dict[str, Any]:
    """Issue a link sent by ``channel``; the 201 answer."""
    body: dict[str, Any] = {"channel": channel}
    if to is not None:
        body["to"] = to
    result = await api.call(
        "POST", f"/api/v1/hearings/{hearing_id}/parties/{party_id}/invitation", who, json=body
    )
    assert result.status == 201, result.json
    return dict(result.json)


async def rows(api: Api, hearing_id: str | None = None) -> list[Notification]:
    """The queue's rows (of one hearing), oldest first."""
    async with api.db() as db:
        query = select(Notification).order_by(Notification.created_at, Notification.next_attempt_at)
        if hearing_id is not None:
            query = query.where(Notification.hearing_id == hearing_id)
        return list((await db.execute(query)).scalars())


async def wait_rows(
    api: Api, predicate: Any, hearing_id: str | None = None, within_s: float = 15.0
) -> list[Notification]:
    """Wait until ``predicate(rows)`` holds; the rows."""
    async with asyncio.timeout(within_s):
        while True:
            found = await rows(api, hearing_id)
            if predicate(found):
                return found
            await asyncio.sleep(0.05)


async def log_entries(api: Api, hearing_id: str, *events: str) -> list[dict[str, Any]]:
    """The hearing's log entries (from the file, its chain verified), optionally only ``events``."""
    folder = await api.app[EVENTS].folder(hearing_id)
    assert verify_chain(folder / LOG_FILE_NAME).valid
    entries = read_chain(folder / LOG_FILE_NAME)
    return [e for e in entries if not events or e["event"] in events]


def time_zone(api: Api) -> str:
    """The court's time zone in the running app."""
    return api.app[CONFIG].timezone
