"""Archive search: filters, offset and cursor paging, sorting, absurd parameters, roles (both databases)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from archive_bench import ArchiveBench

from archive import search

URL = "/api/v1/archive/hearings"
T0 = datetime(2026, 1, 10, 4, 0, tzinfo=UTC)  # 09:00 in Asia/Almaty (UTC+5)


async def ids(bench: ArchiveBench, **params: object) -> list[str]:
    response = await bench.get(URL, params={k: str(v) for k, v in params.items()})
    assert response.status == 200, await response.text()
    return [item["id"] for item in (await response.json())["items"]]


@pytest.fixture
async def hearings(bench: ArchiveBench) -> dict[str, str]:
    """A small archive with distinct values in every searchable field."""
    made = {
        "a": await bench.make_hearing(
            case_number="2-100/2026",
            courtroom="Зал 1",
            judge="Ахметов Болат Серикович",
            start=T0,
            parties=[("plaintiff", "Иванова Мария Петровна"), ("defendant", "ТОО «Алатау»")],
        ),
        "b": await bench.make_hearing(
            case_number="2-101/2026",
            courtroom="Зал 2",
            judge="Смирнова Елена",
            start=T0 + timedelta(days=1),
            parties=[("plaintiff", "Petrov Ivan"), ("witness", "Иванов Сергей")],
        ),
        "c": await bench.make_hearing(
            case_number="3-7/2025",
            courtroom="Зал 1",
            judge="Ахметов Болат Серикович",
            start=T0 + timedelta(days=2),
            status="ended",
            parties=[("defendant", "Мария Иванова-Ким")],
        ),
        "d": await bench.make_hearing(
            case_number="2-100/2026",
            court="Другой суд",
            courtroom="Зал 1",
            judge="Omarov K.",
            start=T0 + timedelta(days=3),
            parties=[],
        ),
        "live": await bench.make_hearing(case_number="2-102/2026", status="in_session", start=T0),
        "sched": await bench.make_hearing(case_number="2-103/2026", status="scheduled", start=T0),
    }
    return made  # fmt: skip


async def test_only_ended_and_sealed_hearings_are_listed(
    bench: ArchiveBench, hearings: dict[str, str]
) -> None:
    response = await bench.get(URL)
    body = await response.json()
    assert body["total"] == 4 and body["total_exact"] is True
    assert {item["id"] for item in body["items"]} == {hearings[k] for k in "abcd"}
    first = next(item for item in body["items"] if item["id"] == hearings["a"])
    assert first["status"] == "sealed" and first["legal_hold"] is False and first["deleted_at"] is None
    assert {p["display_name"] for p in first["parties"]} == {"Иванова Мария Петровна", "ТОО «Алатау»"}


async def test_filters(bench: ArchiveBench, hearings: dict[str, str]) -> None:
    h = hearings
    assert set(await ids(bench, case_number="2-100/2026")) == {h["a"], h["d"]}
    assert await ids(bench, case_number="2-100") == []  # exact means exact
    assert set(await ids(bench, case_number_prefix="2-10")) == {h["a"], h["b"], h["d"]}
    assert await ids(bench, case_number_prefix="3-") == [h["c"]]
    assert await ids(bench, case_number_prefix="2-1000") == []
    assert set(await ids(bench, court=bench.config.court_name)) == {h["a"], h["b"], h["c"]}
    assert await ids(bench, court="Другой суд") == [h["d"]]
    assert set(await ids(bench, courtroom="Зал 1")) == {h["a"], h["c"], h["d"]}
    assert await ids(bench, courtroom="Зал 1", court="Другой суд") == [h["d"]]
    assert await ids(bench, status="ended") == [h["c"]]
    # Days are the court's: 2026-01-11 in Almaty holds hearing b (04:00 UTC = 09:00 local) only.
    assert await ids(bench, date_from="2026-01-11", date_to="2026-01-11") == [h["b"]]
    assert set(await ids(bench, date_from="2026-01-12")) == {h["c"], h["d"]}
    assert set(await ids(bench, date_to="2026-01-10")) == {h["a"]}


@pytest.mark.parametrize("common", [1000, 0], ids=["looked-up", "probed"])
async def test_names_match_word_prefixes_in_any_letter_case(
    bench: ArchiveBench, hearings: dict[str, str], common: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both plans (matches fetched by name, or names checked per hearing) find the same hearings."""
    monkeypatch.setattr(search, "PROBE_FROM", common)
    h = hearings
    assert set(await ids(bench, judge="ахметов")) == {h["a"], h["c"]}
    assert set(await ids(bench, judge="БОЛАТ ахм")) == {h["a"], h["c"]}  # every word, any order
    assert await ids(bench, judge="омаров") == []
    assert await ids(bench, judge="omar") == [h["d"]]
    assert set(await ids(bench, party="иванов")) == {h["a"], h["b"], h["c"]}  # Иванова, Иванов, Иванова-Ким
    assert set(await ids(bench, party="ИВАНОВА мар")) == {h["a"], h["c"]}
    assert await ids(bench, party="сергей иванов") == [h["b"]]
    # Both words must belong to the same party: Petrov (b) and Мария (a/c) never share a party.
    assert await ids(bench, party="petrov мария") == []
    assert await ids(bench, party="алатау") == [h["a"]]
    assert set(await ids(bench, party="иван", judge="смирнова")) == {h["b"]}


async def test_sorting_and_offset_paging(bench: ArchiveBench, hearings: dict[str, str]) -> None:
    h = hearings
    assert await ids(bench) == [h["d"], h["c"], h["b"], h["a"]]  # newest first by default
    assert await ids(bench, sort="scheduled_start") == [h["a"], h["b"], h["c"], h["d"]]
    by_case = await ids(bench, sort="case_number")
    assert by_case[:2] == sorted([h["a"], h["d"]]) and by_case[2:] == [h["b"], h["c"]]
    assert await ids(bench, sort="-case_number") == [h["c"], h["b"], *sorted([h["a"], h["d"]], reverse=True)]
    response = await bench.get(URL, params={"sort": "scheduled_start", "limit": "2", "offset": "1"})
    body = await response.json()
    assert [i["id"] for i in body["items"]] == [h["b"], h["c"]]
    assert body["total"] == 4 and body["limit"] == 2 and body["offset"] == 1


async def test_cursor_walks_every_hearing_once_in_order(bench: ArchiveBench) -> None:
    made = []
    for i in range(11):
        # Repeated start times and case numbers: the id breaks ties, so no hearing is skipped or repeated.
        made.append(
            await bench.make_hearing(
                case_number=f"2-{i % 4}/2026", start=T0 + timedelta(hours=i // 3), parties=[]
            )
        )
    for sort in ("scheduled_start", "-scheduled_start", "case_number", "-case_number"):
        full = await ids(bench, sort=sort, limit=200)
        assert sorted(full) == sorted(made)
        seen: list[str] = []
        cursor = None
        for _ in range(10):
            params = {"sort": sort, "limit": "3"} | ({"cursor": cursor} if cursor else {})
            body = await (await bench.get(URL, params=params)).json()
            seen += [item["id"] for item in body["items"]]
            cursor = body["next_cursor"]
            if cursor is None:
                break
        assert seen == full, sort


ABSURD = [
    ({"limit": "1000000000"}, "invalid_input"),
    ({"limit": "0"}, "invalid_input"),
    ({"offset": "-1"}, "invalid_input"),
    ({"offset": "99999999"}, "invalid_input"),
    ({"date_from": "0001-01-01"}, "invalid_input"),
    ({"date_to": "9999-12-31"}, "invalid_input"),
    ({"date_from": "2026-13-45"}, "invalid_input"),
    ({"date_from": "2026-02-01", "date_to": "2026-01-01"}, "end_before_start"),
    ({"party": "x" * 4_000}, "invalid_input"),
    ({"case_number_prefix": "2" * 4_000}, "invalid_input"),
    ({"judge": "..."}, "invalid_input"),
    ({"party": "a\x00b"}, "invalid_input"),
    ({"sort": "title"}, "invalid_input"),
    ({"cursor": "not-a-cursor"}, "invalid_cursor"),
    ({"cursor": "eyJzIjoiY2FzZV9udW1iZXIiLCJ2IjoiMSIsImlkIjoiMSJ9"}, "invalid_cursor"),  # another sort's
    ({"cursor": "eyJzIjoiLXNjaGVkdWxlZF9zdGFydCIsInYiOiJ4IiwiaWQiOiIxIn0"}, "invalid_cursor"),  # bad time
    ({"on_hold": "maybe"}, "invalid_input"),
    ({"color": "red"}, "invalid_input"),
]


async def test_absurd_parameters_are_refused_with_a_code(bench: ArchiveBench) -> None:
    for params, code in ABSURD:
        response = await bench.get(URL, params=params)
        assert response.status == 400, params
        assert (await response.json())["error"]["code"] == code, params


async def test_a_10_kb_parameter_is_refused_before_the_application(bench: ArchiveBench) -> None:
    response = await bench.get(URL, params={"party": "x" * 10_000})
    assert response.status == 400  # aiohttp's request-line limit (8190 bytes) answers first


async def test_cursor_and_offset_together_are_refused(bench: ArchiveBench, hearings: dict[str, str]) -> None:
    body = await (await bench.get(URL, params={"limit": "1"})).json()
    response = await bench.get(URL, params={"limit": "1", "cursor": body["next_cursor"], "offset": "1"})
    assert response.status == 400


async def test_totals_are_counted_up_to_a_limit(bench: ArchiveBench, monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(4):
        await bench.make_hearing(case_number=f"2-{i}/2026", parties=[])
    monkeypatch.setattr(search, "COUNT_LIMIT", 3)
    body = await (await bench.get(URL, params={"limit": "2"})).json()
    assert (body["total"], body["total_exact"], len(body["items"])) == (3, False, 2)
    body = await (await bench.get(URL, params={"case_number_prefix": "2-1"})).json()
    assert (body["total"], body["total_exact"]) == (1, True)


async def test_hold_filter(bench: ArchiveBench) -> None:
    held = await bench.make_hearing(legal_hold=True, parties=[])
    free = await bench.make_hearing(case_number="2-2/2026", parties=[])
    assert await ids(bench, on_hold="true") == [held]
    assert await ids(bench, on_hold="false") == [free]


async def test_only_archivists_and_admins_search(bench: ArchiveBench) -> None:
    for role, status in [("admin", 200), ("archivist", 200), ("operator", 403), ("judge", 403), (None, 401)]:
        response = await bench.get(URL, role=role)
        assert response.status == status, role
