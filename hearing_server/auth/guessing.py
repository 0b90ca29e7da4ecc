"""Invitation link guessing: unusable tokens counted per address and overall, never held against a valid one.

Parties share addresses (carrier-grade NAT, court Wi-Fi), so a guesser must not lock out the people behind the
same address. A token is therefore always looked up first — a valid link gets in at once, whatever its
address did before — and only *unusable* tokens are counted and, past a limit, refused with
``rate_limited``: per address (``token_failures_per_address`` in a :data:`WINDOW_S` window) and for the whole
server (``token_failures_budget``), which catches guessing spread over many addresses. Tokens carry 128 bits,
so guessing one is hopeless anyway; the limits keep the cost of trying bounded and make it visible: each
refused guess is counted (the ``hearing_invitation_guesses_refused`` metric) and crossing a limit is logged
once per window at WARNING (the alert).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

WINDOW_S = 60.0
MAX_TRACKED_ADDRESSES = 10_000


@dataclass(frozen=True)
class GuessRefused:
    """An unusable token refused because its address, or the whole server, is over its guess limit."""

    scope: str  # "address" or "server"
    retry_after: int  # seconds until the limit has room again


class _Window:
    """Times of recent failures within the window."""

    def __init__(self, limit: int) -> None:
        # Only the newest limit + 1 matter (over the limit or not, and when the limit has room again).
        self.times: deque[float] = deque(maxlen=limit + 1)
        self.alerted_at = float("-inf")

    def add(self, now: float, window: float) -> int:
        self.times.append(now)
        while self.times and self.times[0] <= now - window:
            self.times.popleft()
        return len(self.times)

    def retry_after(self, limit: int, now: float, window: float) -> int:
        # room again when the failure that made the count exceed the limit leaves the window
        oldest_counted = self.times[-limit] if len(self.times) >= limit else now
        return max(1, int(oldest_counted + window - now + 0.999))


class GuessGuard:
    """Counts unusable invitation tokens and says when one is to be refused; valid tokens never reach it."""

    def __init__(
        self,
        per_address: int,
        budget: int,
        *,
        window_s: float = WINDOW_S,
        on_refused: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._per_address = per_address
        self._budget = budget
        self._window = window_s
        self._on_refused = on_refused
        self._clock = clock
        self._addresses: OrderedDict[str, _Window] = OrderedDict()
        self._server = _Window(budget)

    def unusable(self, address: str) -> GuessRefused | None:
        """Count one unusable token from ``address``; a :class:`GuessRefused` when it is over a limit."""
        now = self._clock()
        window = self._addresses.pop(address, None) or _Window(self._per_address)
        self._addresses[address] = window  # most recent last: the oldest are dropped first
        while len(self._addresses) > MAX_TRACKED_ADDRESSES:
            self._addresses.popitem(last=False)
        from_address = window.add(now, self._window)
        overall = self._server.add(now, self._window)
        refused: GuessRefused | None = None
        if from_address > self._per_address:
            refused = GuessRefused("address", window.retry_after(self._per_address, now, self._window))
            self._alert(
                window,
                now,
                "invitation link guessing from %s: %d unusable links within %.0f s; "
                "refusing its unusable links (valid links still get in)",
                address,
                from_address,
            )
        if overall > self._budget:
            refused = refused or GuessRefused(
                "server", self._server.retry_after(self._budget, now, self._window)
            )
            self._alert(
                self._server,
                now,
                "invitation link guessing across the server (now from %s): %d "
                "unusable links within %.0f s; refusing unusable links",
                address,
                overall,
            )
        if refused is not None and self._on_refused is not None:
            self._on_refused(refused.scope)
        return refused

    def _alert(self, window: _Window, now: float, message: str, address: str, count: int) -> None:
        if now - window.alerted_at >= self._window:  # once per window: an attacker must not flood the log
            window.alerted_at = now
            log.warning(message, address, count, self._window)
