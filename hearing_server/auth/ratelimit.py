"""Password guessing limits: failed logins and failed password changes per (username, address) and per
address in a sliding window (one counter for both, so neither is a way around the other)."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from aiohttp import web

from hearing_server.domain.errors import RateLimited

# A whole courthouse may sit behind one NAT address, so an address gets more failures than one account.
PER_ADDRESS_FACTOR = 4
MAX_TRACKED_KEYS = 10_000


class LoginThrottled(RateLimited):
    """Too many wrong passwords; ``retry_after`` says when to try again (seconds)."""

    code = "rate_limited"

    def __init__(self, retry_after: float) -> None:
        super().__init__("too many wrong passwords; try again later")
        self.retry_after = max(1, int(retry_after + 0.999))


class LoginLimiter:
    """Counts wrong passwords (at login or when changing one's password); ``attempts`` per window for one
    username from one address."""

    def __init__(
        self,
        attempts: int,
        window_s: float,
        *,
        per_address_factor: int = PER_ADDRESS_FACTOR,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limits = {"pair": attempts, "address": attempts * per_address_factor}
        self._window = window_s
        self._clock = clock
        self._failures: dict[tuple[str, ...], deque[float]] = {}

    def check(self, username: str, address: str) -> None:
        """Raise :class:`LoginThrottled` while either counter is exhausted."""
        now = self._clock()
        waits = [
            self._wait(key, limit, now)
            for key, limit in (
                (("pair", username.lower(), address), self._limits["pair"]),
                (("address", address), self._limits["address"]),
            )
        ]
        wait = max(waits)
        if wait > 0:
            raise LoginThrottled(wait)

    def failed(self, username: str, address: str) -> None:
        """Count one failed attempt."""
        now = self._clock()
        for key in (("pair", username.lower(), address), ("address", address)):
            self._failures.setdefault(key, deque()).append(now)
        self._bound()

    def succeeded(self, username: str, address: str) -> None:
        """Forget the failures of this username from this address."""
        self._failures.pop(("pair", username.lower(), address), None)

    def _wait(self, key: tuple[str, ...], limit: int, now: float) -> float:
        times = self._failures.get(key)
        if not times:
            return 0.0
        while times and times[0] <= now - self._window:
            times.popleft()
        if not times:
            del self._failures[key]
            return 0.0
        if len(times) < limit:
            return 0.0
        return times[-limit] + self._window - now

    def _bound(self) -> None:
        # Memory stays bounded under a spray of usernames: drop the oldest keys first.
        while len(self._failures) > MAX_TRACKED_KEYS:
            del self._failures[next(iter(self._failures))]


LOGIN_LIMITER = web.AppKey("login_limiter", LoginLimiter)
