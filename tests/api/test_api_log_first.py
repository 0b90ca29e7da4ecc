"""No state change without its log entry (#18.1): a REST change and its log entry are made together.

The entry is written (fsynced) before the database commits. A log that cannot be written refuses the change
(503 ``event_log_unavailable``, the database unchanged); a commit that fails after the entry was written is
followed in the log by ``change_rolled_back`` naming it, so the log never claims a change that did not
happen, and the database mirror still equals the log.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from typing import Any

import pytest
from api_harness import Api
from sqlalchemy import event, func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from hearing_server.config import CONFIG
from hearing_server.domain.party import StaffRole
from hearing_server.record.event_log import EVENTS
from hearing_server.record.folder import resolve_folder
from hearing_server.store.models import Hearing, HearingEvent
from recording.confirmation_log import LOG_FILE_NAME
from recording.hashchain import HashChain, read_chain, verify_chain


@pytest.fixture
def full_disk(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every confirmation-log append fails as on a full disk (the chain itself stays intact)."""

    def no_space(self: HashChain, fields: Any) -> dict[str, Any]:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(HashChain, "append", no_space)
    yield


class CommitFault:
    """The next database commit that carries a mirrored event fails, as when the database goes away."""

    def __init__(self) -> None:
        self.armed = False
        self.fired = 0

    def __call__(self, session: Session) -> None:
        if self.armed and any(isinstance(row, HearingEvent) for row in session.new):
            self.armed = False
            self.fired += 1
            raise OperationalError("COMMIT", {}, Exception("server closed the connection unexpectedly"))


@pytest.fixture
def commit_fault() -> Iterator[CommitFault]:
    fault = CommitFault()
    event.listen(Session, "before_commit", fault)
    yield fault
    event.remove(Session, "before_commit", fault)


async def _log(api: Api, hearing_id: str) -> list[dict[str, Any]]:
    async with api.db() as db:
        hearing = await db.get(Hearing, hearing_id)
        assert hearing is not None and hearing.recording_path is not None
        folder = resolve_folder(api.app[CONFIG].recordings_dir, hearing.recording_path)
    assert verify_chain(folder / LOG_FILE_NAME).valid
    return read_chain(folder / LOG_FILE_NAME)


async def _mirror(api: Api, hearing_id: str) -> list[tuple[int, str, str]]:
    return [(e.seq, e.event, e.hash) for e in await api.app[EVENTS].entries(hearing_id)]


async def _hearings(api: Api) -> int:
    async with api.db() as db:
        return int((await db.execute(select(func.count()).select_from(Hearing))).scalar_one())


async def test_a_change_whose_log_entry_cannot_be_written_is_not_made(api: Api, full_disk: None) -> None:
    operator = await api.who(StaffRole.OPERATOR)
    before = await api.counts()
    result = await api.call("POST", "/api/v1/hearings", operator, json=api.hearing_body())
    assert result.status == 503 and result.code == "event_log_unavailable", result.json
    assert "nothing was changed" in result.json["error"]["message"]
    assert await api.counts() == before


async def test_an_update_whose_log_entry_cannot_be_written_leaves_the_hearing_as_it_was(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    operator = await api.who(StaffRole.OPERATOR)
    hearing = await api.schedule(operator, title="Before")
    log_before = await _log(api, hearing["id"])

    def no_space(self: HashChain, fields: Any) -> dict[str, Any]:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(HashChain, "append", no_space)
    result = await api.call("PATCH", f"/api/v1/hearings/{hearing['id']}", operator, json={"title": "After"})
    assert result.status == 503 and result.code == "event_log_unavailable", result.json
    monkeypatch.undo()
    async with api.db() as db:
        stored = await db.get(Hearing, hearing["id"])
        assert stored is not None and stored.title == "Before"
    assert await _log(api, hearing["id"]) == log_before
    assert await _mirror(api, hearing["id"]) == [(e["seq"], e["event"], e["hash"]) for e in log_before]


async def test_a_failed_commit_after_the_log_entry_is_rolled_back_in_the_log(
    api: Api, commit_fault: CommitFault
) -> None:
    operator = await api.who(StaffRole.OPERATOR)
    hearing = await api.schedule(operator, title="Before")
    commit_fault.armed = True
    result = await api.call("PATCH", f"/api/v1/hearings/{hearing['id']}", operator, json={"title": "After"})
    assert commit_fault.fired == 1
    assert result.status == 500 and result.code == "internal_error", result.json
    async with api.db() as db:
        stored = await db.get(Hearing, hearing["id"])
        assert stored is not None and stored.title == "Before"
    entries = await _log(api, hearing["id"])
    assert [e["event"] for e in entries] == ["hearing_scheduled", "hearing_updated", "change_rolled_back"]
    rolled_back = entries[-1]
    assert rolled_back["details"]["seqs"] == [2] and rolled_back["details"]["events"] == ["hearing_updated"]
    assert rolled_back["details"]["reason"] == "database commit failed: OperationalError"
    # the mirror equals the log, the rolled-back entry and its compensation included
    assert await _mirror(api, hearing["id"]) == [(e["seq"], e["event"], e["hash"]) for e in entries]
    # and the next change goes through as usual
    result = await api.call("PATCH", f"/api/v1/hearings/{hearing['id']}", operator, json={"title": "Later"})
    assert result.status == 200, result.json
    assert [e["event"] for e in await _log(api, hearing["id"])][-1] == "hearing_updated"


async def test_a_failed_commit_of_a_new_hearing_leaves_no_hearing_and_blocks_no_mirror(
    api: Api, commit_fault: CommitFault
) -> None:
    operator = await api.who(StaffRole.OPERATOR)
    before = await _hearings(api)
    commit_fault.armed = True
    result = await api.call("POST", "/api/v1/hearings", operator, json=api.hearing_body())
    assert result.status == 500 and commit_fault.fired == 1, result.json
    assert await _hearings(api) == before
    # its folder keeps the attempt and says it did not happen
    logs = list(api.app[CONFIG].recordings_dir.rglob(LOG_FILE_NAME))
    assert len(logs) == 1
    assert [e["event"] for e in read_chain(logs[0])] == ["hearing_scheduled", "change_rolled_back"]
    # the mirror is not stuck on entries of a hearing that does not exist
    hearing = await api.schedule(operator)
    assert [event for _, event, _ in await _mirror(api, hearing["id"])] == ["hearing_scheduled"]
