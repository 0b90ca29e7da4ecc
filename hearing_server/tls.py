"""HTTPS: the server certificate (self-signed on first run unless one is configured) and the SSL context."""

from __future__ import annotations

import ipaddress
import logging
import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from hearing_server.config import Config, ConfigError
from recording.pem import write_pem_pair

log = logging.getLogger(__name__)

SELF_SIGNED_DAYS = 397  # browsers refuse longer-lived server certificates
RENEW_BEFORE = timedelta(days=30)
_WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::"})  # noqa: S104


def certificate_hosts(config: Config) -> list[str]:
    """Names the self-signed certificate covers: localhost, loopback, the public host, the bind address."""
    hosts = ["localhost", "127.0.0.1", "::1"]
    public_host = urlsplit(config.effective_public_url).hostname or ""
    for host in (public_host, config.host):
        if host not in _WILDCARD_HOSTS and host not in hosts:
            hosts.append(host)
    return hosts


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _covers(cert: x509.Certificate, hosts: list[str], now: datetime) -> bool:
    if cert.not_valid_after_utc - RENEW_BEFORE < now:
        return False
    try:
        names = set(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except x509.ExtensionNotFound:
        return False
    return all(_general_name(host) in names for host in hosts)


def ensure_self_signed(
    cert_path: Path, key_path: Path, hosts: list[str], now: datetime | None = None
) -> bool:
    """Make a self-signed certificate for ``hosts`` unless a usable one exists; True if one was made."""
    now = now or datetime.now(UTC)
    if cert_path.exists() and key_path.exists():
        try:
            if _covers(x509.load_pem_x509_certificate(cert_path.read_bytes()), hosts, now):
                return False
        except ValueError:
            log.warning("the certificate %s is unreadable; making a new one", cert_path)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, hosts[0] if hosts else "localhost"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "hearing-server (self-signed)"),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=SELF_SIGNED_DAYS))
        .add_extension(x509.SubjectAlternativeName([_general_name(h) for h in hosts]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    write_pem_pair(cert_path, key_path, cert, key)
    log.info("made a self-signed certificate for %s at %s", ", ".join(hosts), cert_path)
    return True


def server_ssl_context(config: Config) -> ssl.SSLContext | None:
    """The HTTPS context (``None`` when serving plain HTTP behind a reverse proxy)."""
    if config.plain_http:
        return None
    if (config.tls_cert is None) != (config.tls_key is None):
        raise ConfigError("give both tls_cert and tls_key (--cert and --key), or neither")
    if config.tls_cert is None:
        ensure_self_signed(config.tls_cert_path, config.tls_key_path, certificate_hosts(config))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(config.tls_cert_path, config.tls_key_path)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot load the TLS certificate {config.tls_cert_path}: {exc}") from exc
    return context
