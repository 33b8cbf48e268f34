"""chiploc's project store: identities, rounds, verdicts and a hash-chained audit log.

``open_store(path)`` gives the embedded sqlite3 implementation (WAL,
``synchronous=FULL``, versioned migrations), the default.
``PostgresStore.open(url)`` gives the PostgreSQL one (psycopg 3, a connection
pool, COPY for batches, an advisory lock serialising the audit chain across
processes). ``open_database(path_or_url)`` picks by what ``--db`` says. Both
implement :class:`Store`. The audit chain's pure core
(:func:`verify_chain`) lives here; :func:`verifier.verify_audit` cross-checks
it against the stored rows. Schema, migrations and chain format:
``docs/store.md``.
"""

from chiploc.common.canonical import canonical_json, parse_json_strict, sha256_hex
from chiploc.store._audit import (
    AUDIT_DOMAIN,
    AUDIT_KINDS,
    GENESIS_HASH_HEX,
    AuditAnchor,
    AuditEntry,
    ChainSummary,
    audit_entry_hash,
    next_audit_entry,
    verify_chain,
)
from chiploc.store._base import Store
from chiploc.store._mesh import (
    MESH_ACTIONS,
    MeshFlagRecord,
    MeshMinimum,
    MeshRoundRecord,
    mesh_flag_audit_payload,
    mesh_round_audit_payload,
)
from chiploc.store._open import open_database
from chiploc.store._postgres import ADVISORY_LOCK_KEY, PostgresStore, is_postgres_url, redact_url
from chiploc.store._records import (
    MODELS,
    ROLES,
    VERDICTS,
    BatchResult,
    BatchRound,
    BatchVerdict,
    ChipRecord,
    EnrolmentRecord,
    LandmarkRecord,
    ReportLike,
    RoundInsert,
    RoundRecord,
    VerdictRecord,
    enrolment_audit_payload,
    round_audit_payload,
    verdict_audit_payload,
)
from chiploc.store._schema import APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION, Migration
from chiploc.store._sqlite import SqliteStore, open_store

__all__ = [
    "ADVISORY_LOCK_KEY",
    "APPLICATION_ID",
    "AUDIT_DOMAIN",
    "AUDIT_KINDS",
    "GENESIS_HASH_HEX",
    "MESH_ACTIONS",
    "MIGRATIONS",
    "MODELS",
    "ROLES",
    "SCHEMA_VERSION",
    "VERDICTS",
    "AuditAnchor",
    "AuditEntry",
    "BatchResult",
    "BatchRound",
    "BatchVerdict",
    "ChainSummary",
    "ChipRecord",
    "EnrolmentRecord",
    "LandmarkRecord",
    "MeshFlagRecord",
    "MeshMinimum",
    "MeshRoundRecord",
    "Migration",
    "PostgresStore",
    "ReportLike",
    "RoundInsert",
    "RoundRecord",
    "SqliteStore",
    "Store",
    "VerdictRecord",
    "audit_entry_hash",
    "canonical_json",
    "enrolment_audit_payload",
    "is_postgres_url",
    "mesh_flag_audit_payload",
    "mesh_round_audit_payload",
    "next_audit_entry",
    "open_database",
    "open_store",
    "parse_json_strict",
    "redact_url",
    "round_audit_payload",
    "sha256_hex",
    "verdict_audit_payload",
    "verify_chain",
]
