"""Staff passwords: argon2id hashes, checked off the event loop."""

from __future__ import annotations

import asyncio

from aiohttp import web
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from hearing_server.auth.tokens import new_token
from hearing_server.domain.errors import InvalidInput

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 256


def check_password_rules(password: str) -> None:
    """Raise :class:`InvalidInput` unless ``password`` is long enough and not absurdly long."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"passwords need at least {MIN_PASSWORD_LENGTH} characters", code="weak_password")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidInput(f"passwords have at most {MAX_PASSWORD_LENGTH} characters", code="invalid_input")


class Passwords:
    """Hashes and verifies passwords with argon2id (argon2-cffi's RFC 9106 defaults unless given a hasher)."""

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self._hasher = hasher or PasswordHasher()
        self._dummy_hash: str | None = None

    async def hash(self, password: str) -> str:
        """The argon2id hash of ``password``."""
        return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """Whether ``password`` matches; an unknown user (``None``) costs the same time and fails."""
        known = password_hash is not None
        if password_hash is None:
            # Spend the same work as for a real account so timing does not reveal which usernames exist.
            if self._dummy_hash is None:
                self._dummy_hash = await self.hash(new_token())
            password_hash = self._dummy_hash
        try:
            matches = await asyncio.to_thread(self._hasher.verify, password_hash, password)
        except (VerificationError, InvalidHashError):
            return False
        return known and matches


PASSWORDS = web.AppKey("passwords", Passwords)
