"""The archive catalogue: which hearings are archived, and the words of their names for search.

A hearing enters the archive when it has ended; its parties and judge can no longer change then, so the
name words are written once.  :func:`catalogue_pending` catches up on hearings that ended since the last
search (the recorder may also call :func:`catalogue_hearing` right after sealing).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from archive.models import ArchiveRecord, NameWord
from hearing_server.domain.hearing import HearingStatus
from hearing_server.store.models import Hearing, Party

ARCHIVED = (HearingStatus.ENDED.value, HearingStatus.SEALED.value)
MAX_WORD = 100
MAX_WORDS_PER_NAME = 12
# Past every code point: ``word >= p AND word < p + TOP`` is "word starts with p" as an index range.
TOP = "\U0010ffff"
_SPLIT = re.compile(r"[\W_]+", re.UNICODE)


def name_words(name: str) -> list[str]:
    """The distinct words of a name, NFKC-normalised and case-folded (``Ахметов А.Б.`` → ахметов, а, б)."""
    text = unicodedata.normalize("NFKC", name).casefold()
    words = [w[:MAX_WORD] for w in _SPLIT.split(text) if w]
    return list(dict.fromkeys(words))[:MAX_WORDS_PER_NAME]


def word_rows(hearing_id: str, judge: str, parties: Iterable[tuple[str, str]]) -> list[dict[str, Any]]:
    """The name-word rows of one hearing: its judge's words and each ``(party id, name)``'s words."""
    rows = [
        {"hearing_id": hearing_id, "field": "judge", "owner_id": hearing_id, "word": w}
        for w in name_words(judge)
    ]
    for party_id, name in parties:
        rows += [
            {"hearing_id": hearing_id, "field": "party", "owner_id": party_id, "word": w}
            for w in name_words(name)
        ]
    return rows


async def catalogue_hearing(db: AsyncSession, hearing: Hearing, now: datetime) -> ArchiveRecord:
    """The hearing's archive record, made with its name words on first sight (in ``db``'s transaction)."""
    record = await db.get(ArchiveRecord, hearing.id)
    if record is not None:
        return record
    parties = (
        await db.execute(select(Party.id, Party.display_name).where(Party.hearing_id == hearing.id))
    ).all()
    record = ArchiveRecord(hearing_id=hearing.id, catalogued_at=now, hold_reason="", deletion_rule="")
    db.add(record)
    rows = word_rows(hearing.id, hearing.presiding_judge, [(p.id, p.display_name) for p in parties])
    if rows:
        await db.execute(insert(NameWord), rows)
    await db.flush()
    return record


async def _missing(db: AsyncSession, batch: int) -> list[Hearing]:
    rows = await db.execute(
        select(Hearing)
        .where(
            Hearing.status.in_(ARCHIVED),
            ~select(ArchiveRecord.hearing_id).where(ArchiveRecord.hearing_id == Hearing.id).exists(),
        )
        .limit(batch)
    )
    return list(rows.scalars())


async def catalogue_pending(
    sessions: async_sessionmaker[AsyncSession], now: datetime, batch: int = 500
) -> int:
    """Catalogue archived hearings that have no record yet; returns how many were added.

    Two index counts tell whether anything is missing, so a search over a caught-up archive pays
    only for them.  Safe to run concurrently: a hearing catalogued by someone else is skipped.
    """
    async with sessions() as db:
        archived = (
            await db.execute(select(func.count()).select_from(Hearing).where(Hearing.status.in_(ARCHIVED)))
        ).scalar_one()
        known = (await db.execute(select(func.count()).select_from(ArchiveRecord))).scalar_one()
    if known >= archived:
        return 0
    added = 0
    while True:
        async with sessions() as db:
            missing = await _missing(db, batch)
            try:
                for hearing in missing:
                    await catalogue_hearing(db, hearing, now)
                await db.commit()
                done = len(missing)
            except IntegrityError:
                await db.rollback()
                done = await _one_by_one(sessions, [h.id for h in missing], now)
        added += done
        if len(missing) < batch or done == 0:
            return added


async def _one_by_one(
    sessions: async_sessionmaker[AsyncSession], hearing_ids: list[str], now: datetime
) -> int:
    added = 0
    for hearing_id in hearing_ids:
        try:
            async with sessions() as db, db.begin():
                hearing = await db.get(Hearing, hearing_id)
                if hearing is not None and await db.get(ArchiveRecord, hearing_id) is None:
                    await catalogue_hearing(db, hearing, now)
                    added += 1
        except IntegrityError:
            continue  # catalogued meanwhile by a concurrent search
    return added
