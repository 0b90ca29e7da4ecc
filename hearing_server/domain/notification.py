"""Notifying parties: the channels a link travels by, what a message is about, and its delivery status."""

from __future__ import annotations

import re
from enum import StrEnum

from hearing_server.domain.errors import InvalidInput


class Channel(StrEnum):
    """How a party's link reaches them: sent by the server, or handed over by the operator (copy/QR)."""

    EMAIL = "email"
    SMS = "sms"
    HANDOVER = "handover"


class NotificationKind(StrEnum):
    """What a message tells the party."""

    INVITATION = "invitation"
    REMINDER = "reminder"
    RESCHEDULED = "rescheduled"
    CANCELLED = "cancelled"
    ACT = "act"

    @property
    def carries_link(self) -> bool:
        """Whether the message contains the party's link (a cancelled hearing's notice does not)."""
        return self is not NotificationKind.CANCELLED


class DeliveryStatus(StrEnum):
    """Where a queued message stands: waiting (also between retries), being sent, accepted, or final."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINAL_STATUSES = frozenset({DeliveryStatus.SENT, DeliveryStatus.FAILED, DeliveryStatus.CANCELLED})

# A pragmatic check, not RFC 5322: one @, a dot-atom local part, a domain of letter/digit/hyphen labels.
_EMAIL = re.compile(
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$"
)
_PHONE_SEPARATORS = re.compile(r"[\s().-]")
_E164 = re.compile(r"^\+[1-9][0-9]{7,14}$")


def normalize_email(raw: str) -> str:
    """The address as it will be used, or :class:`InvalidInput` when it cannot be an e-mail address."""
    address = raw.strip()
    if len(address) > 254 or not _EMAIL.match(address):
        raise InvalidInput(f"{raw!r} is not an e-mail address", code="invalid_email")
    return address


def normalize_phone(raw: str) -> str:
    """The number in E.164 form (+77051234567; a Kazakh 8-prefix becomes +7), or :class:`InvalidInput`."""
    digits = _PHONE_SEPARATORS.sub("", raw.strip())
    if len(digits) == 11 and digits.startswith("8") and digits.isdigit():
        digits = "+7" + digits[1:]
    if not _E164.match(digits):
        raise InvalidInput(
            f"{raw!r} is not a phone number in international form (+7 705 123 45 67)", code="invalid_phone"
        )
    return digits


def normalize_recipient(channel: Channel, raw: str) -> str:
    """The recipient's address for ``channel``, checked and normalized."""
    if channel is Channel.EMAIL:
        return normalize_email(raw)
    if channel is Channel.SMS:
        return normalize_phone(raw)
    raise InvalidInput("a handed-over link has no recipient address", code="invalid_input")
