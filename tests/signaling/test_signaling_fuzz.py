"""Hostile messages from an admitted party: each gets one known error, and the hearing carries on."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from signaling_harness import Bench, WsPeer

from signaling.protocol import ErrorCode

LIMIT = 4096  # ws_max_message_bytes of the fuzzed server
KNOWN_CODES = {code.value for code in ErrorCode} - {ErrorCode.INTERNAL_ERROR.value}

# A valid example of every client message; the strategies below break them.
TEMPLATES: dict[str, dict[str, Any]] = {
    "join": {"token": "A" * 43},
    "show_notice": {"language": "kk"},
    "confirm_notice": {"language": "kk", "notice_sha256": "0" * 64},
    "ready": {},
    "publish_offer": {"sdp": "v=0"},
    "subscribe_answer": {"sdp": "v=0"},
    "mute_self": {"kind": "audio", "muted": True},
    "set_audio_only": {"audio_only": True},
    "leave": {},
    "ping": {},
    "open_waiting_room": {},
    "admit": {"party_id": "p"},
    "deny": {"party_id": "p"},
    "start": {},
    "mute": {"party_id": "p", "kind": "audio"},
    "unmute": {"party_id": "p", "kind": "video"},
    "request_unmute": {"party_id": "p"},
    "remove": {"party_id": "p"},
    "recess": {},
    "resume": {},
    "end": {},
}
BOOL_FIELDS = {"muted", "audio_only"}
CHOICES = {"language": {"kk", "ru", "en"}, "kind": {"audio", "video"}}
MAX_CHARS = {
    "token": 128,
    "party_id": 128,
    "sdp": 65536,
    "ref": 64,
    "notice_sha256": 64,
    "language": 2,
    "kind": 5,
}
OPERATOR_ONLY = [
    "open_waiting_room",
    "admit",
    "deny",
    "start",
    "mute",
    "unmute",
    "request_unmute",
    "remove",
    "end",
]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=16),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def _message(kind: str, fields: dict[str, Any]) -> str:
    return json.dumps({"type": kind, **fields})


@st.composite
def missing_field(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from([k for k, v in TEMPLATES.items() if v and k != "request_unmute"]))
    fields = dict(TEMPLATES[kind])
    del fields[draw(st.sampled_from(sorted(fields)))]
    return _message(kind, fields)


@st.composite
def wrong_type(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from([k for k, v in TEMPLATES.items() if v]))
    fields = dict(TEMPLATES[kind])
    name = draw(st.sampled_from(sorted(fields)))
    if name in BOOL_FIELDS:
        value = draw(json_values.filter(lambda v: not isinstance(v, bool)))
    elif name in CHOICES:
        value = draw(json_values.filter(lambda v: not (isinstance(v, str) and v in CHOICES[name])))
    else:
        value = draw(json_values.filter(lambda v: not isinstance(v, str)))
    fields[name] = value
    return _message(kind, fields)


@st.composite
def extra_field(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(sorted(TEMPLATES)))
    fields = dict(TEMPLATES[kind])
    name = draw(
        st.text(min_size=1, max_size=12).filter(lambda n: n not in fields and n not in {"type", "ref"})
    )
    fields[name] = draw(json_values)
    return _message(kind, fields)


@st.composite
def huge_string(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from([k for k, v in TEMPLATES.items() if any(f not in BOOL_FIELDS for f in v)]))
    fields = dict(TEMPLATES[kind])
    name = draw(st.sampled_from(sorted(f for f in fields if f not in BOOL_FIELDS)))
    char = draw(st.sampled_from(["x", "я", "\u0000", "\ud7ff"]))
    cost = len(json.dumps(char)) - 2  # bytes per character on the wire (non-ASCII is escaped)
    # longer than the field allows, yet under twice the message limit (beyond that the socket is closed)
    most = (LIMIT * 3 // 2 - 200) // cost
    size = draw(st.integers(min_value=min(MAX_CHARS[name] + 1, LIMIT // cost + 1), max_value=most))
    fields[name] = char * size
    return _message(kind, fields)


@st.composite
def long_ref(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(sorted(TEMPLATES)))
    ref = draw(
        st.one_of(st.text(min_size=65, max_size=200), json_values.filter(lambda v: not isinstance(v, str)))
    )
    return _message(kind, {**TEMPLATES[kind], "ref": ref})


def bad_type_tag() -> st.SearchStrategy[str]:
    tag = st.one_of(json_values.filter(lambda v: not isinstance(v, str)), st.text(max_size=20))
    return st.builds(
        lambda t, rest: json.dumps({"type": t, **rest}),
        tag.filter(lambda t: not (isinstance(t, str) and t in TEMPLATES)),
        st.dictionaries(st.text(max_size=6).filter(lambda k: k != "type"), json_values, max_size=3),
    )


def not_an_object() -> st.SearchStrategy[str]:
    broken = st.text(max_size=40).map(lambda t: "{" + t)
    return st.one_of(json_values.filter(lambda v: not isinstance(v, dict)).map(json.dumps), broken)


def out_of_order() -> st.SearchStrategy[str]:
    valid_but_wrong = [
        _message(kind, TEMPLATES[kind])
        for kind in [*OPERATOR_ONLY, "join", "ready", "confirm_notice", "show_notice"]
    ]
    return st.one_of(
        st.sampled_from(valid_but_wrong),
        st.text(max_size=200).map(lambda t: _message("publish_offer", {"sdp": "garbage " + t})),
    )


hostile_messages = st.one_of(
    missing_field(),
    wrong_type(),
    extra_field(),
    huge_string(),
    long_ref(),
    bad_type_tag(),
    not_an_object(),
    out_of_order(),
)


@dataclass
class FuzzedHearing:
    bench: Bench
    operator: WsPeer
    bystander: WsPeer
    fuzzer: WsPeer
    rounds: int = 0


@pytest.fixture
async def fuzzed(make_bench: Callable[..., Awaitable[Bench]]) -> FuzzedHearing:
    bench = await make_bench(ws_messages_per_s=10000.0, ws_max_message_bytes=LIMIT)
    await bench.make_hearing()
    operator = await bench.operator(await bench.make_staff())
    peers = []
    for name in ("Bystander", "Fuzzer"):
        party_id, token = await bench.make_party(name)
        peer = await bench.waiting_party(token)
        await operator.send("admit", party_id=party_id)
        await peer.expect_state("in_hearing")
        peers.append(peer)
    return FuzzedHearing(bench, operator, peers[0], peers[1])


async def _until_pong(peer: WsPeer, ref: str) -> list[dict[str, Any]]:
    """Every error the peer gets before the pong answering ``ref``."""
    errors = []
    while True:
        message = await peer._next(5.0)
        if message["type"] == "error":
            errors.append(message)
        if message["type"] == "pong" and message.get("ref") == ref:
            return errors


@settings(
    derandomize=True,
    max_examples=100,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(text=hostile_messages)
async def test_hostile_messages_get_one_known_error_and_the_hearing_carries_on(
    fuzzed: FuzzedHearing, text: str
) -> None:
    fuzzed.rounds += 1
    ref = f"sync-{fuzzed.rounds}"
    await fuzzed.fuzzer.send_raw(text)
    await fuzzed.fuzzer.send("ping", ref=ref)
    errors = await _until_pong(fuzzed.fuzzer, ref)
    assert len(errors) == 1, (text[:200], errors)
    assert errors[0]["code"] in KNOWN_CODES, (text[:200], errors)

    # everyone else is unaffected: the courtroom's own change still reaches the bystander
    muted = fuzzed.rounds % 2 == 1
    await fuzzed.operator.send("mute_self", kind="video", muted=muted)

    def courtroom_video_muted(message: dict[str, Any]) -> bool:
        courtroom = next(p for p in message["participants"] if p["role"] == "courtroom")
        return ("video" in courtroom["muted"]) == muted

    await fuzzed.bystander.expect("state", courtroom_video_muted)
