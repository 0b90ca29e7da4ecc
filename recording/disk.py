"""Free space on the recording volume, and the floor below which no recording starts."""

from __future__ import annotations

import shutil
from pathlib import Path


class InsufficientDiskSpaceError(Exception):
    """Free space on the recording volume is below the configured floor."""


def free_disk_bytes(path: Path | str) -> int:
    """Free bytes on the volume that holds ``path`` (or its nearest existing parent)."""
    probe = Path(path).absolute()
    while not probe.exists():
        probe = probe.parent
    return shutil.disk_usage(probe).free


def ensure_disk_space(path: Path | str, floor_bytes: int) -> int:
    """Raise :class:`InsufficientDiskSpaceError` if less than ``floor_bytes`` are free; return free bytes."""
    free = free_disk_bytes(path)
    if free < floor_bytes:
        raise InsufficientDiskSpaceError(f"{free} bytes free at {path}, floor is {floor_bytes}")
    return free
