"""E-mail through the court's SMTP server (aiosmtplib): STARTTLS or implicit TLS, optional login."""

from __future__ import annotations

import logging
import ssl
from email.header import Header
from email.message import Message
from email.mime.text import MIMEText
from email.utils import formatdate, make_msgid
from pathlib import Path

import aiosmtplib

from hearing_server.domain.notification import Channel
from hearing_server.notify.notifier import DeliveryFailed, OutgoingMessage, Receipt

log = logging.getLogger(__name__)


def build_email(message: OutgoingMessage, *, sender: str, court: str) -> Message:
    """The mail as sent: plain UTF-8 text in the party's language, marked as automatically generated.

    Headers are encoded with :class:`email.header.Header`: the newer ``EmailMessage`` folding loses the
    space between an encoded word and the next word ("2026 іс" arrived as "2026іс") in long Kazakh subjects.
    """
    mail = MIMEText(message.text, "plain", "utf-8")
    author = Header(court, "utf-8") if court else Header()
    author.append(f"<{sender}>", "us-ascii")
    # Message takes Header objects (documented); typeshed types header values as str only.
    mail["From"] = author  # type: ignore[assignment]
    mail["To"] = message.recipient
    mail["Subject"] = Header(message.subject, "utf-8")  # type: ignore[assignment]
    mail["Date"] = formatdate(localtime=False, usegmt=True)
    mail["Message-ID"] = make_msgid(
        idstring=message.notification_id, domain=sender.rpartition("@")[2] or None
    )
    mail["Content-Language"] = message.language
    mail["Auto-Submitted"] = "auto-generated"
    return mail


class SmtpNotifier:
    """Sends e-mail through one SMTP server, a new connection per message (invitations are few)."""

    channel = Channel.EMAIL

    def __init__(
        self,
        *,
        host: str,
        port: int,
        security: str,
        sender: str,
        court: str,
        username: str = "",
        password: str = "",
        ca_file: Path | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        self._host = host
        self._port = port
        self._security = security
        self._sender = sender
        self._court = court
        self._username = username
        self._password = password
        self._ca_file = ca_file
        self._timeout_s = timeout_s

    def _tls_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self._ca_file) if self._ca_file else None)

    async def send(self, message: OutgoingMessage) -> Receipt:
        """Hand the mail to the SMTP server; its reply when it accepted the message for the recipient."""
        mail = build_email(message, sender=self._sender, court=self._court)
        secure = self._security != "none"
        try:
            errors, reply = await aiosmtplib.send(
                mail,
                sender=self._sender,
                recipients=[message.recipient],
                hostname=self._host,
                port=self._port,
                use_tls=self._security == "tls",
                start_tls=True if self._security == "starttls" else False,
                tls_context=self._tls_context() if secure else None,
                username=self._username or None,
                password=self._password or None,
                timeout=self._timeout_s,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            refused = "; ".join(f"{r.code} {r.message}" for r in exc.recipients)
            raise DeliveryFailed(f"SMTP server refused the recipient: {refused}") from exc
        except aiosmtplib.SMTPResponseException as exc:
            raise DeliveryFailed(f"SMTP server refused: {exc.code} {exc.message}") from exc
        except aiosmtplib.SMTPTimeoutError as exc:
            raise DeliveryFailed(f"SMTP server did not answer in {self._timeout_s:g} s") from exc
        except (aiosmtplib.SMTPException, OSError, ssl.SSLError) as exc:
            raise DeliveryFailed(f"SMTP delivery failed: {type(exc).__name__}: {exc}") from exc
        if errors:
            refused = "; ".join(f"{to}: {answer.code} {answer.message}" for to, answer in errors.items())
            raise DeliveryFailed(f"SMTP server refused the recipient: {refused}")
        return Receipt(reply=reply, message_id=str(mail["Message-ID"]))

    async def close(self) -> None:
        """Nothing is held between messages."""
