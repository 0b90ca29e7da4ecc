"""A party's way in and the operator's controls, over real WebSockets with a recording fake media router."""

from __future__ import annotations

import asyncio
import hashlib

from signaling_harness import Bench, types_of

from hearing_server.store.models import Hearing, Party
from media.contract import LinkQuality
from signaling.notice import render_notice


async def test_party_flow_from_link_to_hearing_is_recorded_in_order(bench: Bench) -> None:
    cookie = await bench.make_staff()
    operator = await bench.operator(cookie)
    await operator.send("open_waiting_room")
    await operator.expect("state", lambda m: m["hearing"]["status"] == "open")

    party_id, token = await bench.make_party("Aigerim Witness")
    party = await bench.connect(user_agent="PartyPhone/1.0")
    await party.send("join", token=token, language="kk")
    hearing = await party.expect("hearing")
    assert hearing["hearing"]["case_number"] == "2-345/2025"
    assert hearing["hearing"]["court"] == "Almaty District Court No. 2"
    assert hearing["hearing"]["timezone"] == "Asia/Almaty"
    assert hearing["hearing"]["scheduled_start"].endswith("Z")
    assert hearing["you"] == {
        "participant_id": party_id,
        "role": "witness",
        "name": "Aigerim Witness",
        "state": "link_opened",
        "operator": False,
    }
    notice = hearing["notice"]
    assert notice["language"] == "kk"
    assert "2-345/2025" in notice["text"] and "Жазба туралы хабарлама" in notice["text"]
    assert notice["sha256"] == hashlib.sha256(notice["text"].encode("utf-8")).hexdigest()
    assert hearing["media"]["ice_servers"] == []

    # the operator sees the party arrive in the waiting room list
    await operator.expect("state", lambda m: [w["state"] for w in m["waiting"]] == ["link_opened"])

    await party.send("confirm_notice", language="kk", notice_sha256="0" * 64, ref="c1")
    error = await party.expect_error("notice_mismatch")
    assert error["ref"] == "c1"
    await party.send("confirm_notice", language="ru", notice_sha256=notice["sha256"])
    await party.expect_error("notice_mismatch")  # the Russian notice was never shown
    await party.send("ready")
    await party.expect_error("invalid_state")  # not confirmed yet

    await party.send("confirm_notice", language="kk", notice_sha256=notice["sha256"])
    await party.expect_state("confirmed")
    await party.send("ready")
    waiting = await party.expect_state("waiting")
    assert waiting["participants"] == []  # a waiting party does not see who is inside
    assert "waiting" not in waiting

    seen = await operator.expect("state", lambda m: [w["state"] for w in m["waiting"]] == ["waiting"])
    assert seen["waiting"][0]["id"] == party_id
    await operator.send("admit", party_id=party_id)
    inside = await party.expect_state("in_hearing")
    assert {p["role"] for p in inside["participants"]} == {"courtroom", "witness"}
    await operator.expect("state", lambda m: m["waiting"] == [] and len(m["participants"]) == 2)
    assert (await bench.row(Party, party_id)).state == "in_hearing"

    events = await bench.events()
    party_events = [e for e in events if e.party_id == party_id]
    assert types_of(party_events) == [
        "link_opened",
        "notice_shown",
        "notice_confirmed",
        "party_waiting",
        "party_admitted",
        "party_joined",
    ]
    shown, confirmed = party_events[1], party_events[2]
    assert shown.details["language"] == "kk" and shown.details["notice_sha256"] == notice["sha256"]
    assert confirmed.details["notice_sha256"] == notice["sha256"]
    assert (
        render_notice("kk", case_number="2-345/2025", court="Almaty District Court No. 2").sha256
        == notice["sha256"]
    )
    for event in party_events:
        assert event.details["ip"] == "127.0.0.1"
    assert party_events[0].details["user_agent"] == "PartyPhone/1.0"
    assert party_events[4].details["user_agent"] == "CourtroomPC/1.0"  # admitted by the operator
    assert party_events[4].actor.startswith("user:") and party_events[0].actor == f"party:{party_id}"
    assert [e.seq for e in events] == list(range(1, len(events) + 1))


async def test_show_notice_in_another_language_then_confirm_it(bench: Bench) -> None:
    _party_id, token = await bench.make_party("Ivan")
    party = await bench.party(token)
    first = next(m for m in party.seen if m["type"] == "hearing")["notice"]
    assert first["language"] == "ru"  # the hearing's default
    await party.send("show_notice", language="en", ref="n1")
    english = await party.expect("notice")
    assert english["ref"] == "n1" and english["text"].startswith("Recording notice")
    await party.send("confirm_notice", language="en", notice_sha256=english["sha256"])
    await party.expect_state("confirmed")
    shown = [e for e in await bench.events() if e.event == "notice_shown"]
    assert [e.details["language"] for e in shown] == ["ru", "en"]


async def test_deny_closes_the_party_and_is_recorded(bench: Bench) -> None:
    operator = await bench.operator(await bench.make_staff())
    party_id, token = await bench.make_party("Denied Person")
    party = await bench.waiting_party(token)
    await operator.send("deny", party_id=party_id)
    await party.expect("denied")
    assert await party.expect_closed() == 4003
    await operator.expect("state", lambda m: m["waiting"] == [])
    assert (await bench.row(Party, party_id)).state == "denied"
    assert types_of(await bench.events())[-1] == "party_denied"


async def test_remove_revokes_the_link(bench: Bench) -> None:
    operator = await bench.operator(await bench.make_staff())
    party_id, token = await bench.make_party("Removed Person")
    party = await bench.waiting_party(token)
    await operator.send("admit", party_id=party_id)
    await party.expect_state("in_hearing")
    await party.send("publish_offer", sdp="v=0 offer")
    assert (await party.expect("publish_answer"))["sdp"] == f"answer-for-{party_id}"

    await operator.send("remove", party_id=party_id)
    await party.expect("removed")
    assert await party.expect_closed() == 4001
    assert ("leave", party_id) in bench.router.calls
    assert all(inv.revoked_at is not None for inv in await bench.invitations(party_id))
    assert (await bench.row(Party, party_id)).state == "removed"
    removed = [e for e in await bench.events() if e.event == "party_removed"]
    assert removed[0].details["invitations_revoked"] == 1

    again = await bench.connect()
    await again.send("join", token=token)
    await again.expect_error("invitation_revoked")
    assert await again.expect_closed() == 4004


async def test_mute_reaches_the_party_and_the_router(bench: Bench) -> None:
    operator = await bench.operator(await bench.make_staff())
    party_id, token = await bench.make_party("Loud Person")
    party = await bench.waiting_party(token)
    await operator.send("admit", party_id=party_id)
    await party.expect_state("in_hearing")
    await party.send("publish_offer", sdp="v=0 offer")
    await party.expect("publish_answer")
    offer = await party.expect("subscribe_offer")
    assert offer["sdp"] == f"offer-for-{party_id}" and offer["tracks"][0]["kind"] == "audio"
    await party.send("subscribe_answer", sdp="v=0 answer")

    await operator.send("mute", party_id=party_id, kind="audio")
    muted = await party.expect("muted")
    assert muted == {"type": "muted", "kind": "audio", "muted": True, "by": "court"}
    state = await party.expect_state("in_hearing", muted=lambda m: m["you"]["muted_by_court"] == ["audio"])
    assert state["you"]["muted"] == ["audio"]
    assert bench.router.muted[party_id] == {"audio"}

    await party.send("mute_self", kind="audio", muted=False)
    await party.expect_error("forbidden")  # the court's mute holds
    assert bench.router.muted[party_id] == {"audio"}

    await operator.send("request_unmute", party_id=party_id)
    assert (await party.expect("unmute_requested"))["kind"] == "audio"
    await operator.send("unmute", party_id=party_id, kind="audio")
    assert (await party.expect("muted"))["muted"] is False
    await party.expect_state("in_hearing", unmuted=lambda m: m["you"]["muted"] == [])
    assert bench.router.muted[party_id] == set()

    await party.send("mute_self", kind="video", muted=True)
    await operator.expect("state", lambda m: any(p["muted"] == ["video"] for p in m["participants"]))
    assert bench.router.muted[party_id] == {"video"}
    await party.send("set_audio_only", audio_only=True)
    await party.send("mute_self", kind="video", muted=False)
    await party.send("ping", ref="sync")
    await party.expect("pong")  # a connection's messages are handled in order
    assert bench.router.muted[party_id] == {"video"}  # audio-only still keeps video off

    events = [
        e for e in await bench.events() if e.event in {"party_muted", "party_unmuted", "unmute_requested"}
    ]
    assert [(e.event, e.details.get("kind"), e.details.get("by")) for e in events] == [
        ("party_muted", "audio", "court"),
        ("unmute_requested", "audio", None),
        ("party_unmuted", "audio", "court"),
        ("party_muted", "video", "self"),
        ("party_muted", "video", "audio_only"),
        ("party_unmuted", "video", "self"),
    ]


async def test_start_recess_resume_end(bench: Bench) -> None:
    operator = await bench.operator(await bench.make_staff())
    await operator.send("open_waiting_room")
    party_id, token = await bench.make_party("Plaintiff", role="plaintiff")
    party = await bench.waiting_party(token)
    await operator.send("admit", party_id=party_id)
    await party.expect_state("in_hearing")
    await operator.send("publish_offer", sdp="v=0 courtroom")
    await operator.expect("publish_answer")
    assert bench.router.paused is True  # nothing forwarded before the start

    await operator.send("start")
    await party.expect("state", lambda m: m["hearing"]["status"] == "in_session")
    assert bench.router.paused is False
    hearing = await bench.row(Hearing, bench.hearing_id)
    assert hearing.status == "in_session" and hearing.started_at is not None

    await operator.send("resume")
    await operator.expect_error("invalid_state")
    await operator.send("recess")
    await party.expect("state", lambda m: m["hearing"]["status"] == "recess")
    assert bench.router.paused is True
    await operator.send("resume")
    await party.expect("state", lambda m: m["hearing"]["status"] == "in_session")
    assert bench.router.paused is False

    await operator.send("end")
    await party.expect("hearing_ended")
    await operator.expect("hearing_ended")
    assert await party.expect_closed() == 4000
    assert await operator.expect_closed() == 4000
    assert bench.router.closed
    hearing = await bench.row(Hearing, bench.hearing_id)
    assert hearing.status in ("ended", "sealed") and hearing.ended_at is not None  # sealed right after
    assert (await bench.row(Party, party_id)).state == "left"
    kinds = types_of(await bench.events())
    assert kinds.index("hearing_started") < kinds.index("recess_called") < kinds.index("hearing_resumed")
    # The recording follows the hearing: started with it, paused for the recess, closed after the end.
    assert kinds.index("recording_started") < kinds.index("hearing_started")
    assert kinds.index("recess_called") < kinds.index("recording_stopped") < kinds.index("hearing_resumed")
    # The files are closed just after everyone was told the hearing ended.
    for _ in range(100):
        if kinds[-1] != "hearing_ended":
            break
        await asyncio.sleep(0.05)
        kinds = types_of(await bench.events())
    assert kinds[kinds.index("hearing_ended") + 1 :][:1] == ["recording_stopped"]
    assert bench.live().get(bench.hearing_id) is None

    late = await bench.connect()
    await late.send("join", token=token)
    await late.expect_error("invitation_expired")  # the hearing is over


async def test_quality_reaches_the_operator(bench: Bench) -> None:
    operator = await bench.operator(await bench.make_staff())
    await operator.send("open_waiting_room")
    await operator.send("publish_offer", sdp="v=0 courtroom")
    await operator.expect("publish_answer")
    quality = await operator.expect("quality", within=4)
    assert quality["participants"][0]["rtt_ms"] == 12.5


async def test_weak_link_reaches_the_party_and_the_operator(bench: Bench) -> None:
    operator = await bench.operator(await bench.make_staff())
    await operator.send("open_waiting_room")
    await operator.send("publish_offer", sdp="v=0 courtroom")
    await operator.expect("publish_answer")
    courtroom_id = bench.router.priority
    assert courtroom_id is not None  # the courtroom's video is the one congested subscribers keep
    party_id, token = await bench.make_party("Far Away")
    party = await bench.waiting_party(token)
    await operator.send("admit", party_id=party_id)
    await party.expect_state("in_hearing")
    await party.send("publish_offer", sdp="v=0 offer")
    await party.expect("publish_answer")
    assert bench.router.priority == courtroom_id

    bench.router.events.link_quality_changed(party_id, LinkQuality(12.0, 480.0, 310.0, True, True))
    told = await party.expect("link_quality")
    assert told["video_paused"] is True and told["all_video_paused"] is True
    warned = await operator.expect("link_quality")
    assert warned["participant_id"] == party_id and warned["loss_pct"] == 12.0 and warned["rtt_ms"] == 480.0
    bench.router.events.link_quality_changed(party_id, LinkQuality(0.5, 60.0, 900.0, False, False))
    assert (await party.expect("link_quality"))["video_paused"] is False
    assert (await operator.expect("link_quality"))["video_paused"] is False
