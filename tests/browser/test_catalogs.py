"""The translation catalogs (no browser needed): the same keys in Kazakh, Russian and English, every key the
pages use present, every server vocabulary (roles, statuses, states, events, error codes) translated."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from hearing_server.auth.invitations import InvitationStatus
from hearing_server.domain.events import EventType
from hearing_server.domain.hearing import HearingStatus
from hearing_server.domain.notification import Channel, DeliveryStatus, NotificationKind
from hearing_server.domain.party import PartyRole, PartyState
from media.contract import ConnectionState

WEB_CLIENT = Path(__file__).resolve().parents[2] / "web_client"
LANGUAGES = ("kk", "ru", "en")
PLACEHOLDER = re.compile(r"\{(\w+)\}")
HTML_KEY = re.compile(r'data-i18n="([^"]+)"')
HTML_ATTR_KEYS = re.compile(r'data-i18n-attr="([^"]+)"')
JS_LITERAL = re.compile(r"""['"`]([a-z_]+\.[a-z0-9_]+)['"`]""")
JS_ATTR_KEYS = re.compile(r"i18nAttr = `([^`]+)`|'data-i18n-attr'|i18nAttr = '([^']+)'")
KAZAKH_LETTERS = set("әғқңөұүһі")


def load(language: str) -> dict[str, str]:
    return json.loads((WEB_CLIENT / "i18n" / f"{language}.json").read_text(encoding="utf-8"))


CATALOGS = {language: load(language) for language in LANGUAGES}


def sources(pattern: str) -> list[Path]:
    return sorted(WEB_CLIENT.rglob(pattern))


def test_every_language_has_the_same_keys() -> None:
    reference = set(CATALOGS["en"])
    for language in LANGUAGES:
        keys = set(CATALOGS[language])
        assert keys == reference, (
            f"{language}: missing {sorted(reference - keys)}, extra {sorted(keys - reference)}"
        )


@pytest.mark.parametrize("language", LANGUAGES)
def test_texts_are_nonempty_and_keep_their_placeholders(language: str) -> None:
    for key, text in CATALOGS[language].items():
        assert isinstance(text, str) and text.strip(), f"{language}:{key} is empty"
        assert text == text.strip(), f"{language}:{key} has surrounding spaces"
        assert set(PLACEHOLDER.findall(text)) == set(PLACEHOLDER.findall(CATALOGS["en"][key])), (
            f"{language}:{key} placeholders differ from English"
        )


@pytest.mark.parametrize("language", ["kk", "ru"])
def test_kazakh_and_russian_are_translated_not_copied(language: str) -> None:
    catalog = CATALOGS[language]
    cyrillic = [k for k, v in catalog.items() if re.search(r"[а-яё]", v.lower())]
    assert len(cyrillic) / len(catalog) > 0.85, (
        f"{language}: only {len(cyrillic)} of {len(catalog)} in Cyrillic"
    )
    if language == "kk":
        kazakh = [k for k, v in catalog.items() if KAZAKH_LETTERS & set(v.lower())]
        assert len(kazakh) / len(catalog) > 0.4, "the Kazakh catalog hardly uses Kazakh letters"
        assert catalog["role.secretary"] == "Сот отырысының хатшысы"
        assert catalog["party.page_title"] == "Сот отырысы"
    else:
        assert catalog["role.secretary"] == "Секретарь судебного заседания"
        assert catalog["party.page_title"] == "Судебное заседание"


def keys_in_html() -> set[str]:
    keys: set[str] = set()
    for path in sources("*.html"):
        text = path.read_text(encoding="utf-8")
        keys.update(HTML_KEY.findall(text))
        for pairs in HTML_ATTR_KEYS.findall(text):
            keys.update(pair.split(":", 1)[1].strip() for pair in pairs.split(";") if ":" in pair)
    return keys


def keys_in_scripts(namespaces: set[str]) -> set[str]:
    """String literals in the scripts that name a catalog key (``namespace.name``)."""
    keys: set[str] = set()
    for path in sources("*.js"):
        for literal in JS_LITERAL.findall(path.read_text(encoding="utf-8")):
            if literal.split(".", 1)[0] in namespaces:
                keys.add(literal)
    return keys


def test_every_key_used_by_the_pages_is_in_the_catalogs() -> None:
    namespaces = {key.split(".", 1)[0] for key in CATALOGS["en"]}
    used = keys_in_html() | keys_in_scripts(namespaces)
    assert len(used) > 150, "the key scan found too little; has the markup changed?"
    for language in LANGUAGES:
        missing = sorted(used - set(CATALOGS[language]))
        assert not missing, f"{language} lacks {missing}"


def test_no_page_has_inline_script_style_or_handlers() -> None:
    for path in sources("*.html"):
        html = path.read_text(encoding="utf-8")
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), f"{path.name}: inline script"
        assert "<style" not in html, f"{path.name}: inline style element"
        assert not re.search(r"\sstyle=", html), f"{path.name}: style attribute"
        assert not re.search(r"\son[a-z]+=", html), f"{path.name}: inline event handler"
        assert not re.search(r"(src|href)=\"(https?:)?//", html), f"{path.name}: resource from another origin"
    for path in sources("*.js"):
        script = path.read_text(encoding="utf-8")
        assert "innerHTML" not in script and "eval(" not in script and "new Function" not in script, path.name
        assert not re.search(r"import[^;]+from\s+['\"]https?:", script), f"{path.name}: import from a CDN"


def _expect(keys: list[str]) -> None:
    for language in LANGUAGES:
        missing = [key for key in keys if key not in CATALOGS[language]]
        assert not missing, f"{language} lacks {missing}"


def test_the_server_vocabulary_is_translated() -> None:
    _expect([f"role.{role.value}" for role in PartyRole])
    _expect([f"status.{status.value}" for status in HearingStatus])
    _expect([f"party_state.{state.value}" for state in PartyState])
    _expect([f"event.{event.value}" for event in EventType])
    _expect([f"connection.{state}" for state in ConnectionState.__args__])  # type: ignore[attr-defined]
    _expect([f"link.status_{status.value}" for status in InvitationStatus] + ["link.status_none"])
    _expect([f"language.{language}" for language in LANGUAGES])
    _expect([f"delivery.status_{status.value}" for status in DeliveryStatus])
    _expect([f"delivery.kind_{kind.value}" for kind in NotificationKind])
    _expect([f"delivery.channel_{channel.value}" for channel in Channel])


def test_every_reason_the_party_page_explains_is_translated() -> None:
    join = (WEB_CLIENT / "join" / "join.js").read_text(encoding="utf-8")
    fatal = re.search(r"FATAL_ERRORS = new Set\(\[(.*?)\]\)", join, re.S)
    assert fatal is not None
    codes = re.findall(r"'(\w+)'", fatal.group(1)) + ["connection_refused", "generic"]
    _expect([f"party_error.{code}_{part}" for code in codes for part in ("title", "text")])
    endings = {"ended", "left", "removed", "denied", "replaced"}
    _expect([f"end.{reason}_{part}" for reason in endings for part in ("title", "text")])
    media = (WEB_CLIENT / "shared" / "media.js").read_text(encoding="utf-8")
    kinds = set(re.findall(r"return '(\w+)';", media))
    assert {"blocked", "not_found", "in_use", "insecure", "unknown"} <= kinds
    _expect([f"device.problem_{kind}_{part}" for kind in kinds for part in ("title", "text")])
    hearing = (WEB_CLIENT / "console" / "hearing.js").read_text(encoding="utf-8")
    run_endings = set(re.findall(r"\]: '(\w+)'", hearing))
    assert run_endings, "no endings found in console/hearing.js"
    _expect([f"run.ended_{reason}_{part}" for reason in run_endings for part in ("title", "text")])


def test_protocol_errors_shown_to_people_are_translated() -> None:
    from signaling.protocol import ErrorCode

    shown = {
        ErrorCode.FORBIDDEN, ErrorCode.INVALID_STATE, ErrorCode.MEDIA_ERROR, ErrorCode.NOT_AUTHENTICATED,
        ErrorCode.NOT_FOUND, ErrorCode.HEARING_CLOSED, ErrorCode.HEARING_FULL, ErrorCode.INTERNAL_ERROR,
        ErrorCode.RATE_LIMITED,
    }  # fmt: skip
    _expect([f"signal_error.{code.value}" for code in shown] + ["signal_error.generic"])
