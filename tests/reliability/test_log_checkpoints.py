"""The running server signs checkpoints of live confirmation logs (every N entries, at a recess, after a
quiet interval) and will not seal a log rewritten behind them — nor one that differs from its database
mirror, nor one whose checkpoints were removed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from api_harness import Api
from reliability_harness import MakeApi
from sqlalchemy import update

from hearing_server.domain.errors import Conflict
from hearing_server.domain.events import EventType
from hearing_server.domain.party import StaffRole
from hearing_server.record.context import SEALER
from hearing_server.record.event_log import EVENTS
from hearing_server.store.models import Hearing, HearingEvent
from recording.checkpoints import CHECKPOINTS_NAME, read_checkpoints
from recording.confirmation_log import LOG_FILE_NAME
from recording.hashchain import GENESIS_HASH, canonical_json, entry_hash, read_chain, verify_chain
from recording.seal import MANIFEST_NAME
from recording.verify import verify_hearing


async def _hearing(api: Api) -> tuple[str, Path]:
    operator = await api.who(StaffRole.OPERATOR)
    hearing = await api.schedule(operator)
    return hearing["id"], await api.app[EVENTS].folder(hearing["id"])


async def _log(api: Api, hearing_id: str, count: int, event: EventType = EventType.PARTY_MUTED) -> None:
    for index in range(count):
        await api.app[EVENTS].record(hearing_id, event, actor="clerk", details={"n": index})


def _signed(folder: Path) -> list[int]:
    return [i.checkpoint.seq for i in read_checkpoints(folder) if i.checkpoint is not None]


async def _end(api: Api, hearing_id: str) -> None:
    await _log(api, hearing_id, 1, EventType.HEARING_ENDED)
    async with api.db() as db, db.begin():
        await db.execute(update(Hearing).where(Hearing.id == hearing_id).values(status="ended"))


async def _rewrite_mirror(api: Api, folder: Path, hearing_id: str) -> None:
    """Someone who can also write the database brings its mirror in line with the rewritten file."""
    async with api.db() as db, db.begin():
        for entry in read_chain(folder / LOG_FILE_NAME):
            await db.execute(
                update(HearingEvent)
                .where(HearingEvent.hearing_id == hearing_id, HearingEvent.seq == entry["seq"])
                .values(hash=entry["hash"], prev_hash=entry["prev_hash"], details=entry["details"])
            )


def _rewrite_consistently(folder: Path, change_seq: int) -> None:
    path = folder / LOG_FILE_NAME
    entries = read_chain(path)
    entries[change_seq - 1]["details"] = {"n": "rewritten"}
    previous, lines = GENESIS_HASH, []
    for entry in entries:
        entry["prev_hash"] = previous
        entry["hash"] = previous = entry_hash(entry)
        lines.append(canonical_json(entry) + b"\n")
    path.write_bytes(b"".join(lines))
    assert verify_chain(path).valid


async def test_live_logs_are_signed_and_an_honest_hearing_seals_with_its_checkpoints(
    make_api: MakeApi,
) -> None:
    api = await make_api(checkpoint_entries=5, checkpoint_interval_s=0.5)
    hearing_id, folder = await _hearing(api)
    first = len(read_chain(folder / LOG_FILE_NAME))  # what scheduling logged
    await _log(api, hearing_id, 5 - first + 5)  # up to seq 10: signed at 5 and 10
    assert _signed(folder) == [5, 10]
    await _log(api, hearing_id, 1, EventType.RECESS_CALLED)  # a recess is signed at once
    assert _signed(folder) == [5, 10, 11]
    await _log(api, hearing_id, 1)  # seq 12, then quiet: the sweep signs it after the interval
    for _ in range(60):
        if _signed(folder)[-1] == 12:
            break
        await asyncio.sleep(0.1)
    assert _signed(folder) == [5, 10, 11, 12]
    await _end(api, hearing_id)  # the end is signed at once
    assert _signed(folder) == [5, 10, 11, 12, 13]

    outcome = await api.app[SEALER].seal(hearing_id)
    assert (outcome.folder / MANIFEST_NAME).exists()
    report = verify_hearing(folder, api.app[SEALER]._config.court_cert_path)
    assert report.valid, [p.describe() for p in report.problems]
    assert report.log_entries == 14 and _signed(folder) == [5, 10, 11, 12, 13]  # nothing after the seal


async def test_a_log_rewritten_behind_a_checkpoint_is_not_sealed(make_api: MakeApi) -> None:
    api = await make_api(checkpoint_entries=5, checkpoint_interval_s=30)
    hearing_id, folder = await _hearing(api)
    await _log(api, hearing_id, 8)
    await _end(api, hearing_id)
    assert _signed(folder)[0] == 5
    # Rewritten while the server does not hold the file (as after a restart): the chain resumes from it.
    await api.app[EVENTS].close_log(hearing_id)
    _rewrite_consistently(folder, change_seq=3)
    with pytest.raises(Conflict, match="entry 3 differs from its database mirror"):
        await api.app[SEALER].seal(hearing_id)  # the file alone: the database mirror anchors it
    await _rewrite_mirror(api, folder, hearing_id)
    with pytest.raises(Conflict) as refused:
        await api.app[SEALER].seal(hearing_id)
    assert refused.value.code == "seal_failed"
    assert "seq 5" in str(refused.value) and "differs from the one the court signed" in str(refused.value)
    assert not (folder / MANIFEST_NAME).exists()
    async with api.db() as db:
        assert (await db.get(Hearing, hearing_id)).status == "ended"  # type: ignore[union-attr]


async def test_a_log_whose_checkpoints_were_removed_is_not_sealed(make_api: MakeApi) -> None:
    api = await make_api(checkpoint_entries=5, checkpoint_interval_s=30)
    hearing_id, folder = await _hearing(api)
    await _log(api, hearing_id, 8)
    await _end(api, hearing_id)
    await api.app[EVENTS].close_log(hearing_id)
    (folder / CHECKPOINTS_NAME).unlink()
    _rewrite_consistently(folder, change_seq=3)
    await _rewrite_mirror(api, folder, hearing_id)
    with pytest.raises(Conflict, match="lost the checkpoint"):
        await api.app[SEALER].seal(hearing_id)
    assert not (folder / MANIFEST_NAME).exists()
