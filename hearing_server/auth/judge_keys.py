"""A judge's signing key: the PKCS#12 they upload is checked, then its private key is kept only wrapped
(AES-256-GCM under a key derived with scrypt from the judge's login password), so only that password
unlocks it at signing time.

Wrapped blob (version 1): ``b"HSJK" 0x01 log2(N) salt(16) nonce(12) ciphertext+tag``; the AES-GCM additional
data binds the blob to its account id, so a blob copied to another account does not open.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import datetime

from asn1crypto import pkcs12 as asn1_pkcs12
from cryptography import x509
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from cryptography.hazmat.primitives.serialization import pkcs12

from hearing_server.domain.errors import InvalidInput

MAGIC = b"HSJK\x01"
LOG2_N = 15  # scrypt N = 32768, r = 8: 32 MiB and about 0.1 s per derivation
SALT_BYTES = 16
NONCE_BYTES = 12
MAX_PKCS12_BYTES = 64 * 1024


class KeyRejected(InvalidInput):
    """The uploaded PKCS#12 cannot become a signing key; ``code`` says why."""


class WrongPassword(Exception):
    """The password does not unlock the wrapped key."""


@dataclass(frozen=True)
class JudgeCertificate:
    """What is shown of a judge's certificate (all of it public)."""

    subject: str
    common_name: str
    issuer: str
    not_before: datetime
    not_after: datetime
    fingerprint_sha256: str
    cert_pem: str
    chain_pem: str

    def valid_at(self, now: datetime) -> bool:
        """Whether the certificate is within its validity period at ``now``."""
        return self.not_before <= now <= self.not_after


@dataclass(frozen=True)
class CheckedKey:
    """An uploaded PKCS#12 that passed the checks: its certificate and the private key (PKCS#8 DER)."""

    certificate: JudgeCertificate
    key_der: bytes


def describe(cert: x509.Certificate, chain: list[x509.Certificate]) -> JudgeCertificate:
    """The public description of ``cert`` (with the intermediate certificates that came with it)."""
    names = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    common_name = str(names[0].value) if names else cert.subject.rfc4514_string()
    return JudgeCertificate(
        subject=cert.subject.rfc4514_string(),
        common_name=common_name,
        issuer=cert.issuer.rfc4514_string(),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        fingerprint_sha256=hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest(),
        cert_pem=cert.public_bytes(serialization.Encoding.PEM).decode(),
        chain_pem="".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in chain),
    )


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _is_pfx(data: bytes) -> bool:
    # cryptography reports a wrong passphrase and a file that is no PKCS#12 alike: parse the outer structure.
    try:
        pfx = asn1_pkcs12.Pfx.load(data, strict=True)
        return bool(pfx["version"].native == "v3" and pfx["auth_safe"]["content_type"].native == "data")
    except (ValueError, TypeError, KeyError):
        return False


def check_pkcs12(data: bytes, passphrase: str, now: datetime) -> CheckedKey:
    """Open and check an uploaded PKCS#12 (:class:`KeyRejected` with the reason); blocking (scrypt-free)."""
    if not data or len(data) > MAX_PKCS12_BYTES:
        raise KeyRejected(
            f"a PKCS#12 file of at most {MAX_PKCS12_BYTES} bytes is expected", code="not_pkcs12"
        )
    try:
        key, cert, extra = pkcs12.load_key_and_certificates(data, passphrase.encode() or None)
    except ValueError as exc:
        if _is_pfx(data):
            raise KeyRejected(
                "the passphrase does not open this PKCS#12 file", code="wrong_passphrase"
            ) from exc
        raise KeyRejected("the file is not a PKCS#12 (.p12/.pfx) bundle", code="not_pkcs12") from exc
    extra = list(extra)
    if cert is None:
        # Some tools pack the certificate without tying it to the key: take the one end-entity certificate.
        leaves = [c for c in extra if not _is_ca(c)]
        if len(leaves) == 1:
            cert = leaves[0]
            extra.remove(cert)
    if key is None or cert is None:
        raise KeyRejected("the PKCS#12 must hold one certificate and its private key", code="not_pkcs12")
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
        if isinstance(key, ed448.Ed448PrivateKey):
            raise KeyRejected("Ed448 keys are not supported for signing", code="key_unsupported")
        raise KeyRejected("only RSA, EC and Ed25519 keys can sign acts", code="key_unsupported")
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(serialization.Encoding.DER, public) != cert.public_key().public_bytes(
        serialization.Encoding.DER, public
    ):
        raise KeyRejected("the private key does not belong to the certificate", code="key_cert_mismatch")
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise KeyRejected(
            f"the certificate is valid from {cert.not_valid_before_utc:%Y-%m-%d} to "
            f"{cert.not_valid_after_utc:%Y-%m-%d}, not now",
            code="certificate_not_valid_now",
        )
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        usage = None
    if usage is not None and not (usage.digital_signature or usage.content_commitment):
        raise KeyRejected(
            "the certificate's key usage does not allow digital signatures", code="certificate_key_usage"
        )
    key_der = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return CheckedKey(certificate=describe(cert, extra), key_der=key_der)


def _derive(password: str, salt: bytes, log2_n: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=1 << log2_n, r=8, p=1).derive(password.encode())


def wrap_key(key_der: bytes, password: str, account_id: str) -> bytes:
    """``key_der`` encrypted under ``password`` for ``account_id`` (blocking: scrypt)."""
    salt, nonce = os.urandom(SALT_BYTES), os.urandom(NONCE_BYTES)
    sealed = AESGCM(_derive(password, salt, LOG2_N)).encrypt(nonce, key_der, account_id.encode())
    return MAGIC + bytes([LOG2_N]) + salt + nonce + sealed


def unwrap_key(blob: bytes, password: str, account_id: str) -> bytes:
    """The private key (PKCS#8 DER) in ``blob``; :class:`WrongPassword` if ``password`` does not open it."""
    if not blob.startswith(MAGIC) or len(blob) < len(MAGIC) + 1 + SALT_BYTES + NONCE_BYTES + 16:
        raise ValueError("not a wrapped judge key")
    at = len(MAGIC)
    log2_n = blob[at]
    salt = blob[at + 1 : at + 1 + SALT_BYTES]
    nonce = blob[at + 1 + SALT_BYTES : at + 1 + SALT_BYTES + NONCE_BYTES]
    sealed = blob[at + 1 + SALT_BYTES + NONCE_BYTES :]
    try:
        return AESGCM(_derive(password, salt, log2_n)).decrypt(nonce, sealed, account_id.encode())
    except InvalidTag as exc:
        raise WrongPassword("the password does not unlock the signing key") from exc


def rewrap_key(blob: bytes, old_password: str, new_password: str, account_id: str) -> bytes:
    """The same key wrapped under ``new_password`` (:class:`WrongPassword` if ``old_password`` fails)."""
    return wrap_key(unwrap_key(blob, old_password, account_id), new_password, account_id)
