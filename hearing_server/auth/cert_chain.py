"""Whether a judge's signing certificate chains to a CA the court trusts (pyhanko-certvalidator).

The trust roots are a PEM bundle named in the configuration (``judge_trust_roots``); without one, no chain
is required (any certificate the judge holds the key of signs, as before).  Revocation is not fetched: this
server talks to no outside address, so only the path (signatures, validity, CA constraints) is checked.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from asn1crypto import x509
from pyhanko.keys import load_certs_from_pemder, load_certs_from_pemder_data
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from pyhanko_certvalidator.errors import PathBuildingError, PathValidationError, ValidationError

from hearing_server.domain.errors import HearingError, InvalidInput


class CertificateUntrusted(InvalidInput):
    """The certificate does not chain to a CA in the court's trust roots."""

    code = "certificate_untrusted"


class TrustRootsUnavailable(HearingError):
    """The configured trust roots cannot be read: no certificate is accepted until they can."""

    code = "trust_roots_unavailable"
    status = 503


def load_trust_roots(path: Path) -> list[x509.Certificate]:
    """The CA certificates of the PEM (or DER) bundle at ``path`` (blocking); :class:`TrustRootsUnavailable`
    when it cannot be read or holds none."""
    try:
        roots = list(load_certs_from_pemder([str(path)]))
    except (OSError, ValueError) as exc:
        raise TrustRootsUnavailable(f"the judges' trust roots ({path}) cannot be read: {exc}") from exc
    if not roots:
        raise TrustRootsUnavailable(f"the judges' trust roots ({path}) hold no certificate")
    return roots


async def check_chain(cert_pem: str, chain_pem: str, roots: list[x509.Certificate], moment: datetime) -> None:
    """Refuse (:class:`CertificateUntrusted`) a certificate with no valid path to one of ``roots`` at
    ``moment``; ``chain_pem`` holds the intermediates that came with it."""
    [cert] = load_certs_from_pemder_data(cert_pem.encode())
    intermediates = list(load_certs_from_pemder_data(chain_pem.encode())) if chain_pem else []
    context = ValidationContext(
        trust_roots=roots, other_certs=intermediates, moment=moment, allow_fetching=False
    )
    validator = CertificateValidator(cert, intermediate_certs=intermediates, validation_context=context)
    try:
        await validator.async_validate_path()
    except (PathBuildingError, PathValidationError, ValidationError) as exc:
        name = cert.subject.native.get("common_name") or cert.subject.human_friendly
        raise CertificateUntrusted(
            f"the certificate of {name} does not chain to a CA the court trusts ({exc})"
        ) from exc
