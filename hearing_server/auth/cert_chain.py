"""Whether a judge's signing certificate chains to a CA the court trusts (pyhanko-certvalidator).

The trust roots are a PEM bundle named in the configuration (``judge_trust_roots``); without one, no chain
is required (any certificate the judge holds the key of signs, as before).  Revocation is never fetched
(this server talks to no outside address): the court's CAs' revocation lists are files the court keeps
current (``judge_crls``).  When they are set, a judge's certificate needs a current list of its issuing
CA that does not name it; an intermediate CA is checked when it names a distribution point and its
issuer's list is there (pyhanko's "check if declared").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from asn1crypto import crl, pem, x509
from pyhanko.keys import load_certs_from_pemder, load_certs_from_pemder_data
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from pyhanko_certvalidator.errors import (
    InsufficientRevinfoError,
    PathBuildingError,
    PathValidationError,
    RevokedError,
    ValidationError,
)
from pyhanko_certvalidator.policy_decl import (
    CertRevTrustPolicy,
    RevocationCheckingPolicy,
    RevocationCheckingRule,
)

from hearing_server.domain.errors import HearingError, InvalidInput


class CertificateUntrusted(InvalidInput):
    """The certificate does not chain to a CA in the court's trust roots."""

    code = "certificate_untrusted"


class CertificateRevoked(CertificateUntrusted):
    """The certificate is on its CA's revocation list."""

    code = "certificate_revoked"


class RevocationUnknown(CertificateUntrusted):
    """No current revocation list of the certificate's CA is among the court's."""

    code = "certificate_revocation_unknown"


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


# with revocation lists: a current list of the judge's CA is required; an intermediate's if it declares one
_CRL_POLICY = CertRevTrustPolicy(
    RevocationCheckingPolicy(
        ee_certificate_rule=RevocationCheckingRule.CRL_REQUIRED,
        intermediate_ca_cert_rule=RevocationCheckingRule.CHECK_IF_DECLARED_SOFT,
    )
)


def load_crls(paths: Sequence[Path]) -> list[crl.CertificateList]:
    """The revocation lists in the PEM or DER files at ``paths`` (blocking); :class:`TrustRootsUnavailable`
    when one cannot be read or holds none."""
    lists: list[crl.CertificateList] = []
    for path in paths:
        try:
            data = path.read_bytes()
            ders = (
                [der for _kind, _headers, der in pem.unarmor(data, multiple=True)]
                if pem.detect(data)
                else [data]
            )
            # parsed now (``.native``): a damaged list fails here, not in the middle of a validation
            found = [crl.CertificateList.load(der) for der in ders]
            _ = [item.native for item in found]
        except (OSError, ValueError, TypeError) as exc:
            raise TrustRootsUnavailable(
                f"the judges' revocation list ({path}) cannot be read: {exc}"
            ) from exc
        if not found:
            raise TrustRootsUnavailable(f"the judges' revocation list ({path}) holds none")
        lists.extend(found)
    return lists


@dataclass(frozen=True)
class CourtTrust:
    """The CAs judges' certificates must chain to, and the revocation lists the court holds of them."""

    roots: list[x509.Certificate]
    crls: list[crl.CertificateList]


def load_trust(roots: Path, crls: Sequence[Path]) -> CourtTrust:
    """The trust roots at ``roots`` and the revocation lists at ``crls``, read afresh (blocking)."""
    return CourtTrust(load_trust_roots(roots), load_crls(crls))


async def check_chain(cert_pem: str, chain_pem: str, trust: CourtTrust, moment: datetime) -> None:
    """Refuse (:class:`CertificateUntrusted`) a certificate with no valid path to one of the court's roots
    at ``moment``, and (:class:`CertificateRevoked`) one that the court's lists name as revoked;
    ``chain_pem`` holds the intermediates that came with it."""
    [cert] = load_certs_from_pemder_data(cert_pem.encode())
    intermediates = list(load_certs_from_pemder_data(chain_pem.encode())) if chain_pem else []
    context = ValidationContext(
        trust_roots=trust.roots,
        other_certs=intermediates,
        moment=moment,
        allow_fetching=False,
        crls=trust.crls,
        revinfo_policy=_CRL_POLICY if trust.crls else None,
    )
    validator = CertificateValidator(cert, intermediate_certs=intermediates, validation_context=context)
    name = cert.subject.native.get("common_name") or cert.subject.human_friendly
    try:
        await validator.async_validate_path()
    except RevokedError as exc:
        raise CertificateRevoked(f"the certificate of {name} has been revoked by its CA ({exc})") from exc
    except InsufficientRevinfoError as exc:
        raise RevocationUnknown(
            f"the court holds no current revocation list of the CA that issued the certificate of {name} "
            f"({exc}); the administrator must add the CA's latest list (judge_crls)"
        ) from exc
    except (PathBuildingError, PathValidationError, ValidationError) as exc:
        raise CertificateUntrusted(
            f"the certificate of {name} does not chain to a CA the court trusts ({exc})"
        ) from exc
