"""Keyframe requests to one publisher (mediasoup's KeyFrameRequestManager).

Subscribers' PLI/FIR, new or resynchronising subscribers and the recorder all ask here.
A request goes out at once unless one went out less than ``min_interval`` ago (then when the
interval ends), and is **repeated** every ``retry_interval`` until a keyframe actually
arrives: a PLI travels over UDP and may be lost, and a subscriber waiting for a keyframe
shows frozen video until one comes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class KeyframeRequestManager:
    """Rate-limited keyframe requests for one published video track, repeated until answered."""

    def __init__(
        self,
        send: Callable[[], bool],
        min_interval_s: float,
        retry_interval_s: float = 1.0,
        on_sent: Callable[[], None] | None = None,
    ) -> None:
        self._send = send  # returns False while the publisher cannot be reached (nothing sent)
        self._min_interval = min_interval_s
        self._retry_interval = max(retry_interval_s, min_interval_s)
        self._on_sent = on_sent
        self._last = -float("inf")
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False
        self.waiting = False  # someone waits for a keyframe that has not arrived yet

    def request(self) -> None:
        """Ask for a keyframe (idempotent while one is pending)."""
        if self._closed:
            return
        self.waiting = True
        if self._timer is not None:
            return
        wait = self._last + self._min_interval - time.monotonic()
        if wait <= 0:
            self._fire()
        else:
            self._timer = asyncio.get_running_loop().call_later(wait, self._fire)

    def keyframe_arrived(self) -> None:
        """A keyframe came: nobody waits any more."""
        self.waiting = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def close(self) -> None:
        """Stop asking (the track ended)."""
        self._closed = True
        self.keyframe_arrived()

    def _fire(self) -> None:
        self._timer = None
        if self._closed or not self.waiting:
            return
        if self._send():
            self._last = time.monotonic()
            if self._on_sent is not None:
                self._on_sent()
        # repeat until keyframe_arrived() clears the wait
        self._timer = asyncio.get_running_loop().call_later(self._retry_interval, self._fire)
