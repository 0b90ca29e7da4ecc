"""Where a hearing's record lives on disk: ``recordings/<court>/<yyyy>/<mm>/<hearing-id>/``."""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from pathlib import Path, PurePosixPath

from hearing_server.domain.ids import is_valid_id


def court_slug(court: str) -> str:
    """A filesystem-safe folder name for a court (letters of any script, digits, dashes)."""
    text = unicodedata.normalize("NFKC", court).strip().lower()
    slug = re.sub(r"[^\w]+", "-", text, flags=re.UNICODE).strip("-_")
    return slug[:80] or "court"


def relative_folder(court: str, scheduled_start: datetime, hearing_id: str) -> str:
    """The hearing folder relative to the recordings root (as stored in ``Hearing.recording_path``)."""
    if not is_valid_id(hearing_id):
        raise ValueError(f"not a hearing id: {hearing_id!r}")
    return str(PurePosixPath(court_slug(court), f"{scheduled_start:%Y}", f"{scheduled_start:%m}", hearing_id))


def resolve_folder(recordings_dir: Path, relative: str) -> Path:
    """The absolute hearing folder; refuses anything that would leave the recordings root."""
    root = recordings_dir.resolve()
    path = (root / relative).resolve()
    if not path.is_relative_to(root) or path == root:
        raise ValueError(f"hearing folder outside the recordings root: {relative!r}")
    return path
