"""Where a page may send a visitor after logging in: a path on this site, never another origin."""

from __future__ import annotations

import re

DEFAULT_AFTER_LOGIN = "/console/"
MAX_NEXT_LENGTH = 2000
# A single "/" then no second "/" or "\": browsers read "//host" and "/\host" as another origin.
_SAFE_PATH = re.compile(r"^/(?![/\\])[^\\\x00-\x1f\x7f]*$")


def safe_next_path(value: str | None) -> str | None:
    """``value`` when it is an absolute path on this site; ``None`` for anything that could leave it.

    Refused: empty values, anything not starting with exactly one ``/`` (``//evil``, ``/\\evil``, schemes
    such as ``https:`` or ``javascript:``), a backslash anywhere (browsers treat it as ``/``), control
    characters (tabs and newlines are dropped by URL parsers, so ``/\\t/evil`` becomes ``//evil``), and
    overlong values.
    """
    if not value or len(value) > MAX_NEXT_LENGTH:
        return None
    return value if _SAFE_PATH.match(value) else None
