"""Detached CMS (PKCS#7) signatures: made with ``cryptography``, checked here without OpenSSL's CLI.

``cryptography`` can sign CMS but not verify it, so verification reads the
DER structure itself (RFC 5652): the signer's certificate, the signed
attributes, the message digest, and the signature over the attributes.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs7

_OID_SIGNED_DATA = "1.2.840.113549.1.7.2"
_OID_DATA = "1.2.840.113549.1.7.1"
_OID_CONTENT_TYPE = "1.2.840.113549.1.9.3"
_OID_MESSAGE_DIGEST = "1.2.840.113549.1.9.4"
_OID_RSA_PSS = "1.2.840.113549.1.1.10"
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


class _Der:
    """One DER element: tag, the raw bytes of the whole element and of its content."""

    __slots__ = ("tag", "raw", "content")

    def __init__(self, tag: int, raw: bytes, content: bytes) -> None:
        self.tag, self.raw, self.content = tag, raw, content

    def children(self) -> list[_Der]:
        items, pos = [], 0
        while pos < len(self.content):
            item, pos = _read(self.content, pos)
            items.append(item)
        return items


def _read(data: bytes, pos: int) -> tuple[_Der, int]:
    if pos + 2 > len(data):
        raise ValueError("truncated DER")
    tag = data[pos]
    if tag & 0x1F == 0x1F:
        raise ValueError("multi-byte DER tags are not used in CMS")
    length = data[pos + 1]
    head = 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4:
            raise ValueError("indefinite or oversized DER length")
        length = int.from_bytes(data[pos + 2 : pos + 2 + count], "big")
        head += count
    end = pos + head + length
    if end > len(data):
        raise ValueError("DER element runs past its container")
    return _Der(tag, data[pos:end], data[pos + head : end]), end


def _oid(element: _Der) -> str:
    if element.tag != 0x06:
        raise ValueError("expected an OBJECT IDENTIFIER")
    body = element.content
    parts: list[int] = []
    value = 0
    for byte in body:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            parts.append(value)
            value = 0
    first = min(parts[0] // 40, 2)
    return ".".join(str(p) for p in [first, parts[0] - 40 * first, *parts[1:]])


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
    except (ValueError, IndexError) as exc:
        return CmsVerification(False, None, None, f"unreadable signature: {exc}")


def _verify(data: bytes, der: bytes, trusted: x509.Certificate | None) -> CmsVerification:
    content_info, _ = _read(der, 0)
    oid, wrapper = content_info.children()[:2]
    if _oid(oid) != _OID_SIGNED_DATA:
        return CmsVerification(False, None, None, "not a CMS SignedData")
    signed_data = wrapper.children()[0]
    fields = signed_data.children()
    certificates = [
        x509.load_der_x509_certificate(c.raw) for f in fields if f.tag == 0xA0 for c in f.children()
    ]
    signer_infos = fields[-1].children()
    if len(signer_infos) != 1:
        return CmsVerification(False, None, None, f"expected one signer, found {len(signer_infos)}")
    info = signer_infos[0].children()
    sid, digest_alg, attrs, sig_alg, sig = info[1], info[2], info[3], info[4], info[5]
    if attrs.tag != 0xA0:
        return CmsVerification(False, None, None, "signature has no signed attributes")
    signer = _find_signer(certificates, sid)
    if signer is None:
        return CmsVerification(False, None, None, "signer certificate is not in the signature")
    trust = _is_trusted(signer, trusted) if trusted is not None else None
    digest = _DIGESTS.get(_oid(digest_alg.children()[0]))
    if digest is None:
        return CmsVerification(False, signer, trust, "unsupported digest algorithm")
    digest_name, digest_cls = digest
    values = {}
    for attribute in attrs.children():
        attr_oid, attr_values = attribute.children()
        values[_oid(attr_oid)] = attr_values.children()[0]
    if _OID_CONTENT_TYPE not in values or _oid(values[_OID_CONTENT_TYPE]) != _OID_DATA:
        return CmsVerification(False, signer, trust, "signed content type is not data")
    message_digest = values.get(_OID_MESSAGE_DIGEST)
    if message_digest is None or message_digest.content != hashlib.new(digest_name, data).digest():
        return CmsVerification(False, signer, trust, "content does not match the signed digest")
    # The signature covers the attributes re-encoded with the universal SET tag (RFC 5652, 5.4).
    signed_bytes = b"\x31" + attrs.raw[1:]
    public_key = signer.public_key()
    try:
        if isinstance(public_key, rsa.RSAPublicKey):
            if _oid(sig_alg.children()[0]) == _OID_RSA_PSS:
                return CmsVerification(False, signer, trust, "RSA-PSS signatures are not supported")
            public_key.verify(sig.content, signed_bytes, padding.PKCS1v15(), digest_cls())
        elif isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(sig.content, signed_bytes, ec.ECDSA(digest_cls()))
        else:
            return CmsVerification(False, signer, trust, "unsupported signer key type")
    except InvalidSignature:
        return CmsVerification(False, signer, trust, "signature does not match the signed attributes")
    return CmsVerification(True, signer, trust, None if trust is not False else "signer is not trusted")


def _find_signer(certificates: list[x509.Certificate], sid: _Der) -> x509.Certificate | None:
    if sid.tag == 0x30:  # IssuerAndSerialNumber
        issuer, serial = sid.children()
        number = int.from_bytes(serial.content, "big", signed=True)
        for cert in certificates:
            if cert.serial_number == number and cert.issuer.public_bytes() == issuer.raw:
                return cert
        return None
    if sid.tag == 0x80:  # [0] SubjectKeyIdentifier
        for cert in certificates:
            try:
                ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
            except x509.ExtensionNotFound:
                continue
            if ski == sid.content:
                return cert
    return None
