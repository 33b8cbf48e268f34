"""chiploc's verifier: signed verdict certificates and audit verification.

(The report collector - fetch, verify, solve, store, certify - joins later.)
Formats: ``docs/store.md``.
"""

from verifier._audit import AuditReport, verify_audit
from verifier._certificate import (
    CERTIFICATE_DOMAIN,
    CERTIFICATE_FORMAT,
    DEFAULT_VALIDITY_S,
    MAX_CERTIFICATE_BYTES,
    Certificate,
    SignedCertificate,
    issue_certificate,
    region_digest_hex,
    verify_certificate,
)
from verifier._enrol import RegistryTables, record_registry
from verifier._types import RegistryLike, Signer, VerifierEntryLike

__all__ = [
    "CERTIFICATE_DOMAIN",
    "CERTIFICATE_FORMAT",
    "DEFAULT_VALIDITY_S",
    "MAX_CERTIFICATE_BYTES",
    "AuditReport",
    "Certificate",
    "RegistryLike",
    "RegistryTables",
    "SignedCertificate",
    "Signer",
    "VerifierEntryLike",
    "issue_certificate",
    "record_registry",
    "region_digest_hex",
    "verify_audit",
    "verify_certificate",
]
