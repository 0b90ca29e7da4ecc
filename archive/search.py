"""Archive search: ended and sealed hearings by case, date, court, courtroom, judge and party, in pages.

Every filter is an index range: case numbers and name words are compared by code point (a prefix
``p`` is the range ``[p, p + U+10FFFF)``), names through the catalogue's case-folded words.  Pages
come by offset (at most ``MAX_OFFSET``) or by keyset cursor (any depth, constant cost); matches are
counted up to :data:`COUNT_LIMIT`, beyond which the total says "more than".
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased, selectinload

from archive.catalogue import ARCHIVED, TOP, name_words
from archive.models import ArchiveRecord, NameWord
from archive.schemas import ArchiveSearchQuery
from hearing_server.domain.errors import InvalidInput
from hearing_server.store.models import Hearing

MAX_QUERY_WORDS = 6
COUNT_LIMIT = 10_000  # matches are counted up to here: a count costs at most this many rows
COMMON_WORD = 500  # name words are ranked by occurrences counted up to here; the rarest is looked up
PROBE_FROM = 1000  # with this many matches a page checks names per hearing instead of fetching them all


@dataclass(frozen=True)
class SearchResult:
    """One page of hearings, the total count and the cursor to the next page."""

    hearings: list[Hearing]
    deleted_at: dict[str, datetime]
    total: int  # at most COUNT_LIMIT
    total_exact: bool  # False: more than COUNT_LIMIT match
    next_cursor: str | None


def _words(text: str, what: str) -> list[str]:
    words = name_words(text)
    if not words:
        raise InvalidInput(f"{what} holds no letters or digits to search for", code="invalid_input")
    if len(words) > MAX_QUERY_WORDS:
        raise InvalidInput(f"{what}: at most {MAX_QUERY_WORDS} words", code="invalid_input")
    return words


def _word_range(word: Any, field: str, prefix: str) -> ColumnElement[bool]:
    return and_(word.field == field, word.word >= prefix, word.word < prefix + TOP)


def _same_owner(first: Any, field: str, words: list[str]) -> list[ColumnElement[bool]]:
    """For every further word: the same owner (party, or the judge) also has a word starting with it."""
    checks: list[ColumnElement[bool]] = []
    for prefix in words[1:]:
        other = aliased(NameWord)
        checks.append(
            select(other.id)
            .where(other.owner_id == first.owner_id, _word_range(other, field, prefix))
            .exists()
        )
    return checks


async def _occurrences(db: AsyncSession, field: str, prefix: str) -> int:
    """How many name words start with ``prefix``, counted up to :data:`COMMON_WORD`."""
    found = select(NameWord.id).where(_word_range(NameWord, field, prefix)).limit(COMMON_WORD).subquery()
    return int((await db.execute(select(func.count()).select_from(found))).scalar_one())


@dataclass(frozen=True)
class NameMatch:
    """Two equivalent forms of "one owner has a word starting with each of the words"."""

    looked_up: ColumnElement[bool]  # ``id IN`` the owners found from the rarest word: cost ~ its occurrences
    probed: ColumnElement[bool]  # checked per hearing as hearings are read: cost ~ hearings read


async def _name_match(db: AsyncSession, field: str, words: list[str]) -> NameMatch:
    counts = [await _occurrences(db, field, word) for word in words]
    words = [word for _, word in sorted(zip(counts, words, strict=True), key=lambda pair: pair[0])]
    first = aliased(NameWord)
    owners = select(first.hearing_id).where(
        _word_range(first, field, words[0]), *_same_owner(first, field, words)
    )
    probe = select(first.id).where(
        first.hearing_id == Hearing.id, _word_range(first, field, words[0]), *_same_owner(first, field, words)
    )
    return NameMatch(Hearing.id.in_(owners), probe.exists())


def _day_start(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


async def _conditions(
    db: AsyncSession, query: ArchiveSearchQuery, zone: ZoneInfo, dialect: str
) -> tuple[list[ColumnElement[bool]], list[NameMatch]]:
    """The filters on hearing columns, and the name filters (each in both of its forms)."""
    if query.date_from and query.date_to and query.date_to < query.date_from:
        raise InvalidInput("date_to is before date_from", code="end_before_start")
    conditions: list[ColumnElement[bool]] = [Hearing.status.in_(ARCHIVED)]
    if query.status is not None:
        conditions.append(Hearing.status == query.status)
    if not query.include_deleted:
        deleted = select(ArchiveRecord.hearing_id).where(ArchiveRecord.deleted_at.is_not(None))
        conditions.append(Hearing.id.not_in(deleted))
    if query.on_hold is not None:
        conditions.append(Hearing.legal_hold.is_(query.on_hold))
    if query.case_number is not None:
        conditions.append(Hearing.case_number == query.case_number)
    if query.case_number_prefix is not None:
        column: Any = Hearing.case_number.collate("C") if dialect == "postgresql" else Hearing.case_number
        prefix = query.case_number_prefix
        conditions += [column >= prefix, column < prefix + TOP]
    if query.court is not None:
        conditions.append(Hearing.court == query.court)
    if query.courtroom is not None:
        conditions.append(Hearing.courtroom == query.courtroom)
    if query.date_from is not None:
        conditions.append(Hearing.scheduled_start >= _day_start(query.date_from, zone))
    if query.date_to is not None:
        conditions.append(Hearing.scheduled_start < _day_start(query.date_to + timedelta(days=1), zone))
    names = []
    if query.judge is not None:
        names.append(await _name_match(db, "judge", _words(query.judge, "judge")))
    if query.party is not None:
        names.append(await _name_match(db, "party", _words(query.party, "party")))
    return conditions, names


def _sort_column(sort: str) -> Any:
    return Hearing.scheduled_start if sort.lstrip("-") == "scheduled_start" else Hearing.case_number


def encode_cursor(sort: str, hearing: Hearing) -> str:
    """An opaque cursor pointing just after ``hearing`` in ``sort`` order."""
    value = (
        hearing.scheduled_start.isoformat() if sort.lstrip("-") == "scheduled_start" else hearing.case_number
    )
    raw = json.dumps({"s": sort, "v": value, "id": hearing.id}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str, sort: str) -> tuple[Any, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
        if not isinstance(data, dict) or data.get("s") != sort:
            raise ValueError("cursor of another sort order")
        hearing_id, value = data["id"], data["v"]
        if not isinstance(hearing_id, str) or not isinstance(value, str) or len(hearing_id) > 36:
            raise ValueError("malformed cursor")
        if sort.lstrip("-") == "scheduled_start":
            moment = datetime.fromisoformat(value)
            if moment.tzinfo is None:
                raise ValueError("cursor time without offset")
            return moment, hearing_id
        return value, hearing_id
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidInput(
            "cursor is not a next_cursor of this search's sort order", code="invalid_cursor"
        ) from exc


def _after(sort: str, value: Any, hearing_id: str) -> ColumnElement[bool]:
    column = _sort_column(sort)
    if sort.startswith("-"):
        return or_(column < value, and_(column == value, Hearing.id < hearing_id))
    return or_(column > value, and_(column == value, Hearing.id > hearing_id))


async def search_hearings(db: AsyncSession, query: ArchiveSearchQuery, *, zone: ZoneInfo) -> SearchResult:
    """One page of archived hearings matching ``query`` (parties loaded), the total, and the next cursor."""
    dialect = db.get_bind().dialect.name
    if dialect == "postgresql":
        # asyncpg prepares statements; after five runs PostgreSQL may switch to a generic plan, which for
        # prefix ranges on name words is blind to how common the prefix is (measured: 0.2 s became 11 s).
        await db.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
    conditions, names = await _conditions(db, query, zone, dialect)
    matching = (
        select(Hearing.id).where(*conditions, *(n.looked_up for n in names)).limit(COUNT_LIMIT + 1).subquery()
    )
    total = (await db.execute(select(func.count()).select_from(matching))).scalar_one()
    # Many matches: check names per hearing in page order, stopping at the page's end.  Few: fetch them.
    name_filters = [n.probed if total >= PROBE_FROM else n.looked_up for n in names]
    page = select(Hearing).where(*conditions, *name_filters).options(selectinload(Hearing.parties))
    if query.cursor is not None:
        if query.offset:
            raise InvalidInput("give either cursor or offset", code="invalid_input")
        page = page.where(_after(query.sort, *_decode_cursor(query.cursor, query.sort)))
    column = _sort_column(query.sort)
    if query.sort.startswith("-"):
        page = page.order_by(column.desc(), Hearing.id.desc())
    else:
        page = page.order_by(column.asc(), Hearing.id.asc())
    hearings = list((await db.execute(page.limit(query.limit).offset(query.offset))).scalars())
    deleted: dict[str, datetime] = {}
    if query.include_deleted and hearings:
        rows = await db.execute(
            select(ArchiveRecord.hearing_id, ArchiveRecord.deleted_at).where(
                ArchiveRecord.hearing_id.in_([h.id for h in hearings]), ArchiveRecord.deleted_at.is_not(None)
            )
        )
        deleted = {row.hearing_id: row.deleted_at for row in rows}
    next_cursor = encode_cursor(query.sort, hearings[-1]) if len(hearings) == query.limit else None
    return SearchResult(hearings, deleted, min(int(total), COUNT_LIMIT), total <= COUNT_LIMIT, next_cursor)
