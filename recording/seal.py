"""The seal: a manifest of every file of an ended hearing, signed by the court (detached CMS).

``openssl cms -verify -binary -content manifest.json -in manifest.json.p7s
-inform DER -CAfile court.pem -purpose any`` checks it without our code.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import av
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from recording.checkpoints import CHECKPOINTS_NAME, check_checkpoints, read_checkpoints
from recording.checkpoints import summary as checkpoint_summary
from recording.cms import SignerKey, sign_detached
from recording.confirmation_log import LOG_FILE_NAME, ConfirmationLog, LogEvent, utc_timestamp
from recording.durable import write_durably
from recording.hashchain import canonical_json, read_chain, verify_chain
from recording.media_info import MEDIA_EXTENSIONS, read_media_info
from recording.pem import write_pem_pair

MANIFEST_NAME = "manifest.json"
SIGNATURE_NAME = "manifest.json.p7s"
PLAYBACK_DIR = "playback"  # derived copies live here; they are not evidence and not sealed
MANIFEST_FORMAT = "hearing-server/manifest/1"
_CHUNK = 1 << 20


class SealError(Exception):
    """The hearing folder cannot be sealed as it is."""


@dataclass(frozen=True)
class CourtSigner:
    """The court's certificate and private key that seals hearings."""

    certificate: x509.Certificate
    key: SignerKey

    @property
    def subject(self) -> str:
        """The signer's subject (RFC 4514), e.g. ``CN=Regional Court Almaty``."""
        return self.certificate.subject.rfc4514_string()

    @classmethod
    def load(cls, cert_path: Path | str, key_path: Path | str, password: bytes | None = None) -> CourtSigner:
        """Read a PEM certificate and PEM private key."""
        certificate = x509.load_pem_x509_certificate(Path(cert_path).read_bytes())
        key = serialization.load_pem_private_key(Path(key_path).read_bytes(), password)
        if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            raise SealError("the court key must be RSA or EC")
        spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        if certificate.public_key().public_bytes(*spki) != key.public_key().public_bytes(*spki):
            raise SealError("the court certificate does not belong to the court key")
        return cls(certificate, key)


# RFC 5280 ub-common-name; cryptography counts it in UTF-8 bytes, so a Cyrillic court name of 33+ letters
# would not fit (the organization name keeps the whole name).
COMMON_NAME_BYTES = 64


def common_name(court_name: str) -> str:
    """The court's name cut (at a character) to what a certificate's common name may hold."""
    cut = court_name.encode("utf-8")[:COMMON_NAME_BYTES].decode("utf-8", errors="ignore")
    return cut.rstrip() or "court"


def generate_court_certificate(
    cert_path: Path | str, key_path: Path | str, court_name: str, *, days: int = 3650
) -> CourtSigner:
    """A self-signed development court certificate (EC P-256); an existing pair is loaded instead."""
    cert_path, key_path = Path(cert_path), Path(key_path)
    if cert_path.exists() and key_path.exists():
        return CourtSigner.load(cert_path, key_path)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name(court_name)),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, court_name),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "hearing-server development seal"),
        ]
    )
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    write_pem_pair(cert_path, key_path, certificate, key)
    return CourtSigner(certificate, key)


def sha256_file(path: Path) -> str:
    """SHA-256 (hex) of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def evidence_files(folder: Path) -> Iterator[Path]:
    """Every file of a hearing folder that the seal covers (all but the seal itself and playback copies)."""
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if (
            not path.is_file()
            or rel.parts[0] == PLAYBACK_DIR
            or rel.as_posix() in (MANIFEST_NAME, SIGNATURE_NAME)
        ):
            continue
        yield path


def describe_file(folder: Path, path: Path) -> dict[str, Any]:
    """One manifest entry: path, size, SHA-256 and, for media, codec, timeline span and owner."""
    entry: dict[str, Any] = {
        "path": path.relative_to(folder).as_posix(),
        "size": path.stat().st_size,
        "sha256": sha256_file(path),
    }
    if path.name == LOG_FILE_NAME and path.parent == folder:
        entry["kind"] = "confirmation_log"
    elif path.suffix.lower() in MEDIA_EXTENSIONS:
        try:
            info = read_media_info(path)
        except (av.FFmpegError, IndexError) as exc:
            entry.update(kind="media", error=f"unreadable media: {exc}")
        else:
            entry.update(
                kind=info.kind,
                codec=info.codec,
                duration_s=round(info.duration_s, 3),
                first_timestamp_s=info.first_timestamp_s,
                last_timestamp_s=info.last_timestamp_s,
                packets=info.packets,
                participant_id=info.participant_id,
                track_id=info.track_id,
                segment=info.segment,
                epoch_utc=info.epoch.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if info.epoch else None,
            )
            if info.width is not None:
                entry.update(width=info.width, height=info.height)
    else:
        entry["kind"] = "other"
    return entry


def build_manifest(
    folder: Path | str,
    hearing_id: str,
    signer_subject: str,
    sealed_at: datetime | None = None,
    *,
    checkpoint_signer: x509.Certificate | None = None,
) -> dict[str, Any]:
    """The manifest of a hearing folder as it is now.

    A log that contradicts one of its signed checkpoints (by ``checkpoint_signer``, the court) is refused:
    it was rewritten after the court signed it, and sealing it would vouch for the rewrite.
    """
    folder = Path(folder)
    log_path = folder / LOG_FILE_NAME
    if not log_path.exists():
        raise SealError(f"no confirmation log in {folder}")
    chain = verify_chain(log_path)
    if not chain.valid:
        assert chain.problem is not None
        raise SealError(f"confirmation log is broken: {chain.problem.describe()}")
    manifest: dict[str, Any] = {
        "format": MANIFEST_FORMAT,
        "hearing_id": hearing_id,
        "sealed_at": utc_timestamp(sealed_at),
        "signer": signer_subject,
        "confirmation_log": {"path": LOG_FILE_NAME, "entries": chain.entries, "last_hash": chain.last_hash},
        "files": [describe_file(folder, p) for p in evidence_files(folder)],
    }
    checkpoints = read_checkpoints(folder)
    if checkpoints:
        findings = check_checkpoints(checkpoints, hearing_id, read_chain(log_path), checkpoint_signer)
        if findings:
            first = findings[0]
            raise SealError(
                f"{CHECKPOINTS_NAME} line {first.line} (seq {first.seq}): {first.detail}"
                + (f" (and {len(findings) - 1} more)" if len(findings) > 1 else "")
            )
        manifest["checkpoints"] = checkpoint_summary(checkpoints)
    return manifest


@dataclass(frozen=True)
class SealResult:
    """A sealed hearing: where the manifest and its signature are, and who signed."""

    manifest_path: Path
    signature_path: Path
    signer_subject: str
    manifest: dict[str, Any]


def seal_hearing(
    folder: Path | str,
    hearing_id: str,
    signer: CourtSigner,
    *,
    log: ConfirmationLog | None = None,
    actor: str | None = None,
) -> SealResult:
    """Write and sign the manifest of an ended hearing.

    With ``log`` given, a ``hearing_sealed`` entry is appended first (so the seal
    covers it) and the log is closed: nothing may be appended after the seal.
    """
    folder = Path(folder)
    if (folder / MANIFEST_NAME).exists() or (folder / SIGNATURE_NAME).exists():
        raise SealError(f"{folder} is already sealed")
    if log is not None:
        log.append(
            LogEvent.HEARING_SEALED,
            actor=actor,
            details={"signer": signer.subject, "manifest": MANIFEST_NAME},
        )
        log.close()
    manifest = build_manifest(folder, hearing_id, signer.subject, checkpoint_signer=signer.certificate)
    data = canonical_json(manifest)
    manifest_path, signature_path = folder / MANIFEST_NAME, folder / SIGNATURE_NAME
    write_durably(manifest_path, data)
    write_durably(signature_path, sign_detached(data, signer.certificate, signer.key))
    return SealResult(manifest_path, signature_path, signer.subject, manifest)
