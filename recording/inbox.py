"""What the event loop hands the recorder's writer thread: taken in batches, never a wake-up per packet.

Waking a sleeping thread for every RTP packet costs more than the packet's own recording
(a futex call on the loop, a context switch on the writer).  Packets and reports are only
appended here; the writer takes whatever has gathered every few tens of milliseconds, or at
once when a command (a track starting or ending, a recess, the stop) asks for it.
"""

from __future__ import annotations

import threading
from collections import deque


class Inbox:
    """A thread-safe FIFO of items for one consumer thread, drained a batch at a time."""

    def __init__(self) -> None:
        self._items: deque[object] = deque()
        self._wake = threading.Event()

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: object) -> None:
        """Append without waking the consumer (it takes the item with its next batch)."""
        self._items.append(item)

    def put_now(self, item: object) -> None:
        """Append and wake the consumer."""
        self._items.append(item)
        self._wake.set()

    def take(self, timeout: float) -> list[object]:
        """Every item appended so far, in order, after waiting up to ``timeout`` s for a wake-up."""
        self._wake.wait(timeout)
        self._wake.clear()  # an item put_now after this is in this batch or wakes the next take
        items = self._items
        return [items.popleft() for _ in range(len(items))]
