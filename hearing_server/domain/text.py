"""Text shown to people (names, titles, courtrooms): what it may contain, in one place.

Names appear on screens and in the evidence record, so they must read as what they are: text is normalized
to NFC and refused when it holds characters that change how it *looks* without being seen themselves —
bidi overrides and isolates (U+202A–202E, U+2066–2069), zero-width characters (U+200B–200D, U+2060, U+FEFF)
and every other control or format character (Unicode categories Cc, Cf), line and paragraph separators
(U+2028/2029, U+0085), surrogates, private-use and unassigned code points. Letters of every script (Kazakh
Ә Ғ Қ Ң Ө Ұ Ү Һ І, Russian, Latin…) and combining marks are kept; a mark needs a base character, and a
pile of more than :data:`MAX_COMBINING_MARKS` on one character (“Zalgo” text) is refused.
"""

from __future__ import annotations

import unicodedata

MAX_COMBINING_MARKS = 4
# Cc control, Cf format (bidi, zero-width…), Cs surrogate, Co private use, Cn unassigned, Zl/Zp separators.
REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
_COMBINING = frozenset({"Mn", "Mc", "Me"})


class UnfitText(ValueError):
    """Text that cannot be shown to people as it is; the message names the offending character."""


def _describe(char: str) -> str:
    name = unicodedata.name(char, "")
    return f"U+{ord(char):04X}" + (f" ({name})" if name else "")


def displayable_text(value: str) -> str:
    """``value`` in NFC, or :class:`UnfitText` naming the first character that may not be shown."""
    for char in value:  # before normalizing: NFC must not hide what was sent (it never removes these)
        if unicodedata.category(char) in REFUSED_CATEGORIES:
            raise UnfitText(f"contains {_describe(char)}, a control or format character")
    text = unicodedata.normalize("NFC", value)
    marks = 0
    for index, char in enumerate(text):
        if unicodedata.category(char) in _COMBINING:
            marks += 1
            if index == 0:
                raise UnfitText(f"starts with the combining mark {_describe(char)}")
            if marks > MAX_COMBINING_MARKS:
                raise UnfitText(f"more than {MAX_COMBINING_MARKS} combining marks on one character")
        else:
            marks = 0
    return text
