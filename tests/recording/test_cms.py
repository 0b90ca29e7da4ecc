"""The detached CMS verifier refuses malformed and forged signatures with a clear reason, as openssl does."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest
from asn1crypto import cms
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives.serialization import Encoding

from recording.cms import sign_detached, verify_detached
from recording.seal import CourtSigner, generate_court_certificate

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl CLI not installed")

DATA = b'{"files":[],"hearing_id":"h-1"}'


@pytest.fixture(scope="module")
def other(tmp_path_factory: pytest.TempPathFactory) -> CourtSigner:
    folder = tmp_path_factory.mktemp("other")
    return generate_court_certificate(folder / "other.pem", folder / "other.key", "Some Other Court")


def openssl_accepts(tmp_path: Path, data: bytes, signature: bytes, ca: Path) -> bool:
    (tmp_path / "content").write_bytes(data)
    (tmp_path / "sig.p7s").write_bytes(signature)
    done = subprocess.run(
        ["openssl", "cms", "-verify", "-binary", "-content", str(tmp_path / "content"),
         "-in", str(tmp_path / "sig.p7s"), "-inform", "DER", "-CAfile", str(ca), "-purpose", "any",
         "-out", "/dev/null"],
        capture_output=True, text=True,
    )  # fmt: skip
    return done.returncode == 0


def signer_info(signature: bytes) -> tuple[cms.ContentInfo, cms.SignerInfo]:
    content_info = cms.ContentInfo.load(signature)
    return content_info, content_info["content"]["signer_infos"][0]


def test_an_intact_signature_holds_here_and_in_openssl(
    court: tuple[CourtSigner, Path], tmp_path: Path
) -> None:
    signer, ca = court
    signature = sign_detached(DATA, signer.certificate, signer.key)
    result = verify_detached(DATA, signature, signer.certificate)
    assert (result.valid, result.trusted, result.reason) == (True, True, None)
    assert result.signer == signer.certificate
    assert openssl_accepts(tmp_path, DATA, signature, ca)


def test_another_courts_signature_is_valid_but_not_trusted(
    court: tuple[CourtSigner, Path], other: CourtSigner, tmp_path: Path
) -> None:
    signature = sign_detached(DATA, other.certificate, other.key)
    result = verify_detached(DATA, signature, court[0].certificate)
    assert (result.valid, result.trusted, result.reason) == (True, False, "signer is not trusted")
    assert "Some Other Court" in (result.signer_subject or "")
    assert not openssl_accepts(tmp_path, DATA, signature, court[1])


def test_a_signature_claiming_the_court_as_signer_is_refused(
    court: tuple[CourtSigner, Path], other: CourtSigner, tmp_path: Path
) -> None:
    """Made with another key, the court's certificate and identifier put in: the signature does not match."""
    signer, ca = court
    content_info, info = signer_info(sign_detached(DATA, other.certificate, other.key))
    court_cert = asn1_x509.Certificate.load(signer.certificate.public_bytes(Encoding.DER))
    content_info["content"]["certificates"] = cms.CertificateSet(
        [cms.CertificateChoices({"certificate": court_cert})]
    )
    info["sid"] = cms.SignerIdentifier(
        {
            "issuer_and_serial_number": {
                "issuer": court_cert.issuer,
                "serial_number": court_cert.serial_number,
            }
        }
    )
    forged = content_info.dump(force=True)
    result = verify_detached(DATA, forged, signer.certificate)
    assert not result.valid and result.reason == "signature does not match the signed attributes"
    assert result.signer == signer.certificate
    assert not openssl_accepts(tmp_path, DATA, forged, ca)


def test_altered_signed_attributes_are_refused(court: tuple[CourtSigner, Path], tmp_path: Path) -> None:
    signer, ca = court
    signature = sign_detached(DATA, signer.certificate, signer.key)
    _, info = signer_info(signature)
    attrs = info["signed_attrs"].dump()
    at = signature.index(attrs)
    time_at = at + attrs.index(b"\x17\x0d") + 2  # the signing time, a UTCTime: YYMMDDHHMMSSZ
    forged = bytearray(signature)
    forged[time_at] = ord("0") if forged[time_at] != ord("0") else ord("1")  # another decade
    result = verify_detached(DATA, bytes(forged), signer.certificate)
    assert not result.valid and result.reason == "signature does not match the signed attributes"
    assert not openssl_accepts(tmp_path, DATA, bytes(forged), ca)


def test_an_altered_content_digest_is_refused(court: tuple[CourtSigner, Path], tmp_path: Path) -> None:
    """The signed digest replaced by the digest of other content: the content no longer matches it."""
    signer, ca = court
    signature = sign_detached(DATA, signer.certificate, signer.key)
    other_data = DATA.replace(b"h-1", b"h-2")
    forged = signature.replace(hashlib.sha256(DATA).digest(), hashlib.sha256(other_data).digest())
    assert forged != signature
    assert verify_detached(DATA, forged).reason == "content does not match the signed digest"
    # and for the other content, the digest now matches but the signature over the attributes does not
    result = verify_detached(other_data, forged, signer.certificate)
    assert not result.valid and result.reason == "signature does not match the signed attributes"
    assert not openssl_accepts(tmp_path, other_data, forged, ca)


@pytest.mark.parametrize("cut", [1, 40, 200])
def test_truncated_der_is_unreadable(court: tuple[CourtSigner, Path], cut: int) -> None:
    signer, _ = court
    signature = sign_detached(DATA, signer.certificate, signer.key)
    result = verify_detached(DATA, signature[:-cut], signer.certificate)
    assert not result.valid and result.signer is None
    assert (result.reason or "").startswith("unreadable signature: ")


def test_trailing_bytes_and_garbage_are_unreadable(court: tuple[CourtSigner, Path]) -> None:
    signer, _ = court
    signature = sign_detached(DATA, signer.certificate, signer.key)
    for bad in (
        signature + b"\x00\x00",
        b"garbage",
        b"",
        b"-----BEGIN PKCS7-----\n!!\n-----END PKCS7-----\n",
    ):
        result = verify_detached(DATA, bad)
        assert not result.valid and (result.reason or "").startswith("unreadable signature: "), bad


def test_a_signature_without_the_signer_certificate_is_refused(court: tuple[CourtSigner, Path]) -> None:
    signer, _ = court
    content_info, _ = signer_info(sign_detached(DATA, signer.certificate, signer.key))
    content_info["content"]["certificates"] = cms.CertificateSet([])
    result = verify_detached(DATA, content_info.dump(force=True), signer.certificate)
    assert not result.valid and result.reason == "signer certificate is not in the signature"


def test_two_signers_or_no_signed_attributes_are_refused(court: tuple[CourtSigner, Path]) -> None:
    signer, _ = court
    content_info, info = signer_info(sign_detached(DATA, signer.certificate, signer.key))
    content_info["content"]["signer_infos"] = cms.SignerInfos([info, info])
    assert verify_detached(DATA, content_info.dump(force=True)).reason == "expected one signer, found 2"
    content_info, info = signer_info(sign_detached(DATA, signer.certificate, signer.key))
    info["signed_attrs"] = cms.CMSAttributes([])
    content_info["content"]["signer_infos"] = cms.SignerInfos([info])
    assert verify_detached(DATA, content_info.dump(force=True)).reason == "signature has no signed attributes"


def test_content_that_is_not_signed_data_is_refused() -> None:
    other = cms.ContentInfo({"content_type": "data", "content": b"hello"}).dump()
    assert verify_detached(DATA, other).reason == "not a CMS SignedData"
