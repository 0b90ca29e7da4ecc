"""The one interface through which a message leaves the server, whatever the channel."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from hearing_server.domain.notification import Channel


@dataclass(frozen=True)
class OutgoingMessage:
    """A message to one recipient: ``text`` is exactly what is sent (its SHA-256 goes to the log)."""

    notification_id: str
    recipient: str
    language: str
    subject: str
    text: str


@dataclass(frozen=True)
class Receipt:
    """The peer's acceptance of a message: its own words (SMTP reply, gateway answer) and message id."""

    reply: str
    message_id: str = ""


class DeliveryFailed(Exception):
    """The SMTP server or gateway did not accept the message; ``reason`` says why, in a few words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Notifier(Protocol):
    """Hands a message to the peer that delivers it (an SMTP server, an SMS gateway)."""

    channel: Channel

    async def send(self, message: OutgoingMessage) -> Receipt:
        """Send ``message``; the peer's acceptance, or :class:`DeliveryFailed`."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...
