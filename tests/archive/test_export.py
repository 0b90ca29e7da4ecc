"""Export packages: streamed ZIP contents, export → verify round trip, tampering named, refusals."""

from __future__ import annotations

import asyncio
import hashlib
import io
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from archive_bench import ArchiveBench

from archive import cli
from archive.package import PackageProblemKind, verify_package
from recording.addendum import AddendumEvent, seal_addendum
from recording.seal import CourtSigner
from recording.verify import ProblemKind

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

BASE = "/api/v1/archive/hearings"


async def export(bench: ArchiveBench, hearing_id: str, tmp_path: Path) -> Path:
    response = await bench.get(f"{BASE}/{hearing_id}/export")
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"] == "application/zip"
    assert response.headers["Content-Disposition"].startswith(
        'attachment; filename="hearing-2-100-2026-2026-03-02-'
    )
    assert "Content-Length" not in response.headers  # streamed as it is written
    path = tmp_path / "package.zip"
    path.write_bytes(await response.read())
    return path


def problems(path: Path, trusted: Path) -> tuple[set[tuple[str, str | None]], set[tuple[str, str | None]]]:
    """(package problems, hearing problems) as (kind, entry/path) pairs."""
    report = verify_package(path, trusted)
    assert not report.valid
    hearing = report.hearing
    assert hearing is not None
    return (
        {(p.kind.value, p.entry.split("/hearing/")[-1] if p.entry else None) for p in report.problems},
        {(p.kind.value, p.path) for p in hearing.problems},
    )


def rebuild(source: Path, target: Path, change: dict[str, bytes]) -> None:
    """A copy of the package with some members' contents replaced (with correct ZIP checksums)."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for info in old.infolist():
            data = old.read(info)
            for suffix, replacement in change.items():
                if info.filename.endswith(suffix):
                    data = replacement
            new.writestr(info, data)


@pytest.fixture
async def package(bench: ArchiveBench, tmp_path: Path) -> tuple[str, Path]:
    hearing_id = await bench.make_hearing(files=True)
    return hearing_id, await export(bench, hearing_id, tmp_path)


async def test_package_holds_the_sealed_folder_certificate_and_summary(
    bench: ArchiveBench, package: tuple[str, Path]
) -> None:
    hearing_id, path = package
    folder = await bench.hearing_folder(hearing_id)
    with zipfile.ZipFile(path) as archive:
        infos = {i.filename.split("/", 1)[1]: i for i in archive.infolist()}
        assert set(infos) == {
            "hearing/tracks/judge-video-001.webm",
            "hearing/tracks/judge-audio-001.webm",
            "hearing/confirmation-log.jsonl",
            "hearing/manifest.json",
            "hearing/manifest.json.p7s",
            "court-certificate.pem",
            "summary.txt",
        }
        for name, info in infos.items():
            if name.startswith("hearing/"):
                assert info.compress_type == zipfile.ZIP_STORED and info.flag_bits & 0x08  # data descriptor
                assert archive.read(info) == (folder / name.removeprefix("hearing/")).read_bytes()
        assert archive.read(infos["court-certificate.pem"]) == bench.config.court_cert_path.read_bytes()
        summary = archive.read(infos["summary.txt"]).decode()
    video_hash = hashlib.sha256((folder / "tracks/judge-video-001.webm").read_bytes()).hexdigest()
    expected = [
        *("2-100/2026", bench.config.court_name, "Зал 1", "Ахметов Болат Серикович", "2026-03-02 10:00"),
        *("Иванова Мария (plaintiff)", "Петров Иван (defendant)", video_hash, "Seal: VALID"),
    ]
    for text in expected:
        assert text in summary, text


async def test_export_then_verify_round_trip(
    bench: ArchiveBench, package: tuple[str, Path], tmp_path: Path
) -> None:
    hearing_id, path = package
    report = verify_package(path, bench.config.court_cert_path)
    assert report.valid, report.to_dict()
    assert report.hearing is not None and report.hearing.hearing_id == hearing_id
    assert report.hearing.files_checked == 3 and report.hearing.signer_trusted is True
    assert report.certificate_matches_signer is True
    # Extracted, the package checks the same, and openssl accepts the seal with the enclosed certificate.
    with zipfile.ZipFile(path) as archive:
        archive.extractall(tmp_path / "out")
    (root,) = list((tmp_path / "out").iterdir())
    assert verify_package(root, bench.config.court_cert_path).valid
    if shutil.which("openssl"):
        done = await asyncio.to_thread(
            subprocess.run,
            ["openssl", "cms", "-verify", "-binary", "-content", "manifest.json", "-in", "manifest.json.p7s",
             "-inform", "DER", "-CAfile", "../court-certificate.pem", "-purpose", "any", "-out", "/dev/null"],
            cwd=root / "hearing", capture_output=True, text=True,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr


async def test_cli_verify(
    bench: ArchiveBench, package: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _, path = package
    assert cli.main(["verify", str(path), "--trusted-cert", str(bench.config.court_cert_path)]) == 0
    out = capsys.readouterr().out
    assert "PACKAGE RESULT: VALID" in out and "Signature:      valid" in out
    broken = path.with_name("broken.zip")
    rebuild(path, broken, {"tracks/judge-video-001.webm": b"not the recording"})
    assert cli.main(["verify", str(broken), "--json"]) == 1
    assert '"file_size_changed"' in capsys.readouterr().out


async def test_tampering_is_named(bench: ArchiveBench, package: tuple[str, Path]) -> None:
    _, path = package
    trusted = bench.config.court_cert_path
    with zipfile.ZipFile(path) as archive:
        root = archive.namelist()[0].split("/")[0]
        video = archive.read(f"{root}/hearing/tracks/judge-video-001.webm")
        log = archive.read(f"{root}/hearing/confirmation-log.jsonl")
        manifest = archive.read(f"{root}/hearing/manifest.json")

    # One changed byte in a track, the package re-zipped (ZIP checksums correct).
    changed = bytearray(video)
    changed[len(changed) // 2] ^= 0x01
    track = path.with_name("track.zip")
    rebuild(path, track, {"tracks/judge-video-001.webm": bytes(changed)})
    package_problems, hearing_problems = problems(track, trusted)
    assert package_problems == set()
    assert hearing_problems == {(ProblemKind.FILE_HASH_CHANGED.value, "tracks/judge-video-001.webm")}

    # The same byte changed inside the ZIP file itself: the ZIP checksum and the seal both say so.
    raw = bytearray(path.read_bytes())
    at = raw.find(video)
    raw[at + len(video) // 2] ^= 0x01
    flipped = path.with_name("flipped.zip")
    flipped.write_bytes(bytes(raw))
    package_problems, hearing_problems = problems(flipped, trusted)
    assert package_problems == {(PackageProblemKind.CRC_MISMATCH.value, "tracks/judge-video-001.webm")}
    assert hearing_problems == {(ProblemKind.FILE_HASH_CHANGED.value, "tracks/judge-video-001.webm")}

    # An edited log line: the chain breaks at that line, and the log no longer matches the seal.
    lines = log.split(b"\n")
    index = next(i for i, line in enumerate(lines) if b"127.0.0.1" in line)
    lines[index] = lines[index].replace(b"127.0.0.1", b"127.0.0.9")
    edited = path.with_name("log.zip")
    rebuild(path, edited, {"confirmation-log.jsonl": b"\n".join(lines)})
    report = verify_package(edited, trusted)
    assert report.hearing is not None
    found = {(p.kind, p.path, p.line) for p in report.hearing.problems}
    assert (ProblemKind.LOG_BROKEN, "confirmation-log.jsonl", index + 1) in found
    assert (ProblemKind.FILE_HASH_CHANGED, "confirmation-log.jsonl", None) in found

    # An edited manifest: the signature no longer holds.
    forged = path.with_name("manifest.zip")
    rebuild(path, forged, {"hearing/manifest.json": manifest.replace(b'"sealed_at":"', b'"sealed_at":"1')})
    _, hearing_problems = problems(forged, trusted)
    assert (ProblemKind.SIGNATURE_INVALID.value, "manifest.json.p7s") in hearing_problems


async def test_large_entries_use_zip64(
    bench: ArchiveBench, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ZIP64 is chosen per entry from its size; a tiny limit makes every entry "large" without 4 GB files."""
    hearing_id = await bench.make_hearing(files=True)
    monkeypatch.setattr(zipfile, "ZIP64_LIMIT", 1000)
    path = await export(bench, hearing_id, tmp_path)
    with zipfile.ZipFile(path) as archive:
        video = next(i for i in archive.infolist() if i.filename.endswith("judge-video-001.webm"))
        assert video.file_size > 1000
        assert b"\x01\x00" in video.extra[:2]  # the ZIP64 extra field
        raw = io.BytesIO(path.read_bytes())
    assert raw.getvalue().count(b"PK\x06\x06") == 1  # ZIP64 end of central directory
    monkeypatch.undo()
    assert verify_package(path, bench.config.court_cert_path).valid


async def test_exports_of_unsealed_deleted_and_unknown_hearings_are_refused(bench: ArchiveBench) -> None:
    ended = await bench.make_hearing(status="ended", files=True)
    response = await bench.get(f"{BASE}/{ended}/export")
    assert response.status == 409 and (await response.json())["error"]["code"] == "not_sealed"
    live = await bench.make_hearing(status="in_session")
    assert (await bench.get(f"{BASE}/{live}/export")).status == 404
    no_folder = await bench.make_hearing()  # sealed in the database, but its record names no folder
    response = await bench.get(f"{BASE}/{no_folder}/export")
    assert response.status == 409 and (await response.json())["error"]["code"] == "seal_missing"
    sealed = await bench.make_hearing(files=True)
    assert (await bench.get(f"{BASE}/{sealed}/export", role="operator")).status == 403
    assert (await bench.get(f"{BASE}/{sealed}/export", params={"path": "/etc"})).status == 400


async def test_an_addendum_travels_in_the_package_and_is_checked(bench: ArchiveBench, tmp_path: Path) -> None:
    hearing_id = await bench.make_hearing(files=True)
    folder = await bench.hearing_folder(hearing_id)
    signer = CourtSigner.load(bench.config.court_cert_path, bench.config.court_key_path)
    (folder / "acts").mkdir()
    (folder / "acts" / "a1.pdf").write_bytes(b"%PDF-1.7 the act, signed after the seal")
    event = AddendumEvent("act_signed", "judge", {"act_id": "a1", "path": "acts/a1.pdf"})
    seal_addendum(folder, hearing_id, signer, ["acts/a1.pdf"], [event])
    assert cli.main(["verify", str(folder), "--trusted-cert", str(bench.config.court_cert_path)]) == 0
    path = await export(bench, hearing_id, tmp_path)
    with zipfile.ZipFile(path) as archive:
        names = {i.filename.split("/", 1)[1] for i in archive.infolist()}
        assert {
            "hearing/acts/a1.pdf",
            "hearing/addenda/1/manifest.json",
            "hearing/addenda/1/manifest.json.p7s",
            "hearing/addenda/1/log.jsonl",
        } <= names
        archive.extractall(tmp_path / "out")
    report = verify_package(path, bench.config.court_cert_path)
    assert report.valid, report.to_dict()
    assert report.hearing is not None and report.hearing.addenda == 1
    (root,) = list((tmp_path / "out").iterdir())
    if shutil.which("openssl"):
        done = await asyncio.to_thread(
            subprocess.run,
            ["openssl", "cms", "-verify", "-binary", "-content", "manifest.json", "-in", "manifest.json.p7s",
             "-inform", "DER", "-CAfile", "../../../court-certificate.pem", "-purpose", "any",
             "-out", "/dev/null"],
            cwd=root / "hearing" / "addenda" / "1", capture_output=True, text=True,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
    broken = tmp_path / "broken.zip"
    rebuild(path, broken, {"acts/a1.pdf": b"%PDF-1.7 another act, never signed by the court"})
    package_problems, hearing_problems = problems(broken, bench.config.court_cert_path)
    assert (ProblemKind.FILE_SIZE_CHANGED.value, "acts/a1.pdf") in hearing_problems
    rebuild(path, broken, {"addenda/1/manifest.json": b'{"files":[]}'})
    _, hearing_problems = problems(broken, bench.config.court_cert_path)
    assert (ProblemKind.SIGNATURE_INVALID.value, "addenda/1/manifest.json.p7s") in hearing_problems
