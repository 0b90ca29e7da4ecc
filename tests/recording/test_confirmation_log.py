"""The confirmation log: entry fields, durability across reopen, mirror callback, repair of a torn line."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest

from hearing_server.domain.events import EventType
from recording.confirmation_log import LOG_FILE_NAME, ConfirmationLog, LogEntry
from recording.hashchain import GENESIS_HASH, verify_chain

TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
NOTICE_SHA = "9f" * 32


def test_entries_carry_every_field_and_are_mirrored(tmp_path: Path) -> None:
    mirrored: list[LogEntry] = []
    with ConfirmationLog(tmp_path, "H1", on_append=mirrored.append) as log:
        invited = log.append(
            EventType.PARTY_INVITED, actor="operator:7", party_id="P1", details={"role": "witness"}
        )
        confirmed = log.append(
            "notice_confirmed",
            actor="P1",
            party_id="P1",
            details={
                "ip": "127.0.0.1",
                "user_agent": "Mobile Safari",
                "notice_language": "kk",
                "notice_sha256": NOTICE_SHA,
            },
        )
        assert log.entry_count == 2 and log.last_hash == confirmed.hash
    assert mirrored == [invited, confirmed]
    assert (invited.seq, invited.prev_hash) == (1, GENESIS_HASH)
    assert (confirmed.seq, confirmed.prev_hash) == (2, invited.hash)
    assert TIME.match(confirmed.time)
    assert confirmed.hearing_id == "H1" and confirmed.event == "notice_confirmed"
    assert confirmed.details["notice_sha256"] == NOTICE_SHA
    assert (tmp_path / LOG_FILE_NAME).exists()


def test_reopened_log_continues_and_verifies(tmp_path: Path) -> None:
    with ConfirmationLog(tmp_path, "H1") as log:
        log.append(EventType.RECORDING_STARTED, actor="system")
        last = log.append(EventType.PARTY_JOINED, party_id="P1")
    with ConfirmationLog(tmp_path, "H1") as log:
        nxt = log.append(EventType.RECESS_CALLED, actor="judge")
        assert [e.event for e in log.entries()] == ["recording_started", "party_joined", "recess_called"]
        assert log.verify().valid
    assert nxt.seq == 3 and nxt.prev_hash == last.hash


def test_log_of_another_hearing_is_refused(tmp_path: Path) -> None:
    with ConfirmationLog(tmp_path, "H1") as log:
        log.append(EventType.RECORDING_STARTED)
    with pytest.raises(ValueError, match="H1"):
        ConfirmationLog(tmp_path, "H2")


def test_event_names_must_be_snake_case(tmp_path: Path) -> None:
    with ConfirmationLog(tmp_path, "H1") as log, pytest.raises(ValueError):
        log.append("Party Joined")


def test_failing_mirror_does_not_lose_the_entry(tmp_path: Path) -> None:
    def broken(entry: LogEntry) -> None:
        raise RuntimeError("database down")

    with ConfirmationLog(tmp_path, "H1", on_append=broken) as log:
        entry = log.append(EventType.PARTY_LEFT, party_id="P1")
        assert log.entries() == [entry]


def test_torn_line_is_cut_and_logged_as_log_repaired(tmp_path: Path) -> None:
    with ConfirmationLog(tmp_path, "H1") as log:
        log.append(EventType.PARTY_JOINED, party_id="P1")
    with (tmp_path / LOG_FILE_NAME).open("ab") as f:
        f.write(b'{"event":"party_left","hear')
    with ConfirmationLog(tmp_path, "H1") as log:
        assert log.repaired is not None
        entries = log.entries()
    assert [e.event for e in entries] == ["party_joined", "log_repaired"]
    assert entries[1].actor == "system"
    assert entries[1].details["torn_text"] == '{"event":"party_left","hear'
    assert verify_chain(tmp_path / LOG_FILE_NAME).valid


async def test_append_async_keeps_fsync_off_the_loop(tmp_path: Path) -> None:
    threads: list[str] = []
    with ConfirmationLog(
        tmp_path, "H1", on_append=lambda e: threads.append(threading.current_thread().name)
    ) as log:
        entries = [
            await log.append_async(EventType.PARTY_MUTED, actor="judge", party_id=f"P{i}") for i in range(3)
        ]
    assert [e.seq for e in entries] == [1, 2, 3]
    assert threading.main_thread().name not in threads
