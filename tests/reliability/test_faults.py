"""Injected faults during a live hearing with real media: a party's network dropping, the database going away.

* A drop shorter than the reconnect grace: the party comes back with its link straight into the hearing
  (no second admission), and its media reaches the courtroom again.
* A drop longer than the grace (``reconnect_grace_s`` made small): the party has clearly ``left`` and
  must go through the notice and the waiting room again.
* The database unreachable for a few seconds (sessions fail with ``OperationalError``): media carries on,
  every event is in the hearing's confirmation log, the database mirror catches up, staff are alerted.

Drop lengths: ``HEARING_DROP_SECONDS`` (default ``2,10``). Run inside a loopback-only namespace.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import pytest
from live_media import (
    MediaBrowser,
    hearing_folder,
    log_verifies,
    until,
)
from media_harness import make_clip
from signaling_harness import Bench, WsPeer, types_of
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hearing_server.record.event_log import EVENTS
from hearing_server.record.playback import PlaybackJobs
from hearing_server.store.db import SESSIONS
from media.aiortc_adapter import install_host_addresses, uninstall_host_addresses
from media.contract import MediaSettings
from recording.hashchain import read_chain
from signaling.live import default_media_factory

pytestmark = [pytest.mark.media, pytest.mark.slow]

DROPS = [float(s) for s in os.environ.get("HEARING_DROP_SECONDS", "2,10").split(",") if s.strip()]


class DatabaseOutage:
    """Makes every session of the app's session factory fail as if the database were unreachable.

    The factory is shared by the REST API, the event recorder and the live hearings, so switching its
    session class reaches them all; ``down`` is the switch.
    """

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.down = False
        self.refused = 0
        outage = self
        original = sessions.class_

        def _check() -> None:
            if outage.down:
                outage.refused += 1
                raise OperationalError("(injected)", {}, ConnectionRefusedError("database unreachable"))

        class UnreachableSession(original):  # type: ignore[misc, valid-type]
            async def execute(self, *args: Any, **kwargs: Any) -> Any:
                _check()
                return await super().execute(*args, **kwargs)

            async def get(self, *args: Any, **kwargs: Any) -> Any:
                _check()
                return await super().get(*args, **kwargs)

            async def commit(self) -> None:
                _check()
                await super().commit()

            async def flush(self, *args: Any, **kwargs: Any) -> None:
                _check()
                await super().flush(*args, **kwargs)

        sessions.class_ = UnreachableSession


async def _admitted(bench: Bench, operator: WsPeer, name: str) -> tuple[str, str, WsPeer]:
    party_id, token = await bench.make_party(name)
    peer = await bench.waiting_party(token)
    await operator.send("admit", party_id=party_id)
    await peer.expect_state("in_hearing")
    return party_id, token, peer


async def _live(bench: Bench) -> tuple[WsPeer, MediaBrowser, str, str, MediaBrowser, str]:
    """A started hearing: courtroom and witness exchanging media."""
    operator = await bench.operator(await bench.make_staff())
    await operator.send("open_waiting_room")
    courtroom_id = next(m for m in operator.seen if m["type"] == "hearing")["you"]["participant_id"]
    witness_id, token, peer = await _admitted(bench, operator, "Witness")
    courtroom, witness = MediaBrowser(operator, make_clip(0)), MediaBrowser(peer, make_clip(1))
    await courtroom.publish()
    await witness.publish()
    await operator.send("start")
    await until(lambda: courtroom.count(witness_id) > 10 and witness.count(courtroom_id) > 10, 20, "media")
    return operator, courtroom, courtroom_id, witness_id, witness, token


@pytest.mark.parametrize("seconds", DROPS)
async def test_a_drop_within_the_grace_needs_no_readmission(media_bench: Bench, seconds: float) -> None:
    bench = media_bench
    operator, courtroom, courtroom_id, witness_id, witness, token = await _live(bench)
    try:
        await witness.drop()
        await asyncio.sleep(seconds)
        room = bench.live().get(bench.hearing_id)
        assert room.participant(witness_id).state.value == "disconnected"
        before = courtroom.count(witness_id)

        back = MediaBrowser(await bench.party(token), make_clip(1))
        hearing = next(m for m in back.peer.seen if m["type"] == "hearing")
        assert hearing["you"]["state"] == "in_hearing", hearing["you"]  # straight back in
        await back.publish()
        await until(lambda: courtroom.count(witness_id) > before + 15, 15, "media after the reconnect")
        await until(lambda: back.count(courtroom_id) > 15, 15, "courtroom media at the returning party")
        witness = back
    finally:
        await witness.close()
        await courtroom.close()
    events = types_of(await bench.events())
    assert events.count("party_admitted") == 1, events
    assert "party_disconnected" in events and "party_reconnected" in events
    assert "party_left" not in events
    await log_verifies(bench, bench.hearing_id)


async def test_beyond_the_grace_the_party_has_left_and_must_be_admitted_again(
    make_bench: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(PlaybackJobs, "enqueue", lambda self, folder, **kwargs: None)
    bench = await make_bench(media_factory=default_media_factory, reconnect_grace_s=3.0)
    await bench.make_hearing()
    install_host_addresses(MediaSettings(host_addresses=["127.0.0.1"]))
    try:
        operator, courtroom, courtroom_id, witness_id, witness, token = await _live(bench)
        try:
            await witness.drop()
            await asyncio.sleep(4.0)
            assert bench.live().get(bench.hearing_id).participant(witness_id) is None

            def listed() -> set[str]:
                latest = [m for m in courtroom.messages if m["type"] == "state"][-1]
                return {p["id"] for p in latest["participants"] + latest.get("waiting", [])}

            # the courtroom sees the party gone (its state message follows the removal on the socket)
            await until(lambda: witness_id not in listed(), 5, "the courtroom's state without the party")
            back = await bench.party(token)
            hearing = next(m for m in back.seen if m["type"] == "hearing")
            assert hearing["you"]["state"] == "link_opened", hearing["you"]  # notice and waiting room again
            assert hearing.get("notice"), "the notice is shown again"
            await back.close()
        finally:
            await courtroom.close()
    finally:
        uninstall_host_addresses()
    events = await bench.events()
    left = [e for e in events if e.event == "party_left"]
    assert left and left[-1].details.get("reason") == "reconnect_grace_expired", [e.event for e in events]
    await log_verifies(bench, bench.hearing_id)


async def test_the_database_away_for_seconds_loses_no_event_and_media_carries_on(media_bench: Bench) -> None:
    bench = media_bench
    outage = DatabaseOutage(bench.app[SESSIONS])
    operator, courtroom, courtroom_id, witness_id, witness, _token = await _live(bench)
    _third_id, third_token, third = await _admitted(bench, operator, "Third")
    try:
        entries_before = len(
            read_chain((await hearing_folder(bench, bench.hearing_id)) / "confirmation-log.jsonl")
        )
        outage.down = True
        down_at = time.monotonic()
        # during the outage: a party mutes itself, another one's network drops, someone new tries a link
        await witness.peer.send("mute_self", kind="audio", muted=True)
        await third.ws.close()
        stranger = await bench.connect()
        await stranger.send("join", token="A" * 43)
        refused = await stranger.expect("error", within=5)
        assert refused["code"] in {"internal_error", "invitation_invalid"}, refused
        await until(
            lambda: any(m["type"] == "alert" for m in courtroom.messages), 5, "an alert to the courtroom"
        )
        alert = next(m for m in courtroom.messages if m["type"] == "alert")
        assert alert["code"] == "database_unavailable", alert
        await asyncio.sleep(3.0)
        outage.down = False
        assert outage.refused > 0
        assert courtroom.longest_gap(witness_id, down_at) < 1.0, "media stalled during the outage"

        # after: the third party comes back within the grace; the mirror catches up
        back = await bench.party(third_token)
        assert next(m for m in back.seen if m["type"] == "hearing")["you"]["state"] == "in_hearing"
        assert await bench.app[EVENTS].flush_mirror()
        await back.close()
        await stranger.close()
    finally:
        outage.down = False
        await witness.close()
        await courtroom.close()

    await asyncio.sleep(1.0)  # the closed connections' last events are being written
    assert await bench.app[EVENTS].flush_mirror()
    chain = read_chain((await hearing_folder(bench, bench.hearing_id)) / "confirmation-log.jsonl")
    during = [e["event"] for e in chain[entries_before:]]
    assert "party_muted" in during and "party_disconnected" in during, during
    mirrored = await bench.events()
    assert [e.seq for e in mirrored] == [e["seq"] for e in chain], "the database mirror has a gap"
    assert [e.hash for e in mirrored] == [e["hash"] for e in chain]
    await log_verifies(bench, bench.hearing_id)
