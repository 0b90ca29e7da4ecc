"""HTTP range requests (RFC 9110 §14): which bytes of a file to send, and the validators that gate it.

Decisions, all allowed by RFC 9110:
- A ``Range`` with another unit, a syntax error or an invalid spec (``last < first``) is ignored: the
  whole file is sent with 200 (§14.2 "MAY ignore").  So is one with more than :data:`MAX_RANGES` specs
  (a defence against range amplification).
- A syntactically valid ``Range`` of which no spec is satisfiable gets 416 with ``bytes */size``.
- Overlapping or adjacent ranges are coalesced (§15.3.7.2); more than one range left is answered as
  ``multipart/byteranges``.
- ``If-Range`` with an entity tag must match strongly, with a date exactly; otherwise ``Range`` is ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum

MAX_RANGES = 16
_SPEC = re.compile(r"^([0-9]*)-([0-9]*)$")  # ASCII digits only (RFC 9110), not every Unicode digit
# Past any file: a longer position is clamped here instead of parsed (Python refuses > 4300 digits).
_BEYOND = 10**18


def _position(digits: str) -> int:
    """A byte position of a range spec; an absurdly long one stands for "past the end of any file"."""
    significant = digits.lstrip("0")
    return int(significant or "0") if len(significant) <= 18 else _BEYOND


@dataclass(frozen=True)
class ByteRange:
    """Bytes ``start`` to ``end`` inclusive."""

    start: int
    end: int

    @property
    def length(self) -> int:
        """How many bytes the range holds."""
        return self.end - self.start + 1

    def content_range(self, size: int) -> str:
        """The ``Content-Range`` value of this range of a ``size``-byte file."""
        return f"bytes {self.start}-{self.end}/{size}"


class RangeAnswer(StrEnum):
    """How to answer a request for a file."""

    FULL = "full"  # 200 with the whole file
    PARTIAL = "partial"  # 206 with the ranges
    UNSATISFIABLE = "unsatisfiable"  # 416


def parse_range(header: str | None, size: int) -> tuple[RangeAnswer, list[ByteRange]]:
    """The answer to a ``Range`` header for a ``size``-byte file, and the (coalesced, ordered) ranges."""
    if header is None:
        return RangeAnswer.FULL, []
    unit, sep, spec_list = header.partition("=")
    if not sep or unit.strip().lower() != "bytes":
        return RangeAnswer.FULL, []
    specs = [s.strip() for s in spec_list.split(",")]
    specs = [s for s in specs if s]
    if not specs or len(specs) > MAX_RANGES:
        return RangeAnswer.FULL, []
    ranges: list[ByteRange] = []
    for spec in specs:
        match = _SPEC.match(spec)
        if match is None:
            return RangeAnswer.FULL, []
        first, last = match.groups()
        if not first and not last:
            return RangeAnswer.FULL, []
        if not first:  # suffix: the last N bytes
            suffix = _position(last)
            if suffix > 0 and size > 0:
                ranges.append(ByteRange(max(0, size - suffix), size - 1))
            continue
        start = _position(first)
        if last and _position(last) < start:
            return RangeAnswer.FULL, []  # invalid spec: the whole header is ignored
        if start < size:
            ranges.append(ByteRange(start, min(_position(last), size - 1) if last else size - 1))
    if not ranges:
        return RangeAnswer.UNSATISFIABLE, []
    return RangeAnswer.PARTIAL, _coalesce(ranges)


def _coalesce(ranges: list[ByteRange]) -> list[ByteRange]:
    merged: list[ByteRange] = []
    for r in sorted(ranges, key=lambda r: r.start):
        if merged and r.start <= merged[-1].end + 1:
            merged[-1] = ByteRange(merged[-1].start, max(merged[-1].end, r.end))
        else:
            merged.append(r)
    return merged


def _tags(header: str) -> list[str]:
    return [t.strip() for t in header.split(",") if t.strip()]


def if_range_holds(header: str | None, etag: str, last_modified: datetime) -> bool:
    """Whether ``If-Range`` (absent: yes) lets the ``Range`` header apply to the current file."""
    if header is None:
        return True
    value = header.strip()
    if value.startswith(('"', "W/")):
        return not value.startswith("W/") and value == etag  # strong comparison only (§13.1.5)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return False
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment == last_modified.replace(microsecond=0)


def if_match_fails(header: str | None, etag: str) -> bool:
    """Whether ``If-Match`` is present and no listed tag strongly matches (answer 412)."""
    if header is None:
        return False
    tags = _tags(header)
    return "*" not in tags and etag not in tags


def if_none_match_holds(header: str | None, etag: str) -> bool:
    """Whether ``If-None-Match`` lists the current tag, weakly compared (answer 304)."""
    if header is None:
        return False
    tags = _tags(header)
    return "*" in tags or etag.removeprefix("W/") in [t.removeprefix("W/") for t in tags]
