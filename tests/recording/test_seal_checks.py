"""The server's cached seal check: reused while the files are untouched, redone after any edit — even a
same-size edit whose modification time was put back with ``os.utime``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from recording_media import HEARING_ID

from hearing_server.record.sealer import SealChecks
from recording.confirmation_log import ConfirmationLog
from recording.seal import CourtSigner, seal_hearing
from recording.verify import ProblemKind


@pytest.fixture
def sealed(hearing_copy: Path, court: tuple[CourtSigner, Path]) -> Path:
    signer, _ = court
    with ConfirmationLog(hearing_copy, HEARING_ID) as log:
        seal_hearing(hearing_copy, HEARING_ID, signer, log=log, actor="judge")
    return hearing_copy


def _edit_one_byte_keeping_size_and_mtime(path: Path) -> None:
    before = path.stat()
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x5A
    path.write_bytes(bytes(data))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (
        before.st_size,
        before.st_mtime_ns,
        before.st_ino,
    )


async def test_a_same_size_edit_with_the_mtime_put_back_is_reported_broken(
    sealed: Path, court: tuple[CourtSigner, Path]
) -> None:
    checks = SealChecks(court[1], settle_ns=0)  # every file counts as settled once the check has begun
    first = await checks.check(sealed)
    assert first.valid and first.files_checked >= 3
    again = await checks.check(sealed)
    assert again is first and checks.verifications == 1  # untouched: the cached result
    track = next(p for p in sorted((sealed / "tracks").iterdir()) if p.suffix == ".webm")
    _edit_one_byte_keeping_size_and_mtime(track)
    after = await checks.check(sealed)
    assert checks.verifications == 2
    assert not after.valid
    assert [(p.kind, p.path) for p in after.problems] == [
        (ProblemKind.FILE_HASH_CHANGED, track.relative_to(sealed).as_posix())
    ]


async def test_files_changed_just_before_a_check_are_checked_again(
    sealed: Path, court: tuple[CourtSigner, Path]
) -> None:
    # The seal was written a moment ago: within the file system's timestamp granularity a later edit could
    # carry the same times, so the result is not reused until the files have settled.
    checks = SealChecks(court[1])
    assert (await checks.check(sealed)).valid
    assert (await checks.check(sealed)).valid
    assert checks.verifications == 2
