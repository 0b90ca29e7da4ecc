"""The access audit: one chained entry per archive request, read and exported by admins, edits detected."""

from __future__ import annotations

import json

from archive_bench import ArchiveBench

from archive.audit import AUDIT, audit_path
from recording.hashchain import ChainFault, verify_chain

BASE = "/api/v1/archive"


async def entries(bench: ArchiveBench, **params: str) -> list[dict]:
    response = await bench.get(f"{BASE}/audit", role="admin", params={"limit": "200", **params})
    assert response.status == 200, await response.text()
    return (await response.json())["items"]


async def test_every_access_is_recorded_once(bench: ArchiveBench) -> None:
    hearing_id = await bench.make_hearing(files=True)
    headers = {"User-Agent": "ArchiveBrowser/1.0"}
    await bench.get(f"{BASE}/hearings", params={"party": "иван"}, headers=headers)
    await bench.get(f"{BASE}/hearings/{hearing_id}", headers=headers)
    for first in (0, 100, 200):  # three seeks: three entries, whatever the number of chunks
        await bench.get(
            f"{BASE}/hearings/{hearing_id}/files/1", headers={"Range": f"bytes={first}-", **headers}
        )
    await bench.get(f"{BASE}/hearings/{hearing_id}/files/0", params={"download": "1"}, headers=headers)
    await (await bench.get(f"{BASE}/hearings/{hearing_id}/export", headers=headers)).read()
    await bench.send("POST", f"{BASE}/hearings/{hearing_id}/verify", headers=headers)
    await bench.send(
        "PUT", f"{BASE}/hearings/{hearing_id}/hold", json={"hold": True, "reason": "appeal 7-1/2026"}
    )
    await bench.get(f"{BASE}/hearings/{hearing_id}/files/9")
    await bench.get(f"{BASE}/hearings/{hearing_id}", role="operator")
    await bench.get(f"{BASE}/hearings", role=None)

    found = list(reversed(await entries(bench)))
    summary = [(e["action"], e["actor"], e["status"], e["result"]) for e in found]
    assert summary == [
        ("search", "archivist", 200, "ok"),
        ("view", "archivist", 200, "ok"),
        ("stream", "archivist", 206, "ok"),
        ("stream", "archivist", 206, "ok"),
        ("stream", "archivist", 206, "ok"),
        ("download", "archivist", 200, "ok"),
        ("export", "archivist", 200, "ok"),
        ("verify", "archivist", 200, "ok"),
        ("hold_set", "archivist", 200, "ok"),
        ("stream", "archivist", 404, "file_not_found"),
        ("view", "operator", 403, "forbidden"),
        ("search", "anonymous", 401, "not_authenticated"),
    ]
    search, view, seek = found[0], found[1], found[3]
    assert search["details"]["query"] == {"party": "иван"} and search["details"]["total"] == 1
    assert search["hearing_id"] is None and search["user_agent"] == "ArchiveBrowser/1.0"
    assert search["ip"] == "127.0.0.1" and search["role"] == "archivist"
    assert view["hearing_id"] == hearing_id
    assert seek["target"] == "tracks/judge-audio-001.webm" and seek["details"]["range"] == "bytes=100-"
    assert found[8]["details"]["reason"] == "appeal 7-1/2026"
    assert found[10]["role"] == "operator" and found[10]["hearing_id"] == hearing_id
    assert [e["seq"] for e in found] == list(range(1, len(found) + 1))
    assert all(b["prev_hash"] == a["hash"] for a, b in zip(found, found[1:], strict=False))


async def test_audit_is_admin_only_and_pages(bench: ArchiveBench) -> None:
    for _ in range(5):
        await bench.get(f"{BASE}/hearings")
    assert (await bench.get(f"{BASE}/audit", role="archivist")).status == 403
    assert (await bench.get(f"{BASE}/audit/export", role="archivist")).status == 403
    first = await (await bench.get(f"{BASE}/audit", role="admin", params={"limit": "2"})).json()
    assert [e["seq"] for e in first["items"]] == [7, 6] and first["next_before_seq"] == 6
    second = await (
        await bench.get(f"{BASE}/audit", role="admin", params={"limit": "2", "before_seq": "6"})
    ).json()
    assert [e["seq"] for e in second["items"]] == [5, 4]
    only_denied = await entries(bench, action="audit_read", actor="archivist")
    assert [e["status"] for e in only_denied] == [403]
    bad = await bench.get(f"{BASE}/audit", role="admin", params={"limit": "100000"})
    assert bad.status == 400


async def test_chain_verifies_exports_and_reveals_an_edit(bench: ArchiveBench) -> None:
    hearing_id = await bench.make_hearing(files=True)
    await bench.get(f"{BASE}/hearings/{hearing_id}")
    await bench.get(f"{BASE}/hearings/{hearing_id}/files/0")
    path = audit_path(bench.config.data_dir)
    assert verify_chain(path).valid and verify_chain(path).entries == 2

    exported = await bench.get(f"{BASE}/audit/export", role="admin")
    assert exported.status == 200 and exported.headers["Content-Type"] == "application/x-ndjson"
    assert exported.headers["Content-Disposition"].startswith("attachment;")
    data = await exported.read()
    assert data == path.read_bytes()[: len(data)] and data.count(b"\n") == 2  # as it stood when asked
    status = await (await bench.get(f"{BASE}/audit/verify", role="admin")).json()
    assert status == {  # checked before its own entry (the fourth) was written
        "valid": True,
        "entries": 3,
        "last_hash": json.loads(path.read_bytes().splitlines()[2])["hash"],
        "problem": None,
        "line": None,
    }

    lines = path.read_bytes().split(b"\n")
    lines[1] = lines[1].replace(b'"archivist"', b'"someone__"', 1)
    path.write_bytes(b"\n".join(lines))
    result = verify_chain(path)
    assert not result.valid and result.problem is not None
    assert result.problem.line == 2 and result.problem.fault is ChainFault.BAD_HASH
    status = await (await bench.get(f"{BASE}/audit/verify", role="admin")).json()
    assert status["valid"] is False and status["line"] == 2 and "bad_hash" in status["problem"]
    # A chain whose file was changed by someone else is reopened — and refused — before the next append:
    # archive access then fails closed rather than going unaudited.
    path.write_bytes(path.read_bytes() + b"\n")
    assert (await bench.get(f"{BASE}/hearings")).status == 500
    bench.app[AUDIT].close()
