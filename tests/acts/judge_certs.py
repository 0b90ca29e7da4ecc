"""Test certificates made on the fly: a court CA and a judge's certificate, packed as a PKCS#12."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

JUDGE_NAME = "Ахметова Айгерим Болатовна"
PASSPHRASE = "p12 passphrase"  # noqa: S105 (test data)


@dataclass(frozen=True)
class Issued:
    """A CA, a judge's key and certificate, and the PKCS#12 holding them."""

    ca_cert: x509.Certificate
    cert: x509.Certificate
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    p12: bytes

    def key_ders(self) -> list[bytes]:
        """Every clear encoding of the private key: to show that none of them is stored."""
        none = serialization.NoEncryption()
        der = serialization.Encoding.DER
        return [
            self.key.private_bytes(der, serialization.PrivateFormat.PKCS8, none),
            self.key.private_bytes(der, serialization.PrivateFormat.TraditionalOpenSSL, none),
        ]


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "KZ"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Алматы қалалық соты"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def make_ca() -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A self-signed test CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("Test Court CA"))
        .issuer_name(_name("Test Court CA"))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=30))
        .not_valid_after(now + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .sign(key, hashes.SHA256())
    )
    return cert, key


def issue(
    passphrase: str = PASSPHRASE,
    *,
    name: str = JUDGE_NAME,
    not_before: timedelta = timedelta(days=-1),
    not_after: timedelta = timedelta(days=365),
    wrong_key: bool = False,
    digital_signature: bool = True,
    ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None = None,
) -> Issued:
    """A judge's RSA key and certificate from ``ca`` (default: a fresh CA), in a PKCS#12 (``passphrase``)."""
    ca_cert, ca_key = ca or make_ca()
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + not_before)
        .not_valid_after(now + not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature,
                digital_signature,
                False,
                False,
                not digital_signature,
                False,
                False,
                False,
                False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    packed_key = rsa.generate_private_key(public_exponent=65537, key_size=2048) if wrong_key else key
    # cryptography refuses to pack a key with a certificate it does not match: build the mismatch by hand.
    p12 = pkcs12.serialize_key_and_certificates(
        b"judge",
        packed_key,
        None if wrong_key else cert,
        [cert, ca_cert] if wrong_key else [ca_cert],
        serialization.BestAvailableEncryption(passphrase.encode()),
    )
    return Issued(ca_cert=ca_cert, cert=cert, key=key, p12=p12)
