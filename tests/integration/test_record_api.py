"""The record endpoints: the growing confirmation log, the record's status, and sealing by hand."""

from __future__ import annotations

from typing import Any

from integration_harness import LiveServer
from sqlalchemy import update

from hearing_server.store.db import SESSIONS
from hearing_server.store.models import Hearing
from recording.seal import MANIFEST_NAME, SIGNATURE_NAME


async def test_the_log_grows_page_by_page_and_an_ended_hearing_is_sealed_by_hand(
    make_live_server: Any,
) -> None:
    server: LiveServer = await make_live_server()
    api = server.api
    hearing_id = (await api.schedule())["id"]
    await api.invite(hearing_id, "Aliya Witness")

    page = await api.ok("GET", f"/hearings/{hearing_id}/events")
    events = [e["event"] for e in page["items"]]
    assert events == ["hearing_scheduled", "party_added", "party_invited"]
    assert page["last_seq"] == 3 and page["items"][2]["details"]["user_agent"] == api.user_agent
    later = await api.ok("GET", f"/hearings/{hearing_id}/events", after_seq=2, limit=5)
    assert [e["seq"] for e in later["items"]] == [3]
    assert (await api.ok("GET", f"/hearings/{hearing_id}/events", after_seq=3))["items"] == []
    status, _ = await api.call("GET", f"/hearings/{hearing_id}/events", after_seq=-1)
    assert status == 400

    record = await api.record(hearing_id)
    assert record["status"] == "scheduled" and record["seal"] == {**record["seal"], "sealed": False}
    assert record["recording"]["status"] == "off" and record["playback"]["state"] == "none"
    assert [f["path"] for f in record["files"]] == ["confirmation-log.jsonl"]
    status, body = await api.call("POST", f"/hearings/{hearing_id}/seal")
    assert (status, body["error"]["code"]) == (409, "not_ended")

    # The hearing ended but the automatic seal never came (say the server died first), and half a seal
    # was left behind: sealing by hand replaces it with a whole one.
    async with server.app[SESSIONS]() as db:
        await db.execute(update(Hearing).where(Hearing.id == hearing_id).values(status="ended"))
        await db.commit()
    folder = server.folder(record["folder"])
    (folder / MANIFEST_NAME).write_text('{"not": "signed"}')
    sealed = await api.ok("POST", f"/hearings/{hearing_id}/seal")
    assert sealed["status"] == "sealed" and sealed["seal"]["valid"] is True, sealed["seal"]
    assert (
        sealed["seal"]["signer_trusted"] is True
        and "CN=Development Court" in sealed["seal"]["signer_subject"]
    )
    assert {MANIFEST_NAME, SIGNATURE_NAME} <= {f["path"] for f in sealed["files"]}
    log = await api.events(hearing_id)
    assert log[-1]["event"] == "hearing_sealed" and log[-1]["actor"] == "clerk"
    status, body = await api.call("POST", f"/hearings/{hearing_id}/seal")
    assert (status, body["error"]["code"]) == (409, "not_ended")

    # Checked again whenever a file changes.
    with (folder / "confirmation-log.jsonl").open("a") as f:
        f.write("{}\n")
    broken = (await api.record(hearing_id))["seal"]
    assert broken["valid"] is False and {p["kind"] for p in broken["problems"]} >= {"log_broken"}
