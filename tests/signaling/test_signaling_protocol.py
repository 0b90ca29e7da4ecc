"""Message parsing, the recording notices and the rate limiter, without a server."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from signaling.notice import notice_template, render_notice
from signaling.protocol import (
    CLIENT_MESSAGES,
    ErrorCode,
    Join,
    MessageParser,
    MuteSelf,
    ProtocolError,
    message_type,
)
from signaling.session import TokenBucket

PROTOCOL_DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"


def test_join_as_staff_and_as_party() -> None:
    parser = MessageParser()
    staff = parser.parse('{"type":"join","hearing_id":"h1","as":"courtroom","ref":"r"}')
    assert isinstance(staff, Join) and staff.as_ == "courtroom" and staff.ref == "r"
    party = parser.parse('{"type":"join","token":"' + "t" * 43 + '","language":"en"}')
    assert isinstance(party, Join) and party.token == "t" * 43 and party.language == "en"


@pytest.mark.parametrize(
    ("text", "code", "field"),
    [
        ("not json", ErrorCode.BAD_JSON, None),
        ("[1,2]", ErrorCode.BAD_JSON, None),
        ("[" * 100000, ErrorCode.BAD_JSON, None),
        ('{"kind":"audio"}', ErrorCode.UNKNOWN_TYPE, None),
        ('{"type":"shout"}', ErrorCode.UNKNOWN_TYPE, None),
        ('{"type":["join"]}', ErrorCode.UNKNOWN_TYPE, None),
        ('{"type":"admit"}', ErrorCode.INVALID_MESSAGE, "party_id"),
        ('{"type":"mute_self","kind":"audio","muted":"yes"}', ErrorCode.INVALID_MESSAGE, "muted"),
        ('{"type":"mute_self","kind":"audio","muted":1}', ErrorCode.INVALID_MESSAGE, "muted"),
        ('{"type":"mute_self","kind":"screen","muted":true}', ErrorCode.INVALID_MESSAGE, "kind"),
        ('{"type":"ping","extra":1}', ErrorCode.INVALID_MESSAGE, "extra"),
        ('{"type":"ping","ref":"' + "r" * 65 + '"}', ErrorCode.INVALID_MESSAGE, "ref"),
        ('{"type":"join","token":"short"}', ErrorCode.INVALID_MESSAGE, "token"),
        ('{"type":"join","token":"' + "t" * 43 + '","as":"courtroom"}', ErrorCode.INVALID_MESSAGE, None),
        ('{"type":"join","hearing_id":"h"}', ErrorCode.INVALID_MESSAGE, None),
        (
            '{"type":"confirm_notice","language":"kk","notice_sha256":"XYZ"}',
            ErrorCode.INVALID_MESSAGE,
            "notice_sha256",
        ),
        ('{"type":"publish_offer","sdp":"' + "a" * 65537 + '"}', ErrorCode.INVALID_MESSAGE, "sdp"),
    ],
)
def test_bad_messages_get_their_code(text: str, code: ErrorCode, field: str | None) -> None:
    with pytest.raises(ProtocolError) as refused:
        MessageParser().parse(text)
    assert refused.value.code is code
    assert refused.value.field == field


def test_strict_types() -> None:
    message = MessageParser().parse('{"type":"mute_self","kind":"video","muted":false}')
    assert message == MuteSelf(type="mute_self", kind="video", muted=False)


def test_every_client_message_is_documented() -> None:
    documented = set(
        re.findall(r"^\| `([a-z_]+)` \|", PROTOCOL_DOC.read_text(encoding="utf-8"), re.MULTILINE)
    )
    assert {message_type(cls) for cls in CLIENT_MESSAGES} <= documented
    assert {code.value for code in ErrorCode} <= documented


@pytest.mark.parametrize("language", ["kk", "ru", "en"])
def test_notices_name_the_case_and_hash_the_exact_text(language: str) -> None:
    notice = render_notice(language, case_number="2-1/2025", court="Court $X")
    assert "2-1/2025" in notice.text and "Court $X" in notice.text
    assert "$case_number" not in notice.text and "$court" not in notice.text
    assert notice.sha256 == hashlib.sha256(notice.text.encode("utf-8")).hexdigest()
    other = render_notice(language, case_number="2-2/2025", court="Court $X")
    assert other.sha256 != notice.sha256


def test_no_notice_in_unknown_languages() -> None:
    with pytest.raises(ValueError):
        notice_template("../../etc/passwd")


def test_token_bucket_allows_bursts_then_the_rate() -> None:
    now = [0.0]
    bucket = TokenBucket(rate=10, burst=20, clock=lambda: now[0])
    assert sum(bucket.allow() for _ in range(30)) == 20
    now[0] += 0.5
    assert sum(bucket.allow() for _ in range(30)) == 5
