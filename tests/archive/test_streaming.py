"""Viewing a sealed hearing and streaming its files: ranges, validators, big seeks, hostile identifiers."""

from __future__ import annotations

import hashlib
import json
import os
import time
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path

import pytest
from archive_bench import ArchiveBench
from sqlalchemy import select

from hearing_server.store.models import User

# Streaming does not touch the database beyond one lookup: SQLite is enough here.
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

BASE = "/api/v1/archive/hearings"


@pytest.fixture
async def sealed(bench: ArchiveBench) -> str:
    return await bench.make_hearing(files=True)


def url(hearing_id: str, file_id: str) -> str:
    return f"{BASE}/{hearing_id}/files/{file_id}"


async def test_view_lists_files_seal_timeline_and_retention(bench: ArchiveBench, sealed: str) -> None:
    response = await bench.get(f"{BASE}/{sealed}")
    assert response.status == 200, await response.text()
    body = await response.json()
    folder = await bench.hearing_folder(sealed)
    files = {f["name"]: f for f in body["files"]}
    video = files["tracks/judge-video-001.webm"]
    assert (
        video["content_type"] == "video/webm"
        and video["codec"] == "vp8"
        and video["participant_id"] == "judge"
    )
    assert video["duration_s"] == pytest.approx(1.0, abs=0.05) and video["sealed"] is True
    assert (
        video["sha256"] == hashlib.sha256((folder / "tracks/judge-video-001.webm").read_bytes()).hexdigest()
    )
    assert video["size"] == (folder / "tracks/judge-video-001.webm").stat().st_size
    assert files["tracks/judge-audio-001.webm"]["content_type"] == "audio/webm"
    assert files["confirmation-log.jsonl"]["content_type"] == "application/x-ndjson"
    assert files["manifest.json"]["id"] == "manifest" and files["manifest.json.p7s"]["id"] == "signature"
    assert all("/" not in f["id"] for f in body["files"])
    seal = body["seal"]
    assert seal["state"] == "valid" and seal["signature_valid"] and seal["signer_trusted"] is True
    assert "Алматинский" in seal["signer_subject"] and seal["problems"] == [] and seal["full_check"] is None
    assert body["playback"] == {"state": "none", "percent": None, "error": None, "file_id": None, "url": None}
    timeline = body["timeline"]
    assert timeline["source"] == "log_file" and timeline["zero_source"] == "recording"
    events = [(e["event"], e["offset_s"]) for e in timeline["entries"]]
    assert events[0] == ("recording_started", 0.0) and events[-1][0] == "hearing_sealed"
    assert [offset for _, offset in events] == [2.0 * i for i in range(len(events))]
    joined = next(e for e in timeline["entries"] if e["event"] == "party_joined")
    assert joined["party_name"] in {"Иванова Мария", "Петров Иван"}
    retention = body["retention"]
    assert retention["days"] == bench.config.retention_days and retention["source"] == "default"
    assert retention["legal_hold"] is False and retention["deleted_at"] is None


async def test_full_verification_is_stored_and_tampering_shows(bench: ArchiveBench, sealed: str) -> None:
    response = await bench.send("POST", f"{BASE}/{sealed}/verify")
    assert response.status == 200, await response.text()
    report = await response.json()
    assert report["valid"] and report["files_checked"] == 3 and report["log_entries"] == 8
    body = await (await bench.get(f"{BASE}/{sealed}")).json()
    assert body["seal"]["full_check"]["valid"] and body["seal"]["full_check"]["current"]
    track = (await bench.hearing_folder(sealed)) / "tracks/judge-video-001.webm"
    data = bytearray(track.read_bytes())
    data[-10] ^= 0xFF
    track.write_bytes(bytes(data))
    body = await (await bench.get(f"{BASE}/{sealed}")).json()
    assert body["seal"]["full_check"]["current"] is False  # the file changed since the last full check
    report = await (await bench.send("POST", f"{BASE}/{sealed}/verify")).json()
    assert not report["valid"]
    assert [(p["kind"], p["path"]) for p in report["problems"]] == [
        ("file_hash_changed", "tracks/judge-video-001.webm")
    ]


async def test_an_edit_with_the_mtime_put_back_still_makes_the_full_check_stale(
    bench: ArchiveBench, sealed: str
) -> None:
    assert (await bench.send("POST", f"{BASE}/{sealed}/verify")).status == 200
    body = await (await bench.get(f"{BASE}/{sealed}")).json()
    assert body["seal"]["full_check"]["valid"] and body["seal"]["full_check"]["current"]
    log = (await bench.hearing_folder(sealed)) / "confirmation-log.jsonl"
    before = log.stat()
    data = bytearray(log.read_bytes())
    data[data.index(b'"party_joined"') + 1] = ord("P")  # same size: one letter changed
    log.write_bytes(bytes(data))
    os.utime(log, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (log.stat().st_size, log.stat().st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    body = await (await bench.get(f"{BASE}/{sealed}")).json()
    assert body["seal"]["full_check"]["current"] is False
    assert body["seal"]["state"] == "invalid"


async def test_whole_file_and_ranges(bench: ArchiveBench, sealed: str) -> None:
    data = (await bench.hearing_folder(sealed) / "tracks/judge-audio-001.webm").read_bytes()
    size = len(data)
    target = url(sealed, "1")
    whole = await bench.get(target)
    assert whole.status == 200 and await whole.read() == data
    assert whole.headers["Content-Type"] == "audio/webm" and whole.headers["Accept-Ranges"] == "bytes"
    assert int(whole.headers["Content-Length"]) == size and whole.headers["ETag"].startswith('"')
    assert whole.headers["Content-Disposition"].startswith("inline;")
    cases = {
        "bytes=0-99": (0, 99),
        "bytes=1000-1999": (1000, 1999),
        "bytes=-500": (size - 500, size - 1),
        "bytes=5000-": (5000, size - 1),
        f"bytes=100-{size * 10}": (100, size - 1),  # last position past the end is clamped
        "BYTES = 7-7": (7, 7),
    }
    for header, (first, last) in cases.items():
        part = await bench.get(target, headers={"Range": header})
        assert part.status == 206, header
        assert part.headers["Content-Range"] == f"bytes {first}-{last}/{size}", header
        assert int(part.headers["Content-Length"]) == last - first + 1
        assert await part.read() == data[first : last + 1], header


async def test_unsatisfiable_and_malformed_ranges(bench: ArchiveBench, sealed: str) -> None:
    data = (await bench.hearing_folder(sealed) / "tracks/judge-audio-001.webm").read_bytes()
    size = len(data)
    target = url(sealed, "1")
    for header in (
        f"bytes={size}-",
        f"bytes={size + 5}-{size + 10}",
        "bytes=-0",
        f"bytes={size}-,{size + 1}-",
    ):
        response = await bench.get(target, headers={"Range": header})
        assert response.status == 416, header
        assert response.headers["Content-Range"] == f"bytes */{size}"
        assert (await response.json())["error"]["code"] == "range_not_satisfiable"
    # Syntax errors, other units, reversed ranges and too many ranges are ignored: the whole file, 200.
    for header in (
        "bytes=abc",
        "items=0-10",
        "bytes=10-5",
        "bytes=",
        "bytes=1-2-3",
        "bytes=" + ",".join(["0-0"] * 17),
    ):
        response = await bench.get(target, headers={"Range": header})
        assert response.status == 200, header
        assert await response.read() == data


async def test_multiple_ranges_come_as_multipart(bench: ArchiveBench, sealed: str) -> None:
    data = (await bench.hearing_folder(sealed) / "tracks/judge-audio-001.webm").read_bytes()
    size = len(data)
    response = await bench.get(url(sealed, "1"), headers={"Range": "bytes=0-9, 100-149, -20"})
    assert response.status == 206
    content_type = response.headers["Content-Type"]
    assert content_type.startswith("multipart/byteranges; boundary=")
    raw = await response.read()
    assert len(raw) == int(response.headers["Content-Length"])
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + raw
    )
    parts = [
        (p["Content-Range"], p["Content-Type"], p.get_payload(decode=True)) for p in message.iter_parts()
    ]
    assert parts == [
        (f"bytes 0-9/{size}", "audio/webm", data[0:10]),
        (f"bytes 100-149/{size}", "audio/webm", data[100:150]),
        (f"bytes {size - 20}-{size - 1}/{size}", "audio/webm", data[-20:]),
    ]
    # Overlapping ranges are coalesced into one part.
    merged = await bench.get(url(sealed, "1"), headers={"Range": "bytes=0-99,50-149"})
    assert merged.status == 206 and merged.headers["Content-Range"] == f"bytes 0-149/{size}"


async def test_validators(bench: ArchiveBench, sealed: str) -> None:
    target = url(sealed, "0")
    first = await bench.get(target)
    etag = first.headers["ETag"]
    same = await bench.get(target, headers={"Range": "bytes=0-3", "If-Range": etag})
    assert same.status == 206
    changed = await bench.get(target, headers={"Range": "bytes=0-3", "If-Range": '"stale"'})
    assert changed.status == 200 and len(await changed.read()) == int(first.headers["Content-Length"])
    weak = await bench.get(target, headers={"Range": "bytes=0-3", "If-Range": f"W/{etag}"})
    assert weak.status == 200
    dated = await bench.get(
        target, headers={"Range": "bytes=0-3", "If-Range": first.headers["Last-Modified"]}
    )
    assert dated.status == 206
    assert (await bench.get(target, headers={"If-None-Match": etag})).status == 304
    assert (await bench.get(target, headers={"If-Match": '"other"'})).status == 412
    head = await bench.client.head(target, headers=bench.headers("archivist"))
    assert head.status == 200 and head.headers["Content-Length"] == first.headers["Content-Length"]
    assert await head.read() == b""


async def test_download_is_an_attachment(bench: ArchiveBench, sealed: str) -> None:
    response = await bench.get(url(sealed, "manifest"), params={"download": "1"})
    assert response.status == 200 and response.headers["Content-Type"] == "application/json"
    assert response.headers["Content-Disposition"].startswith('attachment; filename="manifest.json"')
    assert json.loads(await response.read())["hearing_id"] == sealed


def _rchar() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar")


async def test_seeking_to_the_end_of_a_200_mb_file_reads_only_the_end(
    bench: ArchiveBench, sealed: str
) -> None:
    folder = await bench.hearing_folder(sealed)
    playback = folder / "playback" / "composite.mp4"
    playback.parent.mkdir()
    size = 200 * 1024 * 1024
    with playback.open("wb") as f:  # sparse: no disk used, every byte zero but the last 16
        f.truncate(size - 16)
        f.seek(size - 16)
        f.write(b"END-OF-RECORDING")
    body = await (await bench.get(f"{BASE}/{sealed}")).json()
    assert body["playback"]["state"] == "done" and body["playback"]["file_id"] == "playback"
    reads_before, started = _rchar(), time.perf_counter()
    response = await bench.get(url(sealed, "playback"), headers={"Range": f"bytes={size - (1 << 20)}-"})
    data = await response.read()
    elapsed, read = time.perf_counter() - started, _rchar() - reads_before
    assert response.status == 206 and response.headers["Content-Type"] == "video/mp4"
    assert response.headers["Content-Range"] == f"bytes {size - (1 << 20)}-{size - 1}/{size}"
    assert len(data) == 1 << 20 and data.endswith(b"END-OF-RECORDING") and data[:-16] == bytes((1 << 20) - 16)
    # One MiB read from the file plus one MiB received over the socket, in this process — not 200 MB.
    assert read < 8 * (1 << 20), read
    assert elapsed < 1.0, elapsed


HOSTILE_HEARING_IDS = [
    "..%2F..%2F..%2Fetc%2Fpasswd",
    "%2e%2e",
    "%2Fetc%2Fpasswd",
    "00000000-0000-0000-0000-000000000000%00",
    "..",
    "not-an-id",
    "00000000-0000-0000-0000-00000000000G",
]
HOSTILE_FILE_IDS = [
    "..%2Fmanifest.json",
    "..%2F..%2F..%2F..%2Fsecret.txt",
    "%2Fetc%2Fpasswd",
    "0%00",
    "-1",
    "01",
    "99",
    "1e1",
    "manifest.json",
    "tracks%2Fjudge-video-001.webm",
    "%252e%252e%252fsecret.txt",
    "link",
]


async def test_hostile_identifiers_never_reach_a_file(bench: ArchiveBench, sealed: str) -> None:
    secret = bench.config.data_dir / "secret.txt"
    secret.write_text("TOP SECRET")
    for hearing_id in HOSTILE_HEARING_IDS:
        for suffix in ("", "/files/0", "/export"):
            response = await bench.client.get(
                f"{BASE}/{hearing_id}{suffix}", headers=bench.headers("archivist"), allow_redirects=False
            )
            assert response.status in (400, 404), (hearing_id, suffix)
            assert b"TOP SECRET" not in await response.read()
    for file_id in HOSTILE_FILE_IDS:
        response = await bench.client.get(
            f"{BASE}/{sealed}/files/{file_id}", headers=bench.headers("archivist"), allow_redirects=False
        )
        assert response.status in (400, 404), file_id
        assert b"TOP SECRET" not in await response.read()


async def test_manifest_entries_pointing_outside_the_folder_are_never_served(
    bench: ArchiveBench, sealed: str
) -> None:
    """Even a doctored manifest (its signature then fails) cannot make the server read outside the archive."""
    folder = await bench.hearing_folder(sealed)
    secret = bench.config.data_dir / "secret.txt"
    secret.write_text("TOP SECRET")
    os.symlink(secret, folder / "tracks" / "link.webm")
    manifest = json.loads((folder / "manifest.json").read_bytes())
    manifest["files"] += [
        {"path": "tracks/link.webm", "size": 10, "sha256": "0" * 64, "kind": "video"},
        {"path": "../../../../secret.txt", "size": 10, "sha256": "0" * 64, "kind": "other"},
        {"path": str(secret), "size": 10, "sha256": "0" * 64, "kind": "other"},
    ]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    body = await (await bench.get(f"{BASE}/{sealed}")).json()
    assert body["seal"]["state"] == "invalid"
    assert "signature_invalid" in {p["kind"] for p in body["seal"]["problems"]}
    listed = {f["name"]: f["id"] for f in body["files"]}
    assert "../../../../secret.txt" not in listed and str(secret) not in listed
    for file_id in [listed["tracks/link.webm"], *[str(i) for i in range(len(manifest["files"]) + 2)]]:
        response = await bench.get(url(sealed, file_id))
        assert b"TOP SECRET" not in await response.read(), file_id
    assert (await bench.get(url(sealed, listed["tracks/link.webm"]))).status == 404


async def test_unsealed_hearings_serve_no_files(bench: ArchiveBench) -> None:
    ended = await bench.make_hearing(status="ended", files=True)
    body = await (await bench.get(f"{BASE}/{ended}")).json()
    assert body["files"] == [] and body["seal"]["state"] == "unsealed"
    assert [e["event"] for e in body["timeline"]["entries"]][-1] == "hearing_ended"
    response = await bench.get(url(ended, "0"))
    assert response.status == 409 and (await response.json())["error"]["code"] == "not_sealed"
    live = await bench.make_hearing(status="in_session")
    assert (await bench.get(f"{BASE}/{live}")).status == 404


async def test_roles_for_files(bench: ArchiveBench, sealed: str) -> None:
    for role, status in [("admin", 200), ("archivist", 200), ("operator", 403), ("judge", 403), (None, 401)]:
        response = await bench.get(url(sealed, "0"), role=role)
        assert response.status == status, role


async def test_the_timeline_names_its_actors(bench: ArchiveBench) -> None:
    """Parties by name and role, staff by display name; ``system`` and unknown accounts are not listed."""
    async with bench.app_sessions() as db:
        judge_id = (await db.execute(select(User.id).where(User.username == "judge"))).scalar_one()
    hearing_id = await bench.make_hearing(files=True, ended_by=f"user:{judge_id}")
    body = await (await bench.get(f"{BASE}/{hearing_id}")).json()
    parties = {p["display_name"]: p["id"] for p in body["parties"]}
    actors = body["timeline"]["actors"]
    assert actors == {
        f"party:{parties['Иванова Мария']}": {"kind": "party", "name": "Иванова Мария", "role": "plaintiff"},
        f"party:{parties['Петров Иван']}": {"kind": "party", "name": "Петров Иван", "role": "defendant"},
        f"user:{judge_id}": {"kind": "staff", "name": "Judge", "role": "judge"},
    }
    used = {e["actor"] for e in body["timeline"]["entries"]}
    assert used - set(actors) == {"system", "judge"}  # the seal's own entry names its signer's role

    gone = await bench.make_hearing(files=True, ended_by="user:00000000-0000-0000-0000-000000000000")
    body = await (await bench.get(f"{BASE}/{gone}")).json()
    assert all(not actor.startswith("user:") for actor in body["timeline"]["actors"])
