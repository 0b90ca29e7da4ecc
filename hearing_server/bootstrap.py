"""First start: when no account exists yet, an ``admin`` account with a random one-time password.

The one-time password expires (``first_password_hours``) and must be changed at the first login.  Should it
expire unused, the next start issues a new one, so a server is never left without a way in.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hearing_server.auth.passwords import Passwords
from hearing_server.auth.staff import end_sessions
from hearing_server.config import Config
from hearing_server.domain.party import StaffRole
from hearing_server.services.users import count_users, create_user
from hearing_server.store.db import create_engine, sessionmaker
from hearing_server.store.models import User

FIRST_ADMIN = "admin"
DEFAULT_LIFETIME = timedelta(hours=24)


def one_time_password() -> str:
    """16 URL-safe characters, 96 random bits."""
    return secrets.token_urlsafe(12)


async def ensure_first_admin(
    db: AsyncSession, passwords: Passwords, now: datetime, lifetime: timedelta = DEFAULT_LIFETIME
) -> str | None:
    """Create ``admin`` when there are no accounts, or renew its one-time password when that expired unused;
    returns the new password (never stored in clear), or None when nothing was done."""
    if not await count_users(db):
        password = one_time_password()
        await create_user(
            db,
            passwords,
            username=FIRST_ADMIN,
            role=StaffRole.ADMIN,
            password=password,
            display_name="Administrator",
            now=now,
            must_change_password=True,
            password_expires_at=now + lifetime,
        )
        return password
    admin = (await db.execute(select(User).where(User.username == FIRST_ADMIN))).scalar_one_or_none()
    expired = admin is not None and admin.password_expires_at is not None and admin.password_expires_at <= now
    if admin is None or not admin.must_change_password or not expired:
        return None
    password = one_time_password()
    admin.password_hash = await passwords.hash(password)
    admin.password_expires_at = now + lifetime
    await end_sessions(db, admin.id)
    return password


async def first_start(config: Config, passwords: Passwords | None = None) -> str | None:
    """Run :func:`ensure_first_admin` on the configured (already migrated) database."""
    engine = create_engine(config.effective_database_url)
    try:
        async with sessionmaker(engine)() as db, db.begin():
            return await ensure_first_admin(
                db,
                passwords or Passwords(),
                datetime.now(UTC),
                timedelta(hours=config.first_password_hours),
            )
    finally:
        await engine.dispose()
