"""The recording notice a party must confirm: rendered for one hearing, in one language, with its hash."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from string import Template

from signaling.protocol import NOTICE_LANGUAGES


@dataclass(frozen=True)
class Notice:
    """The exact notice text shown to a party and the SHA-256 (hex) of its UTF-8 bytes."""

    language: str
    text: str
    sha256: str


def notice_template(language: str) -> str:
    """The notice template of ``language`` (``kk``, ``ru`` or ``en``), as shipped with the server."""
    if language not in NOTICE_LANGUAGES:
        raise ValueError(f"no recording notice in {language!r}")
    return (resources.files("signaling") / "notices" / f"{language}.txt").read_text(encoding="utf-8")


def render_notice(language: str, *, case_number: str, court: str) -> Notice:
    """The notice for one hearing; the hash covers exactly the text the party is shown."""
    text = Template(notice_template(language)).safe_substitute(case_number=case_number, court=court)
    return Notice(language, text, hashlib.sha256(text.encode("utf-8")).hexdigest())
