"""Memory that a burst of connections borrowed goes back to the system when they close.

Each TLS connection holds a 256 KiB receive buffer (asyncio's ``SSLProtocol``), and WebSockets and request
parsers hold more. glibc serves such blocks with ``mmap`` and unmaps them on free — until the first one is
freed: then it raises its mmap threshold, and later blocks come from the heap, where a few survivors pin
the rest. After a flood of 600 connections the server kept ~80 MB it no longer used (#18.4). Fixing the
threshold (``M_MMAP_THRESHOLD``, which also stops the adjustment) keeps large blocks in ``mmap``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
LARGE_BLOCK_BYTES = 128 * 1024  # glibc's default threshold, kept fixed


def return_large_blocks() -> bool:
    """Make freed large blocks go back to the system at once; False where libc is not glibc."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    if mallopt(M_MMAP_THRESHOLD, LARGE_BLOCK_BYTES) != 1:
        log.info("could not fix the malloc mmap threshold; memory freed after a burst may stay reserved")
        return False
    return True
