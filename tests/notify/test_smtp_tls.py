"""SMTP as courts run it: STARTTLS or implicit TLS, a certificate the server is told to trust, a login.
An untrusted certificate or a wrong password is a logged, retried failure, never a plain-text fallback."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from notify_harness import StartApi, issue_by, log_entries, wait_rows
from notify_peers import Accounts, SmtpPeer, start_smtp

from hearing_server.domain.party import StaffRole
from hearing_server.tls import ensure_self_signed


@pytest.fixture
def mail_cert(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (the court's internal mail server)."""
    cert, key = tmp_path / "mail.pem", tmp_path / "mail-key.pem"
    ensure_self_signed(cert, key, ["127.0.0.1"])
    return cert, key


def server_context(cert: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*cert)
    return context


@dataclass
class SecureSmtp:
    """A mail server speaking TLS: how (``security`` as the configuration names it), and its logins."""

    security: str
    peer: SmtpPeer
    accounts: Accounts


@pytest.fixture
async def secure_smtp(
    mail_cert: tuple[Path, Path], request: pytest.FixtureRequest
) -> AsyncIterator[SecureSmtp]:
    """The mail server with STARTTLS or implicit TLS (``request.param``) and one login."""
    accounts = Accounts(users={"court": "s3cret-pass"})
    context = server_context(mail_cert)
    if request.param == "starttls":
        peer = await start_smtp(starttls=context, accounts=accounts)
    else:
        peer = await start_smtp(implicit_tls=context, accounts=accounts)
    yield SecureSmtp(request.param, peer, accounts)
    await peer.close()


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")  # the test peer, TLS socket
@pytest.mark.parametrize("secure_smtp", ["starttls", "tls"], indirect=True)
async def test_mail_goes_over_tls_with_a_login(
    start_api: StartApi, secure_smtp: SecureSmtp, mail_cert: tuple[Path, Path]
) -> None:
    api = await start_api(
        smtp_port=secure_smtp.peer.port,
        smtp_security=secure_smtp.security,
        smtp_ca_file=mail_cert[0],
        smtp_username="court",
        smtp_password="s3cret-pass",
    )
    operator = await api.who(StaffRole.OPERATOR)
    hearing = await api.schedule(operator)
    party = await api.add_party(operator, hearing["id"], language="en")
    await issue_by(api, operator, hearing["id"], party["id"], "email", to="lawyer@example.kz")
    [mail] = await secure_smtp.peer.drop.wait_for(1)
    assert mail.rcpt_tos == ["lawyer@example.kz"] and mail.text.startswith("Dear Serik Nurlanovich,")
    assert [login for _mechanism, login in secure_smtp.accounts.tried] == ["court"]


@pytest.mark.parametrize("secure_smtp", ["starttls"], indirect=True)
async def test_wrong_password_is_a_logged_retried_failure(
    start_api: StartApi, secure_smtp: SecureSmtp, mail_cert: tuple[Path, Path]
) -> None:
    api = await start_api(
        smtp_port=secure_smtp.peer.port,
        smtp_security="starttls",
        smtp_ca_file=mail_cert[0],
        smtp_username="court",
        smtp_password="wrong",
        notify_max_attempts=2,
    )
    operator = await api.who(StaffRole.OPERATOR)
    hearing = await api.schedule(operator)
    party = await api.add_party(operator, hearing["id"])
    await issue_by(api, operator, hearing["id"], party["id"], "email", to="lawyer@example.kz")
    [row] = await wait_rows(api, lambda found: found[0].status == "failed")
    assert "535" in row.last_error and secure_smtp.peer.drop.mails == []
    failed = await log_entries(api, hearing["id"], "notification_failed")
    assert [e["details"]["gave_up"] for e in failed] == [False, True]


@pytest.mark.parametrize("secure_smtp", ["starttls"], indirect=True)
async def test_untrusted_certificate_is_refused_not_bypassed(
    start_api: StartApi, secure_smtp: SecureSmtp
) -> None:
    api = await start_api(
        smtp_port=secure_smtp.peer.port,
        smtp_security="starttls",
        smtp_username="court",
        smtp_password="s3cret-pass",
        notify_max_attempts=1,
    )
    operator = await api.who(StaffRole.OPERATOR)
    hearing = await api.schedule(operator)
    party = await api.add_party(operator, hearing["id"])
    await issue_by(api, operator, hearing["id"], party["id"], "email", to="lawyer@example.kz")
    [row] = await wait_rows(api, lambda found: found[0].status == "failed")
    assert "CERTIFICATE_VERIFY_FAILED" in row.last_error or "certificate verify failed" in row.last_error
    assert secure_smtp.peer.drop.mails == [] and secure_smtp.accounts.tried == []
