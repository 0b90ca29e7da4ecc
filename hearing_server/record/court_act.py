"""Court acts as PDF: checked before anything is stored, then signed PAdES (pyHanko) with the judge's own
certificate and key, or the court's.

A PDF is refused when it is not a PDF, cannot be parsed with a strict reader (a broken cross-reference
table), is encrypted, has no page, or carries active content (JavaScript or launch actions) anywhere in any
revision.  Signing appends an incremental update with a PAdES baseline signature (ETSI.CAdES.detached,
SHA-256) so that the uploaded document stays byte-for-byte the first revision of the signed one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from io import BytesIO
from pathlib import Path

from asn1crypto import keys as asn1_keys
from asn1crypto import x509
from pyhanko.keys import load_cert_from_pemder, load_certs_from_pemder_data
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.validation import async_validate_pdf_signature
from pyhanko.sign.validation.status import SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.registry import SimpleCertificateStore

from hearing_server.domain.errors import InvalidInput

# Names that make a PDF run something when opened or clicked.
_ACTIVE_KEYS = frozenset({"/JS", "/JavaScript"})
_ACTIVE_ACTIONS = frozenset({"/JavaScript", "/Launch"})
# The same names in the raw bytes: what a lenient viewer would find where a strict parser does not.
_ACTIVE_BYTES = re.compile(rb"/(JS|JavaScript|Launch)(?![A-Za-z0-9])")
SIGNATURE_FIELD = "CourtSeal"


class ActRejected(InvalidInput):
    """The uploaded file cannot become a court act; ``code`` says why."""


@dataclass(frozen=True)
class SignedAct:
    """The signed PDF and what its signature says."""

    data: bytes
    signer_subject: str
    signed_at: datetime


def _walk(value: generic.PdfObject, depth: int = 0) -> None:
    # Every indirect object is walked from the cross-reference table, so only direct values nest here;
    # the depth bound stops a hostile file from nesting them without end.
    if depth > 64:
        raise ActRejected("the PDF nests objects too deeply", code="pdf_damaged")
    if isinstance(value, generic.DictionaryObject):  # includes streams
        for key, item in value.items():
            if key in _ACTIVE_KEYS or (key == "/S" and item in _ACTIVE_ACTIONS):
                raise ActRejected("the PDF contains JavaScript or a launch action", code="pdf_active_content")
            _walk(item, depth + 1)
    elif isinstance(value, generic.ArrayObject):
        for item in value:
            _walk(item, depth + 1)


def check_pdf(data: bytes) -> int:
    """Refuse a file that must not become a court act (:class:`ActRejected`); its number of pages if fine."""
    if not data.startswith(b"%PDF-"):
        raise ActRejected("the file is not a PDF", code="not_pdf")
    if _ACTIVE_BYTES.search(data):
        raise ActRejected("the PDF contains JavaScript or a launch action", code="pdf_active_content")
    try:
        reader = PdfFileReader(BytesIO(data), strict=True)
        if reader.encrypted:
            raise ActRejected("the PDF is encrypted", code="pdf_encrypted")
        for revision in range(reader.xrefs.total_revisions):
            for ref in reader.xrefs.explicit_refs_in_revision(revision):
                _walk(reader.get_object(ref, revision=revision))
        pages = int(reader.root["/Pages"]["/Count"])
    except ActRejected:
        raise
    except (PdfError, KeyError, ValueError, TypeError, IndexError, AttributeError) as exc:
        raise ActRejected(f"the PDF is damaged: {exc}", code="pdf_damaged") from exc
    if pages < 1:
        raise ActRejected("the PDF has no page", code="pdf_damaged")
    return pages


def court_signer(cert_path: Path, key_path: Path) -> signers.SimpleSigner:
    """The court's key and certificate as a pyHanko signer."""
    signer = signers.SimpleSigner.load(str(key_path), str(cert_path))
    if signer is None:
        raise ValueError("the court's key and certificate cannot be loaded for signing")
    return signer


def _one_cert(pem: str) -> x509.Certificate:
    [cert] = load_certs_from_pemder_data(pem.encode())
    return cert


def judge_signer(key_der: bytes, cert_pem: str, chain_pem: str) -> signers.SimpleSigner:
    """A judge's unwrapped key (PKCS#8 DER) and certificate as a pyHanko signer; the chain goes in the CMS."""
    chain = list(load_certs_from_pemder_data(chain_pem.encode())) if chain_pem else []
    return signers.SimpleSigner(
        signing_cert=_one_cert(cert_pem),
        signing_key=asn1_keys.PrivateKeyInfo.load(key_der),
        cert_registry=SimpleCertificateStore.from_certs(chain),
    )


def sign_act(data: bytes, *, signer: signers.SimpleSigner, court: str, reason: str) -> SignedAct:
    """``data`` with a PAdES signature by ``signer`` appended (blocking: run it in a thread)."""
    meta = signers.PdfSignatureMetadata(
        field_name=SIGNATURE_FIELD,
        subfilter=fields.SigSeedSubFilter.PADES,
        md_algorithm="sha256",
        reason=reason,
        location=court,
        name=court,
    )
    writer = IncrementalPdfFileWriter(BytesIO(data), strict=True)
    signed = signers.sign_pdf(writer, meta, signer=signer)
    certificate = signer.signing_cert
    assert certificate is not None
    # The signer as people name it (the certificate's common name), e.g. "Алматы қалалық соты".
    subject = str(certificate.subject.native.get("common_name") or certificate.subject.human_friendly)
    return SignedAct(
        data=signed.getvalue(), signer_subject=subject, signed_at=_signing_time(signed.getvalue())
    )


def _signing_time(data: bytes) -> datetime:
    reader = PdfFileReader(BytesIO(data))
    [signature] = reader.embedded_signatures
    claimed = signature.self_reported_timestamp
    assert claimed is not None
    return claimed


async def signature_holds(data: bytes, cert_path: Path, signer_cert_pem: str | None = None) -> bool:
    """Whether the act's one signature is intact, valid and made with the court's certificate, or with the
    judge's certificate ``signer_cert_pem`` recorded when it was signed (pyHanko)."""
    try:
        [signature] = PdfFileReader(BytesIO(data)).embedded_signatures
        trusted = _one_cert(signer_cert_pem) if signer_cert_pem else load_cert_from_pemder(str(cert_path))
        status = await async_validate_pdf_signature(signature, ValidationContext(trust_roots=[trusted]))
    except (PdfError, ValueError, OSError):
        return False
    return bool(status.bottom_line and status.coverage == SignatureCoverageLevel.ENTIRE_FILE)
