"""chiploc's verifier: collect, verify, solve, store and certify; audit verification.

- collector (aiohttp edge): :class:`Collector` triggers rounds at landmarks
  (``POST /v1/rounds``) and follows ``GET /v1/reports?since=CURSOR``; every
  report is verified before it is stored or used.
- pipeline: :func:`screen_reports` (verify + freshness, counted per reason;
  lazy verification with a sampled full check: :class:`LazyVerification`),
  :func:`group_evidence` (per chip, per landmark minimum), :func:`judge_chip`
  / :func:`judge_all` (solve), :func:`record_judgement` (certificate + store).
- mesh (``docs/mesh.md``): :func:`screen_mesh_reports`, :func:`assess_and_flag`
  (suspects, audited), :func:`clear_suspect`, :func:`without_landmarks` (suspects out of
  every proof), :func:`mesh_links` (minimum RTTs from the store).
- certificates and audit: :func:`issue_certificate`, :func:`verify_certificate`,
  :func:`certificate_status`,
  :func:`verify_audit`, :func:`record_registry`.

- fleet scale: :func:`make_batches` / :func:`run_fleet` verify and judge a
  fleet in batches, in-process or on Dask distributed (:func:`parse_cluster`,
  :func:`dask_client` with :data:`LOCAL_CLUSTER_CONFIG`, :func:`dask_executor`),
  writing each batch through a :class:`StoreSink`; :func:`plan_step` plans adaptive
  measurement (which landmarks measure which chip next). ``docs/scale.md``.

Formats: ``docs/store.md``; the demo that runs it all: ``docs/demo.md``.
"""

from chiploc.verifier._audit import AuditReport, verify_audit
from chiploc.verifier._certificate import (
    CERTIFICATE_DOMAIN,
    CERTIFICATE_FORMAT,
    DEFAULT_VALIDITY_S,
    MAX_CERTIFICATE_BYTES,
    Certificate,
    CertificateStatus,
    SignedCertificate,
    certificate_status,
    issue_certificate,
    region_digest_hex,
    verify_certificate,
)
from chiploc.verifier._collector import Collection, Collector, RoundTarget, TriggerOutcome
from chiploc.verifier._dask import (
    LOCAL_CLUSTER_CONFIG,
    ClusterSpec,
    dask_client,
    dask_executor,
    parse_cluster,
)
from chiploc.verifier._enrol import RegistryTables, record_registry
from chiploc.verifier._fleet import (
    DEFAULT_BATCH_CHIPS,
    BatchOutcome,
    BatchParams,
    Executor,
    FleetRun,
    FleetSink,
    JudgedChip,
    StoreSink,
    WorkBatch,
    chip_regions_of,
    in_process,
    make_batches,
    prepare_zones,
    run_fleet,
    verify_batch,
)
from chiploc.verifier._lazy import DEFAULT_FULL_CHECK_RATE, LazyVerification
from chiploc.verifier._mesh import (
    MeshStatus,
    assess_and_flag,
    clear_suspect,
    is_mesh_report,
    mesh_links,
    screen_mesh_reports,
    without_landmarks,
)
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
from chiploc.verifier._plan import (
    SETTLED,
    ChipState,
    PlanPolicy,
    PlanSite,
    StepPlan,
    chip_state,
    plan_step,
    spread_pick,
)
from chiploc.verifier._types import RegistryLike, Signer, VerifierEntryLike

__all__ = [
    "CERTIFICATE_DOMAIN",
    "CERTIFICATE_FORMAT",
    "DEFAULT_BATCH_CHIPS",
    "DEFAULT_FULL_CHECK_RATE",
    "DEFAULT_MAX_AGE_S",
    "DEFAULT_MAX_SKEW_S",
    "DEFAULT_VALIDITY_S",
    "LOCAL_CLUSTER_CONFIG",
    "MAX_CERTIFICATE_BYTES",
    "SETTLED",
    "AuditReport",
    "BatchOutcome",
    "BatchParams",
    "Certificate",
    "CertificateStatus",
    "ChipEvidence",
    "ChipJudgement",
    "ChipState",
    "ClusterSpec",
    "Collection",
    "Collector",
    "Executor",
    "FleetRun",
    "FleetSink",
    "IssuedVerdict",
    "JudgedChip",
    "LazyVerification",
    "MeshStatus",
    "PlanPolicy",
    "PlanSite",
    "RegistryLike",
    "RegistryTables",
    "RoundTarget",
    "Screened",
    "SignedCertificate",
    "Signer",
    "StepPlan",
    "StoreSink",
    "TriggerOutcome",
    "VerifierEntryLike",
    "WorkBatch",
    "assess_and_flag",
    "certificate_status",
    "chip_regions_of",
    "chip_state",
    "clear_suspect",
    "dask_client",
    "dask_executor",
    "group_evidence",
    "in_process",
    "is_mesh_report",
    "issue_certificate",
    "judge_all",
    "judge_chip",
    "make_batches",
    "mesh_links",
    "parse_cluster",
    "plan_step",
    "prepare_zones",
    "record_judgement",
    "record_registry",
    "region_digest_hex",
    "run_fleet",
    "screen_mesh_reports",
    "screen_reports",
    "spread_pick",
    "verify_audit",
    "verify_batch",
    "verify_certificate",
    "without_landmarks",
]
