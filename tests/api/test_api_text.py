"""Names and other text shown to people are what they look like (#18.5): NFC, no bidi, no invisible text.

A party named with a right-to-left override shows as another name;
zero-width characters make two names look equal;
U+2028 breaks lines in the evidence record. Such text is refused with 400 ``invalid_input`` naming the field,
and nothing is written; letters of every script and ordinary combining marks are kept (as NFC).
"""

from __future__ import annotations

import unicodedata

import pytest
from api_harness import Api
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hearing_server.domain.party import StaffRole
from hearing_server.domain.text import UnfitText, displayable_text

LYING = [
    "\u202a", "\u202b", "\u202c", "\u202d", "\u202e",  # bidi embeddings and overrides
    "\u2066", "\u2067", "\u2068", "\u2069",  # bidi isolates
    "\u200b", "\u200c", "\u200d", "\u2060", "\ufeff",  # zero-width
    "\u200e", "\u200f", "\u061c", "\u00ad",  # marks and the soft hyphen (format characters)
    "\u0085", "\u2028", "\u2029", "\x00", "\x1b", "\x7f", "\t", "\n",  # controls and separators
    "\ue000", "\U000e0041",  # private use, a tag character
]  # fmt: skip
KEPT = [
    "Айдос Серікбаев",
    "Әсел Ғалымқызы Құрманова",
    "Өмірзақ Ұлы Үмбетов Һ І",
    "Иванов Пётр Сергеевич",
    "José O'Brien-Müller",
    "Nguyễn Thị Minh",
]


@pytest.mark.parametrize("char", LYING, ids=[f"U+{ord(c):04X}" for c in LYING])
async def test_a_name_with_an_invisible_or_bidi_character_is_refused_naming_the_field(
    api: Api, char: str
) -> None:
    operator = await api.who(StaffRole.OPERATOR)
    hearing = await api.schedule(operator)
    before = await api.counts()
    path = f"/api/v1/hearings/{hearing['id']}/parties"
    result = await api.call("POST", path, operator, json={"role": "witness", "display_name": f"Ив{char}анов"})
    assert result.status == 400 and result.code == "invalid_input", result.json
    assert result.json["error"]["fields"][0]["loc"] == ["display_name"]
    assert f"U+{ord(char):04X}" in result.json["error"]["message"]
    assert await api.counts() == before


async def test_every_free_text_field_shown_to_people_is_checked(api: Api) -> None:
    operator = await api.who(StaffRole.OPERATOR)
    admin = await api.who(StaffRole.ADMIN)
    hearing = await api.schedule(operator)
    party = await api.add_party(operator, hearing["id"])
    attempts = [
        ("POST", "/api/v1/hearings", api.hearing_body(title="Ivanov\u202e v. Petrov"), operator, "title"),
        ("POST", "/api/v1/hearings", api.hearing_body(courtroom="Room\u200b4"), operator, "courtroom"),
        (
            "POST",
            "/api/v1/hearings",
            api.hearing_body(presiding_judge="A\u2066B"),
            operator,
            "presiding_judge",
        ),
        ("POST", "/api/v1/hearings", api.hearing_body(case_number="2-1\u200d/2026"), operator, "case_number"),
        ("PATCH", f"/api/v1/hearings/{hearing['id']}", {"title": "x\u2028y"}, operator, "title"),
        (
            "PATCH",
            f"/api/v1/hearings/{hearing['id']}/parties/{party['id']}",
            {"display_name": "Evil\u202eLIVE"},
            operator,
            "display_name",
        ),
        (
            "POST",
            "/api/v1/users",
            {
                "username": "clerk2",
                "role": "operator",
                "password": "a long enough pass 1",
                "display_name": "A\ufeffB",
            },
            admin,
            "display_name",
        ),
    ]
    before = await api.counts()
    for method, path, body, who, field in attempts:
        result = await api.call(method, path, who, json=body)
        assert (result.status, result.code) == (400, "invalid_input"), (path, field, result.json)
        assert [f["loc"] for f in result.json["error"]["fields"]] == [[field]], (path, result.json)
    assert await api.counts() == before


@pytest.mark.parametrize("name", KEPT)
async def test_names_in_kazakh_russian_and_latin_are_kept_as_nfc(api: Api, name: str) -> None:
    operator = await api.who(StaffRole.OPERATOR)
    hearing = await api.schedule(operator)
    decomposed = unicodedata.normalize("NFD", name)
    party = await api.add_party(operator, hearing["id"], display_name=decomposed)
    assert party["display_name"] == unicodedata.normalize("NFC", name)


def test_combining_marks_within_reason() -> None:
    assert displayable_text("e\u0302\u0301") == "\u1ebf"  # é + circumflex composes
    with pytest.raises(UnfitText):
        displayable_text("\u0301abc")  # a mark with nothing to sit on
    with pytest.raises(UnfitText):
        displayable_text("Z" + "\u0336\u0334\u0335\u0337\u0338")  # Zalgo


_SHOWN = st.characters(categories=["L", "N", "P", "S", "Zs"])
_REFUSED = st.characters(categories=["Cc", "Cf", "Co", "Zl", "Zp"])


@given(st.text(_SHOWN, min_size=1, max_size=40))
def test_any_text_of_letters_digits_punctuation_and_spaces_is_accepted_as_nfc(text: str) -> None:
    assert displayable_text(text) == unicodedata.normalize("NFC", text)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.text(_SHOWN, max_size=20), _REFUSED, st.text(_SHOWN, max_size=20))
def test_any_text_with_a_control_or_format_character_is_refused(before: str, bad: str, after: str) -> None:
    with pytest.raises(UnfitText) as refused:
        displayable_text(before + bad + after)
    assert f"U+{ord(bad):04X}" in str(refused.value)
