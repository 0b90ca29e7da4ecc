"""Helpers of the cluster tests."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hearing_server.store.models import Hearing


async def add_hearings(
    sessions: async_sessionmaker[AsyncSession], count: int, status: str = "open"
) -> list[str]:
    """Insert ``count`` hearings with ``status``; return their ids."""
    now = datetime.now(UTC)
    hearings = [
        Hearing(
            court="Development Court",
            courtroom="1",
            case_number=f"2-{i}/2026",
            title=f"Hearing {i}",
            scheduled_start=now,
            duration_minutes=40,
            presiding_judge="Judge",
            notice_language="kk",
            status=status,
            created_at=now,
            updated_at=now,
            legal_hold=False,
        )
        for i in range(count)
    ]
    async with sessions.begin() as session:
        session.add_all(hearings)
    return [h.id for h in hearings]
