"""First start: when no account exists yet, an ``admin`` account with a random one-time password."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from hearing_server.auth.passwords import Passwords
from hearing_server.config import Config
from hearing_server.domain.party import StaffRole
from hearing_server.services.users import count_users, create_user
from hearing_server.store.db import create_engine, sessionmaker

FIRST_ADMIN = "admin"


async def ensure_first_admin(db: AsyncSession, passwords: Passwords, now: datetime) -> str | None:
    """Create ``admin`` when there are no accounts; returns its password (never stored in clear)."""
    if await count_users(db):
        return None
    password = secrets.token_urlsafe(12)  # 16 characters, 96 random bits
    await create_user(
        db,
        passwords,
        username=FIRST_ADMIN,
        role=StaffRole.ADMIN,
        password=password,
        display_name="Administrator",
        now=now,
    )
    return password


async def first_start(config: Config, passwords: Passwords | None = None) -> str | None:
    """Run :func:`ensure_first_admin` on the configured (already migrated) database."""
    engine = create_engine(config.effective_database_url)
    try:
        async with sessionmaker(engine)() as db, db.begin():
            return await ensure_first_admin(db, passwords or Passwords(), datetime.now(UTC))
    finally:
        await engine.dispose()
