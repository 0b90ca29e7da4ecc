"""Judges' own signing keys: stored wrapped under the judge's password, re-wrapped when it changes."""

from __future__ import annotations

import asyncio
from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from hearing_server.auth.judge_keys import CheckedKey, rewrap_key, wrap_key
from hearing_server.store.models import JudgeKey, User


async def get_key(db: AsyncSession, user_id: str) -> JudgeKey | None:
    """The signing key stored for ``user_id``, if any."""
    return await db.get(JudgeKey, user_id)


async def store_key(
    db: AsyncSession, user: User, checked: CheckedKey, password: str, *, uploaded_by: str, now: datetime
) -> JudgeKey:
    """Keep ``checked`` for ``user`` (replacing an earlier key), the key wrapped under ``password``."""
    wrapped = await asyncio.to_thread(wrap_key, checked.key_der, password, user.id)
    cert = checked.certificate
    row = await db.get(JudgeKey, user.id) or JudgeKey(user_id=user.id)
    row.wrapped_key = wrapped
    row.cert_pem = cert.cert_pem
    row.chain_pem = cert.chain_pem
    row.subject = cert.subject[:1000]
    row.common_name = cert.common_name[:500]
    row.issuer = cert.issuer[:1000]
    row.not_before = cert.not_before
    row.not_after = cert.not_after
    row.fingerprint_sha256 = cert.fingerprint_sha256
    row.uploaded_by = uploaded_by
    row.uploaded_at = now
    db.add(row)
    await db.flush()
    return row


async def rewrap(db: AsyncSession, user_id: str, old_password: str, new_password: str) -> bool:
    """Re-wrap the user's key (if any) from the old to the new password; whether there was one."""
    row = await db.get(JudgeKey, user_id)
    if row is None:
        return False
    row.wrapped_key = await asyncio.to_thread(
        rewrap_key, row.wrapped_key, old_password, new_password, user_id
    )
    await db.flush()
    return True


async def remove(db: AsyncSession, user_id: str) -> bool:
    """Forget the user's key; whether there was one."""
    result = await db.execute(delete(JudgeKey).where(JudgeKey.user_id == user_id))
    return bool(getattr(result, "rowcount", 0))
