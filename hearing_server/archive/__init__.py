"""The archive: search, playback with ranges, export packages, verification, access audit and retention."""

from __future__ import annotations

from hearing_server.archive.context import ARCHIVE, Archive
from hearing_server.archive.routes import setup

__all__ = ["ARCHIVE", "Archive", "setup"]
