"""Typed identifiers, so a party id is never passed where a hearing id is meant."""

from __future__ import annotations

import uuid
from typing import NewType

HearingId = NewType("HearingId", str)
PartyId = NewType("PartyId", str)
UserId = NewType("UserId", str)
InvitationId = NewType("InvitationId", str)


def new_id() -> str:
    """A fresh random identifier (UUID4, canonical text form)."""
    return str(uuid.uuid4())


def is_valid_id(value: str) -> bool:
    """Whether ``value`` is an identifier this server could have issued."""
    try:
        return str(uuid.UUID(value)) == value
    except (ValueError, AttributeError, TypeError):
        return False
