"""chiploc's project store: identities, rounds, verdicts and a hash-chained audit log.

``open_store(path)`` gives the embedded sqlite3 implementation (WAL,
``synchronous=FULL``, versioned migrations). :class:`Store` is the protocol a
server database can implement later. The audit chain's pure core
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
from chiploc.store._records import (
    MODELS,
    ROLES,
    VERDICTS,
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
    "ChainSummary",
    "ChipRecord",
    "EnrolmentRecord",
    "LandmarkRecord",
    "MeshFlagRecord",
    "MeshMinimum",
    "MeshRoundRecord",
    "Migration",
    "ReportLike",
    "RoundInsert",
    "RoundRecord",
    "SqliteStore",
    "Store",
    "VerdictRecord",
    "audit_entry_hash",
    "canonical_json",
    "enrolment_audit_payload",
    "mesh_flag_audit_payload",
    "mesh_round_audit_payload",
    "next_audit_entry",
    "open_store",
    "parse_json_strict",
    "round_audit_payload",
    "sha256_hex",
    "verdict_audit_payload",
    "verify_chain",
]
