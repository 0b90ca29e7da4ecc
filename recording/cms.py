"""Detached CMS (PKCS#7) signatures: made with ``cryptography``, checked here without OpenSSL's CLI.

``cryptography`` can sign CMS but not verify it, so asn1crypto parses the SignedData (RFC 5652) and
``cryptography`` checks the message digest and the signature over the signed attributes.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any

from asn1crypto import cms
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs7

_OID_SIGNED_DATA = "1.2.840.113549.1.7.2"
_OID_DATA = "1.2.840.113549.1.7.1"
_OID_CONTENT_TYPE = "1.2.840.113549.1.9.3"
_OID_MESSAGE_DIGEST = "1.2.840.113549.1.9.4"
_DIGESTS: dict[str, tuple[str, type[hashes.HashAlgorithm]]] = {
    "2.16.840.1.101.3.4.2.1": ("sha256", hashes.SHA256),
    "2.16.840.1.101.3.4.2.2": ("sha384", hashes.SHA384),
    "2.16.840.1.101.3.4.2.3": ("sha512", hashes.SHA512),
}

SignerKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def sign_detached(data: bytes, certificate: x509.Certificate, key: SignerKey) -> bytes:
    """A detached, binary-mode CMS signature (DER) over ``data`` with SHA-256."""
    return (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(data)
        .add_signer(certificate, key, hashes.SHA256())
        .sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary])
    )


@dataclass(frozen=True)
class CmsVerification:
    """Outcome of checking a detached signature against its content."""

    valid: bool  # signature matches the content and the embedded signer certificate
    signer: x509.Certificate | None
    trusted: bool | None  # signer is (or is issued by) the trusted certificate; None when none was given
    reason: str | None = None

    @property
    def signer_subject(self) -> str | None:
        """The signer's subject as an RFC 4514 string."""
        return self.signer.subject.rfc4514_string() if self.signer is not None else None


def _load(signature: bytes) -> bytes:
    if signature.lstrip().startswith(b"-----BEGIN"):
        lines = [ln for ln in signature.strip().splitlines() if not ln.startswith(b"-----")]
        return base64.b64decode(b"".join(lines))
    return signature


def _is_trusted(signer: x509.Certificate, anchor: x509.Certificate) -> bool:
    if signer == anchor:
        return True
    try:
        signer.verify_directly_issued_by(anchor)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def verify_detached(
    data: bytes, signature: bytes, trusted: x509.Certificate | None = None
) -> CmsVerification:
    """Check a detached CMS signature (DER or PEM) over ``data``; optionally against a trusted certificate."""
    try:
        return _verify(data, _load(signature), trusted)
    except (ValueError, IndexError, KeyError, TypeError) as exc:
        return CmsVerification(False, None, None, f"unreadable signature: {exc}")


def _verify(data: bytes, der: bytes, trusted: x509.Certificate | None) -> CmsVerification:
    content_info = cms.ContentInfo.load(der, strict=True)
    if content_info["content_type"].dotted != _OID_SIGNED_DATA:
        return CmsVerification(False, None, None, "not a CMS SignedData")
    signed_data = content_info["content"]
    certificates = [
        x509.load_der_x509_certificate(choice.chosen.dump())
        for choice in signed_data["certificates"] or []
        if choice.name == "certificate"
    ]
    signer_infos = signed_data["signer_infos"]
    if len(signer_infos) != 1:
        return CmsVerification(False, None, None, f"expected one signer, found {len(signer_infos)}")
    info = signer_infos[0]
    attrs = info["signed_attrs"]
    if not isinstance(attrs, cms.CMSAttributes) or len(attrs) == 0:
        return CmsVerification(False, None, None, "signature has no signed attributes")
    signer = _find_signer(certificates, info["sid"])
    if signer is None:
        return CmsVerification(False, None, None, "signer certificate is not in the signature")
    trust = _is_trusted(signer, trusted) if trusted is not None else None
    digest = _DIGESTS.get(info["digest_algorithm"]["algorithm"].dotted)
    if digest is None:
        return CmsVerification(False, signer, trust, "unsupported digest algorithm")
    digest_name, digest_cls = digest
    values = _attribute_values(attrs)
    content_type = values.get(_OID_CONTENT_TYPE)
    if content_type is None or content_type.dotted != _OID_DATA:
        return CmsVerification(False, signer, trust, "signed content type is not data")
    message_digest = values.get(_OID_MESSAGE_DIGEST)
    if message_digest is None or message_digest.native != hashlib.new(digest_name, data).digest():
        return CmsVerification(False, signer, trust, "content does not match the signed digest")
    # The signature covers the attributes re-encoded with the universal SET tag (RFC 5652, 5.4).
    signed_bytes = attrs.untag().dump()
    signature = info["signature"].native
    public_key = signer.public_key()
    try:
        if isinstance(public_key, rsa.RSAPublicKey):
            if info["signature_algorithm"].signature_algo == "rsassa_pss":
                return CmsVerification(False, signer, trust, "RSA-PSS signatures are not supported")
            public_key.verify(signature, signed_bytes, padding.PKCS1v15(), digest_cls())
        elif isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(signature, signed_bytes, ec.ECDSA(digest_cls()))
        else:
            return CmsVerification(False, signer, trust, "unsupported signer key type")
    except InvalidSignature:
        return CmsVerification(False, signer, trust, "signature does not match the signed attributes")
    return CmsVerification(True, signer, trust, None if trust is not False else "signer is not trusted")


def _attribute_values(attrs: cms.CMSAttributes) -> dict[str, Any]:
    """The single value of each signed attribute by OID; a repeated attribute or value is refused."""
    values: dict[str, Any] = {}
    for attribute in attrs:
        oid = attribute["type"].dotted
        if oid in values or len(attribute["values"]) != 1:
            raise ValueError(f"signed attribute {oid} must have exactly one value")
        values[oid] = attribute["values"][0]
    return values


def _find_signer(certificates: list[x509.Certificate], sid: cms.SignerIdentifier) -> x509.Certificate | None:
    if sid.name == "issuer_and_serial_number":
        issuer = sid.chosen["issuer"].dump()
        number = sid.chosen["serial_number"].native
        for cert in certificates:
            if cert.serial_number == number and cert.issuer.public_bytes() == issuer:
                return cert
        return None
    if sid.name == "subject_key_identifier":
        for cert in certificates:
            try:
                ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
            except x509.ExtensionNotFound:
                continue
            if ski == sid.chosen.native:
                return cert
    return None
