"""Archive benchmark: search latency over 100,000 generated hearings (SQLite and PostgreSQL) and the time
to first byte of a range request at the end of a 1 GB file — all through the real HTTP server.

    .venv/bin/python benchmarks/archive_bench.py                      # SQLite only
    .venv/bin/python benchmarks/archive_bench.py --pg-url 'postgresql+asyncpg:///bench?host=/var/run/postgresql'

The PostgreSQL database is emptied first.  Rows are bulk-inserted (executemany on SQLite, COPY on
PostgreSQL) with the catalogue's own name words, as the archive writes them.  Every search is a real
``GET /api/v1/archive/hearings`` with a staff session over loopback, so each figure includes routing,
the role check, the query, JSON and the fsynced access-audit entry.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp  # noqa: E402
from aiohttp import web  # noqa: E402
from sqlalchemy import text  # noqa: E402
from sqlalchemy.dialects import sqlite as sqlite_dialect  # noqa: E402

from archive.catalogue import word_rows  # noqa: E402
from archive.models import ArchiveRecord, NameWord  # noqa: E402
from archive.routes import setup as archive_setup  # noqa: E402
from hearing_server.auth.staff import SESSION_COOKIE, new_session  # noqa: E402
from hearing_server.config import Config, load_config  # noqa: E402
from hearing_server.domain.events import EventType
from hearing_server.domain.ids import new_id  # noqa: E402
from hearing_server.record.sealer import Sealer  # noqa: E402
from hearing_server.store.db import (  # noqa: E402
    SESSIONS,  # noqa: E402
    create_engine,
    upgrade_sync,
)
from hearing_server.store.models import Hearing, Party, User  # noqa: E402
from hearing_server.web.app import create_app  # noqa: E402
from recording.confirmation_log import ConfirmationLog  # noqa: E402
from recording.seal import generate_court_certificate, seal_hearing  # noqa: E402

COURTS = [f"{city} городской суд" for city in ("Алматинский", "Астанинский", "Шымкентский", "Карагандинский")]
SURNAMES = [
    "Иванов", "Петров", "Сидоров", "Смирнов", "Кузнецов", "Попов", "Соколов", "Лебедев", "Козлов", "Новиков",
    "Ахметов", "Сейткали", "Нурланов", "Жумабаев", "Касымов", "Омаров", "Султанов", "Абдрахманов", "Бекова",
    "Ким", "Пак", "Цой", "Тен", "Ли", "Мухамедиев", "Ержанов", "Калиев", "Досанов", "Турсынбек", "Есенова",
]  # fmt: skip
GIVEN = ["Айгуль", "Болат", "Мария", "Иван", "Сергей", "Асель", "Ерлан", "Дана", "Нурлан", "Елена", "Олег"]
ROLES = ["plaintiff", "defendant", "lawyer", "witness", "prosecutor", "victim"]
BATCH = 5000
ONE_GB = 1 << 30


def person(rng: random.Random) -> str:
    """A name like ``Иванов Сергей`` with some variety."""
    surname = rng.choice(SURNAMES) + (rng.choice(["", "", "а"]) if rng.random() < 0.5 else "")
    return f"{surname} {rng.choice(GIVEN)}"


def generate(
    count: int, seed: int = 7
) -> Iterator[tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]]:  # noqa: E501
    """Batches of (hearings, parties, archive records, name words), reproducible from ``seed``."""
    rng = random.Random(seed)
    judges = [person(rng) for _ in range(300)]
    start0 = datetime(2016, 1, 1, 3, 0, tzinfo=UTC)
    now = datetime.now(UTC)
    for first in range(0, count, BATCH):
        hearings, parties, records, words = [], [], [], []
        for i in range(first, min(first + BATCH, count)):
            hid = new_id()
            court = COURTS[i % len(COURTS)]
            start = start0 + timedelta(minutes=rng.randrange(0, 10 * 365 * 24 * 60 // 30) * 30)
            sealed = rng.random() < 0.9
            judge = rng.choice(judges)
            hearings.append(
                {
                    "id": hid,
                    "court": court,
                    "courtroom": f"Зал {rng.randint(1, 12)}",
                    "case_number": f"{rng.randint(1, 5)}-{rng.randint(1, 30000)}/{start.year}",
                    "title": "Дело",
                    "scheduled_start": start,
                    "duration_minutes": 60,
                    "presiding_judge": judge,
                    "notice_language": "ru",
                    "status": "sealed" if sealed else "ended",
                    "created_by": None,
                    "created_at": start,
                    "updated_at": start,
                    "started_at": start,
                    "ended_at": start + timedelta(minutes=55),
                    "sealed_at": start + timedelta(hours=1) if sealed else None,
                    "recording_path": None,
                    "legal_hold": rng.random() < 0.02,
                }
            )
            people = [(new_id(), rng.choice(ROLES), person(rng)) for _ in range(rng.randint(2, 5))]
            parties += [
                {
                    "id": pid,
                    "hearing_id": hid,
                    "role": role,
                    "display_name": name,
                    "language": "ru",
                    "contact": "",
                    "state": "left",
                    "created_at": start,
                }
                for pid, role, name in people
            ]
            records.append(
                {
                    "hearing_id": hid,
                    "catalogued_at": now,
                    "hold_reason": "",
                    "hold_changed_by": None,
                    "hold_changed_at": None,
                    "verified_at": None,
                    "verified_valid": None,
                    "verification": None,
                    "deleted_at": now if rng.random() < 0.005 else None,
                    "deletion_rule": "",
                    "deletion_record": None,
                }
            )
            words += word_rows(hid, judge, [(pid, name) for pid, _, name in people])
        yield hearings, parties, records, words


def _sqlite_rows(table: Any, rows: list[dict[str, Any]]) -> tuple[str, list[tuple[Any, ...]]]:
    dialect = sqlite_dialect.dialect()
    columns = [c for c in table.columns if c.name in rows[0]]
    processors = [c.type.dialect_impl(dialect).bind_processor(dialect) for c in columns]
    names = ", ".join(c.name for c in columns)
    sql = f"INSERT INTO {table.name} ({names}) VALUES ({', '.join('?' for _ in columns)})"
    data = [
        tuple(p(row[c.name]) if p else row[c.name] for c, p in zip(columns, processors, strict=True))
        for row in rows
    ]
    return sql, data


def fill_sqlite(path: Path, count: int) -> float:
    """Insert ``count`` hearings into the SQLite file; returns seconds taken."""
    started = time.perf_counter()
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    for batch in generate(count):
        for table, rows in zip(
            (Hearing.__table__, Party.__table__, ArchiveRecord.__table__, NameWord.__table__),
            batch,
            strict=True,
        ):
            db.executemany(*_sqlite_rows(table, rows))
        db.commit()
    db.execute("ANALYZE")
    db.commit()
    db.close()
    return time.perf_counter() - started


async def fill_postgres(url: str, count: int) -> float:
    """Insert ``count`` hearings into PostgreSQL with COPY; returns seconds taken."""
    import asyncpg

    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        await conn.execute(text("CREATE SCHEMA public"))
    await engine.dispose()
    await asyncio.to_thread(upgrade_sync, url)
    started = time.perf_counter()
    dsn = url.replace("postgresql+asyncpg", "postgresql")
    conn = await asyncpg.connect(dsn)
    try:
        for batch in generate(count):
            for table, rows in zip(
                ("hearings", "parties", "archive_records", "archive_name_words"), batch, strict=True
            ):
                columns = list(rows[0])
                if table == "archive_records":
                    rows = [{**r, "verification": None} for r in rows]
                await conn.copy_records_to_table(
                    table, records=[tuple(r[c] for c in columns) for r in rows], columns=columns
                )
        await conn.execute("VACUUM ANALYZE")  # the steady state autovacuum reaches (statistics, visibility)
    finally:
        await conn.close()
    return time.perf_counter() - started


async def add_admin(app: web.Application) -> str:
    """An archivist account and session; returns the cookie value."""
    now = datetime.now(UTC)
    async with app[SESSIONS]() as db, db.begin():
        user = User(
            username=f"bench-{new_id()[:8]}",
            display_name="Bench",
            role="archivist",
            password_hash="x",
            disabled=False,
            created_at=now,
        )
        db.add(user)
        await db.flush()
        token, row = new_session(
            user, ip="127.0.0.1", user_agent="bench", now=now, lifetime=timedelta(hours=2)
        )
        db.add(row)
    return token


async def _no_recovery(self: Sealer) -> None:
    """Start-up recovery seals ended hearings and queues playback renders for every sealed hearing without
    one: on 100,000 generated rows with no folders that is 100,000 failing renders, not what is measured."""


class Server:
    """The real application on a loopback port (without start-up recovery, see :func:`_no_recovery`)."""

    def __init__(self, config: Config) -> None:
        Sealer.recover = _no_recovery  # type: ignore[method-assign]
        self.app = create_app(config)
        archive_setup(self.app)
        self.runner = web.AppRunner(self.app, access_log=None)
        self.base = ""

    async def __aenter__(self) -> Server:
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.runner.cleanup()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def search_latencies(config: Config, runs: int) -> list[tuple[str, float, float, int]]:
    """(filter, p50 ms, p95 ms, typical total) for each filter combination."""
    rng = random.Random(11)
    async with Server(config) as server:
        token = await add_admin(server.app)
        cookies = {SESSION_COOKIE: token}
        async with aiohttp.ClientSession(server.base, cookies=cookies) as http:

            async def get(params: dict[str, str]) -> tuple[float, dict[str, Any]]:
                started = time.perf_counter()
                async with http.get("/api/v1/archive/hearings", params=params) as response:
                    body = await response.json()
                    assert response.status == 200, body
                return (time.perf_counter() - started) * 1000, body

            await get({})  # catalogue check, connection warm-up
            sample = (await get({"limit": "200"}))[1]["items"]
            cases: dict[str, Any] = {
                "newest 50 (no filter)": lambda: {},
                "case number exact": lambda: {"case_number": rng.choice(sample)["case_number"]},
                "case number prefix (3 chars)": lambda: {
                    "case_number_prefix": f"{rng.randint(1, 5)}-{rng.randint(1, 9)}"
                },
                "one month": lambda: _month(rng),
                "court + courtroom + month": lambda: {
                    **_month(rng),
                    "court": rng.choice(COURTS),
                    "courtroom": "Зал 3",
                },
                "judge surname": lambda: {"judge": rng.choice(SURNAMES)[:5]},
                "party surname prefix": lambda: {"party": rng.choice(SURNAMES)[:4]},
                "party two words": lambda: {"party": f"{rng.choice(SURNAMES)} {rng.choice(GIVEN)[:3]}"},
                "party + court + years": lambda: {
                    "party": rng.choice(SURNAMES),
                    "court": rng.choice(COURTS),
                    **_years(rng),
                },
                "sort case number, offset 5000": lambda: {"sort": "case_number", "offset": "5000"},
            }
            results = []
            for name, make in cases.items():
                times, totals = [], []
                for _ in range(runs):
                    params = make()
                    elapsed, body = await get(params)
                    times.append(elapsed)
                    totals.append(body["total"])
                results.append(
                    (name, statistics.median(times), percentile(times, 0.95), int(statistics.median(totals)))
                )
            # Keyset paging deep into the default order: each page costs the same.
            times = []
            body = (await get({"limit": "50"}))[1]
            for _ in range(runs):
                elapsed, body = await get({"limit": "50", "cursor": body["next_cursor"]})
                times.append(elapsed)
            results.append(
                ("next page by cursor", statistics.median(times), percentile(times, 0.95), body["total"])
            )
    return results


def _years(rng: random.Random) -> dict[str, str]:
    first, last = sorted(rng.sample(range(2016, 2026), 2))
    return {"date_from": f"{first}-01-01", "date_to": f"{last}-12-31"}


def _month(rng: random.Random) -> dict[str, str]:
    year, month = rng.randint(2016, 2025), rng.randint(1, 12)
    end = (datetime(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)).date()
    return {"date_from": f"{year}-{month:02d}-01", "date_to": end.isoformat()}


async def first_byte(config: Config, runs: int) -> tuple[float, float, float, float]:
    """TTFB and whole-MiB time (p50, p95; ms) of a range for the last MiB of a sparse 1 GB file."""
    hearing_id = new_id()
    relative = f"bench/2026/01/{hearing_id}"
    folder = config.recordings_dir / relative
    folder.mkdir(parents=True)
    with ConfirmationLog(folder, hearing_id) as log:
        log.append(EventType.HEARING_ENDED, actor="bench")
    signer = generate_court_certificate(config.court_cert_path, config.court_key_path, config.court_name)
    seal_hearing(folder, hearing_id, signer)
    playback = folder / "playback" / "composite.mp4"
    playback.parent.mkdir()
    with playback.open("wb") as f:
        f.truncate(ONE_GB)
    now = datetime.now(UTC)
    async with Server(config) as server:
        token = await add_admin(server.app)
        async with server.app[SESSIONS]() as db, db.begin():
            db.add(
                Hearing(
                    id=hearing_id, court="Bench", courtroom="1", case_number="1-1/2026", title="1 GB",
                    scheduled_start=now, duration_minutes=180, presiding_judge="Bench", notice_language="ru",
                    status="sealed", created_at=now, updated_at=now, sealed_at=now, recording_path=relative,
                    legal_hold=False,
                )
            )  # fmt: skip
        url = f"/api/v1/archive/hearings/{hearing_id}/files/playback"
        headers = {"Range": f"bytes={ONE_GB - (1 << 20)}-"}
        ttfb, whole = [], []
        async with aiohttp.ClientSession(server.base, cookies={SESSION_COOKIE: token}) as http:
            for _ in range(runs + 1):
                started = time.perf_counter()
                async with http.get(url, headers=headers) as response:
                    assert response.status == 206
                    await response.content.readany()
                    first = time.perf_counter()
                    await response.read()
                    done = time.perf_counter()
                ttfb.append((first - started) * 1000)
                whole.append((done - started) * 1000)
        ttfb, whole = ttfb[1:], whole[1:]  # the first request opens the connection
    return statistics.median(ttfb), percentile(ttfb, 0.95), statistics.median(whole), percentile(whole, 0.95)


def table(title: str, rows: list[tuple[str, float, float, int]]) -> str:
    lines = [title, f"  {'filter':34} {'p50 ms':>8} {'p95 ms':>8} {'matches':>9}"]
    lines += [f"  {name:34} {p50:8.1f} {p95:8.1f} {total:9d}" for name, p50, p95, total in rows]
    return "\n".join(lines)


async def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--hearings", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--pg-url", help="PostgreSQL URL (emptied!); SQLite only without it")
    parser.add_argument("--workdir", type=Path, help="data folder (default: a temporary one)")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="archive-bench-"))
    print(f"data in {workdir}; {os.cpu_count()} cores")
    base = {
        "environ": {},
        "plain_http": True,
        "uvloop": False,
        "court_name": "Bench Court",
        "log_level": "WARNING",
    }

    sqlite_path = workdir / "sqlite" / "hearing.db"
    sqlite_path.parent.mkdir(parents=True, exist_ok=True)
    await asyncio.to_thread(upgrade_sync, f"sqlite+aiosqlite:///{sqlite_path}")
    seconds = await asyncio.to_thread(fill_sqlite, sqlite_path, args.hearings)
    print(
        f"SQLite: {args.hearings} hearings inserted in {seconds:.1f} s "
        f"({sqlite_path.stat().st_size >> 20} MB)"
    )
    sqlite_config = load_config(
        data_dir=workdir / "sqlite", database_url=f"sqlite+aiosqlite:///{sqlite_path}", **base
    )
    reports = [table(f"SQLite, {args.hearings} hearings", await search_latencies(sqlite_config, args.runs))]
    if args.pg_url:
        seconds = await fill_postgres(args.pg_url, args.hearings)
        print(f"PostgreSQL: {args.hearings} hearings inserted in {seconds:.1f} s")
        pg_config = load_config(data_dir=workdir / "pg", database_url=args.pg_url, **base)
        reports.append(
            table(f"PostgreSQL, {args.hearings} hearings", await search_latencies(pg_config, args.runs))
        )
    ttfb = await first_byte(sqlite_config, args.runs)
    reports.append(
        "Range request for the last MiB of a 1 GB file (sparse), through the HTTP server:\n"
        f"  time to first byte p50 {ttfb[0]:.1f} ms, p95 {ttfb[1]:.1f} ms; "
        f"whole MiB p50 {ttfb[2]:.1f} ms, p95 {ttfb[3]:.1f} ms"
    )
    print("\n\n".join(reports))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
