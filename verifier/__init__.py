"""chiploc's verifier: collect, verify, solve, store and certify; audit verification.

- collector (aiohttp edge): :class:`Collector` triggers rounds at landmarks
  (``POST /v1/rounds``) and follows ``GET /v1/reports?since=CURSOR``; every
  report is verified before it is stored or used.
- pipeline: :func:`screen_reports` (verify + freshness, counted per reason;
  lazy verification with a sampled full check: :class:`LazyVerification`),
  :func:`group_evidence` (per chip, per landmark minimum), :func:`judge_chip`
  / :func:`judge_all` (solve), :func:`record_judgement` (certificate + store).
- certificates and audit: :func:`issue_certificate`, :func:`verify_certificate`,
  :func:`verify_audit`, :func:`record_registry`.

Formats: ``docs/store.md``; the demo that runs it all: ``docs/demo.md``.
"""

from chiploc.verifier._audit import AuditReport, verify_audit
from chiploc.verifier._certificate import (
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
from chiploc.verifier._collector import Collection, Collector, RoundTarget, TriggerOutcome
from chiploc.verifier._enrol import RegistryTables, record_registry
from chiploc.verifier._lazy import DEFAULT_FULL_CHECK_RATE, LazyVerification
from chiploc.verifier._pipeline import (
    DEFAULT_MAX_AGE_S,
    DEFAULT_MAX_SKEW_S,
    ChipEvidence,
    ChipJudgement,
    IssuedVerdict,
    Screened,
    group_evidence,
    judge_all,
    judge_chip,
    record_judgement,
    screen_reports,
)
from chiploc.verifier._types import RegistryLike, Signer, VerifierEntryLike

__all__ = [
    "CERTIFICATE_DOMAIN",
    "CERTIFICATE_FORMAT",
    "DEFAULT_FULL_CHECK_RATE",
    "DEFAULT_MAX_AGE_S",
    "DEFAULT_MAX_SKEW_S",
    "DEFAULT_VALIDITY_S",
    "MAX_CERTIFICATE_BYTES",
    "AuditReport",
    "Certificate",
    "ChipEvidence",
    "ChipJudgement",
    "Collection",
    "Collector",
    "IssuedVerdict",
    "LazyVerification",
    "RegistryLike",
    "RegistryTables",
    "RoundTarget",
    "Screened",
    "SignedCertificate",
    "Signer",
    "TriggerOutcome",
    "VerifierEntryLike",
    "group_evidence",
    "issue_certificate",
    "judge_all",
    "judge_chip",
    "record_judgement",
    "record_registry",
    "region_digest_hex",
    "screen_reports",
    "verify_audit",
    "verify_certificate",
]
