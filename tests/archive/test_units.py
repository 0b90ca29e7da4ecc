"""Units of the archive without a server: storage keys and paths, range parsing, hostile packages."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest

from archive.catalogue import name_words
from archive.package import PackageProblemKind, verify_package
from archive.ranges import ByteRange, RangeAnswer, parse_range
from archive.storage import LocalDiskStorage, ObjectMissing, StorageError, validate_key


@pytest.mark.parametrize(
    "key",
    ["", "/etc/passwd", "a/../b", "../a", "a/./b", "a//b", "a/", "a\\b", "a\x00b", "a\nb", "x" * 1025, ".."],
)
def test_malformed_keys_are_refused(key: str) -> None:
    with pytest.raises(StorageError):
        validate_key(key)


def test_local_storage_stays_under_its_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "court" / "h1" / "tracks").mkdir(parents=True)
    (root / "court" / "h1" / "tracks" / "a.webm").write_bytes(b"0123456789")
    (tmp_path / "secret.txt").write_text("secret")
    os.symlink(tmp_path / "secret.txt", root / "court" / "h1" / "tracks" / "link.webm")
    os.symlink(tmp_path, root / "court" / "escape")
    storage = LocalDiskStorage(root)
    assert storage.stat("court/h1/tracks/a.webm").size == 10
    with storage.open("court/h1/tracks/a.webm") as f:
        f.seek(5)
        assert f.read(3) == b"567"
    with pytest.raises(StorageError):
        storage.stat("court/h1/tracks/link.webm")  # a symlink out of the root
    with pytest.raises(StorageError):
        storage.open("court/escape/secret.txt")  # a folder symlink out of the root
    with pytest.raises(ObjectMissing):
        storage.stat("court/h1/tracks/none.webm")
    assert [i.key for i in storage.iterate("court/h1")] == ["court/h1/tracks/a.webm"]  # links not listed
    with pytest.raises(StorageError):
        storage.read_bytes("court/h1/tracks/a.webm", 5)
    os.unlink(root / "court" / "h1" / "tracks" / "link.webm")
    storage.delete("court/h1/tracks/a.webm")
    assert not (root / "court" / "h1").exists() and (root / "court").exists()  # emptied folders go too
    assert (tmp_path / "secret.txt").read_text() == "secret"


@pytest.mark.parametrize(
    ("header", "answer", "ranges"),
    [
        (None, RangeAnswer.FULL, []),
        ("bytes=0-0", RangeAnswer.PARTIAL, [ByteRange(0, 0)]),
        ("bytes=-1", RangeAnswer.PARTIAL, [ByteRange(999, 999)]),
        ("bytes=-5000", RangeAnswer.PARTIAL, [ByteRange(0, 999)]),
        ("bytes=990-", RangeAnswer.PARTIAL, [ByteRange(990, 999)]),
        ("bytes=5-9,0-4", RangeAnswer.PARTIAL, [ByteRange(0, 9)]),
        ("bytes=0-1, 10-11", RangeAnswer.PARTIAL, [ByteRange(0, 1), ByteRange(10, 11)]),
        ("bytes=1000-", RangeAnswer.UNSATISFIABLE, []),
        ("bytes=-0", RangeAnswer.UNSATISFIABLE, []),
        ("bytes=2000-3000,1000-", RangeAnswer.UNSATISFIABLE, []),
        ("bytes=5-1", RangeAnswer.FULL, []),
        ("bytes=x-1", RangeAnswer.FULL, []),
        ("bytes=+1-2", RangeAnswer.FULL, []),
        ("bytes=-", RangeAnswer.FULL, []),
        ("pages=1-2", RangeAnswer.FULL, []),
        ("bytes 0-1", RangeAnswer.FULL, []),
        ("bytes=" + ",".join(f"{i}-{i}" for i in range(0, 40, 2)), RangeAnswer.FULL, []),
        ("bytes=0-99999999999999999999999999", RangeAnswer.PARTIAL, [ByteRange(0, 999)]),
    ],
)
def test_range_parsing(header: str | None, answer: RangeAnswer, ranges: list[ByteRange]) -> None:
    assert parse_range(header, 1000) == (answer, ranges)


def test_an_empty_file_has_no_satisfiable_range() -> None:
    assert parse_range("bytes=-10", 0) == (RangeAnswer.UNSATISFIABLE, [])
    assert parse_range("bytes=0-", 0) == (RangeAnswer.UNSATISFIABLE, [])


def test_name_words_fold_case_and_script_forms() -> None:
    assert name_words("АХМЕТОВ Болат-Серикович") == ["ахметов", "болат", "серикович"]
    assert name_words("Straße  O'Brien") == ["strasse", "o", "brien"]
    assert name_words("ＡＢＣ") == ["abc"]  # full-width letters, NFKC
    assert name_words("...") == []


def test_hostile_package_entries_are_not_extracted(tmp_path: Path) -> None:
    path = tmp_path / "evil.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("pkg/hearing/manifest.json", b"{}")
        archive.writestr("pkg/../../escaped.txt", b"x")
        archive.writestr("/abs.txt", b"x")
        link = zipfile.ZipInfo("pkg/hearing/link")
        link.external_attr = 0o120777 << 16
        archive.writestr(link, "/etc/passwd")
    report = verify_package(path)
    assert not report.valid
    unsafe = {p.entry for p in report.problems if p.kind is PackageProblemKind.UNSAFE_ENTRY}
    assert unsafe == {"pkg/../../escaped.txt", "/abs.txt", "pkg/hearing/link"}
    assert not (tmp_path.parent / "escaped.txt").exists()
    not_a_zip = tmp_path / "nothing.zip"
    not_a_zip.write_bytes(b"PK\x03\x04 not really")
    assert [p.kind for p in verify_package(not_a_zip).problems] == [PackageProblemKind.UNREADABLE]
