"""Versioned schema migrations, one list for both backends (SQLite and PostgreSQL).

Invariants:

- ``MIGRATIONS[i]`` takes a database from version ``i`` to ``i + 1``; on
  SQLite the version lives in ``PRAGMA user_version``, on PostgreSQL in
  ``max(version)`` of ``schema_migrations``; each applied step is recorded in
  ``schema_migrations`` on both;
- each step carries the same schema in two dialects (``statements`` for
  SQLite, ``postgresql`` for PostgreSQL): the same tables, columns, unique
  keys and guard triggers, so the same rows and audit payloads come out of
  either backend;
- each step runs in one transaction together with its version bump: a failed
  step leaves the database exactly at the previous version;
- a database whose version is newer than :data:`SCHEMA_VERSION` is refused,
  never downgraded or written;
- migrations are append-only: a released step is never edited, a change is a
  new step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["APPLICATION_ID", "MIGRATIONS", "SCHEMA_VERSION", "Migration"]

#: ``PRAGMA application_id`` of a chiploc store ("CHLC").
APPLICATION_ID: Final = 0x43484C43


@dataclass(frozen=True, slots=True, kw_only=True)
class Migration:
    """One step. ``statements`` is the SQLite dialect, ``postgresql`` the same step for
    PostgreSQL (empty: the step cannot be applied there, and the store refuses to open)."""

    version: int
    description: str
    statements: tuple[str, ...]
    postgresql: tuple[str, ...] = ()


_V1 = (
    """CREATE TABLE schema_migrations (
        version INTEGER PRIMARY KEY,
        description TEXT NOT NULL
    )""",
    """CREATE TABLE landmarks (
        landmark_id TEXT PRIMARY KEY,
        lat REAL NOT NULL CHECK (lat BETWEEN -90 AND 90),
        lon REAL NOT NULL CHECK (lon BETWEEN -180 AND 180),
        operator TEXT NOT NULL,
        public_key BLOB NOT NULL CHECK (typeof(public_key) = 'blob' AND length(public_key) = 32),
        revoked INTEGER NOT NULL CHECK (revoked IN (0, 1)),
        updated_at_unix_ns INTEGER NOT NULL
    )""",
    """CREATE TABLE chips (
        chip_id TEXT PRIMARY KEY,
        region_spec TEXT NOT NULL,
        public_key BLOB NOT NULL CHECK (typeof(public_key) = 'blob' AND length(public_key) = 32),
        revoked INTEGER NOT NULL CHECK (revoked IN (0, 1)),
        updated_at_unix_ns INTEGER NOT NULL
    )""",
    """CREATE TABLE enrolments (
        enrolment_id INTEGER PRIMARY KEY,
        role TEXT NOT NULL CHECK (role IN ('landmark', 'chip', 'verifier')),
        identity_id TEXT NOT NULL,
        public_key BLOB NOT NULL CHECK (typeof(public_key) = 'blob' AND length(public_key) = 32),
        revoked INTEGER NOT NULL CHECK (revoked IN (0, 1)),
        details TEXT NOT NULL,
        recorded_at_unix_ns INTEGER NOT NULL
    )""",
    "CREATE INDEX enrolments_identity ON enrolments (role, identity_id, enrolment_id)",
    """CREATE TABLE rounds (
        round_id INTEGER PRIMARY KEY,
        digest TEXT NOT NULL UNIQUE CHECK (length(digest) = 64),
        landmark_id TEXT NOT NULL,
        chip_id TEXT NOT NULL,
        min_rtt_ns INTEGER CHECK (min_rtt_ns IS NULL OR min_rtt_ns >= 0),
        received_at_unix_ns INTEGER NOT NULL,
        raw BLOB NOT NULL CHECK (typeof(raw) = 'blob')
    )""",
    "CREATE INDEX rounds_chip ON rounds (chip_id, received_at_unix_ns)",
    "CREATE INDEX rounds_landmark ON rounds (landmark_id, received_at_unix_ns)",
    """CREATE TABLE verdicts (
        verdict_id INTEGER PRIMARY KEY,
        chip_id TEXT NOT NULL,
        verdict TEXT NOT NULL,
        model TEXT NOT NULL,
        proof INTEGER NOT NULL CHECK (proof IN (0, 1)),
        region_spec TEXT NOT NULL,
        result_json BLOB NOT NULL,
        certificate BLOB,
        issued_at_unix_ns INTEGER NOT NULL
    )""",
    "CREATE INDEX verdicts_chip ON verdicts (chip_id, issued_at_unix_ns)",
    """CREATE TABLE verdict_evidence (
        verdict_id INTEGER NOT NULL REFERENCES verdicts (verdict_id),
        round_digest TEXT NOT NULL REFERENCES rounds (digest),
        PRIMARY KEY (verdict_id, round_digest)
    )""",
    """CREATE TABLE audit_log (
        seq INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,
        at_unix_ns INTEGER NOT NULL,
        payload BLOB NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
    )""",
    # Guard rails against accidents; the hash chain is what catches an attacker
    # who drops them.
    """CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END""",
    """CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END""",
    """CREATE TRIGGER rounds_no_update BEFORE UPDATE ON rounds
        BEGIN SELECT RAISE(ABORT, 'rounds are immutable'); END""",
    """CREATE TRIGGER rounds_no_delete BEFORE DELETE ON rounds
        BEGIN SELECT RAISE(ABORT, 'rounds are immutable'); END""",
    """CREATE TRIGGER verdicts_no_update BEFORE UPDATE ON verdicts
        BEGIN SELECT RAISE(ABORT, 'verdicts are immutable'); END""",
    """CREATE TRIGGER verdicts_no_delete BEFORE DELETE ON verdicts
        BEGIN SELECT RAISE(ABORT, 'verdicts are immutable'); END""",
)

_PG_V1 = (
    """CREATE TABLE schema_migrations (
        version INTEGER PRIMARY KEY,
        description TEXT NOT NULL
    )""",
    """CREATE TABLE landmarks (
        landmark_id TEXT PRIMARY KEY,
        lat DOUBLE PRECISION NOT NULL CHECK (lat BETWEEN -90 AND 90),
        lon DOUBLE PRECISION NOT NULL CHECK (lon BETWEEN -180 AND 180),
        operator TEXT NOT NULL,
        public_key BYTEA NOT NULL CHECK (length(public_key) = 32),
        revoked BOOLEAN NOT NULL,
        updated_at_unix_ns BIGINT NOT NULL
    )""",
    """CREATE TABLE chips (
        chip_id TEXT PRIMARY KEY,
        region_spec TEXT NOT NULL,
        public_key BYTEA NOT NULL CHECK (length(public_key) = 32),
        revoked BOOLEAN NOT NULL,
        updated_at_unix_ns BIGINT NOT NULL
    )""",
    """CREATE TABLE enrolments (
        enrolment_id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        role TEXT NOT NULL CHECK (role IN ('landmark', 'chip', 'verifier')),
        identity_id TEXT NOT NULL,
        public_key BYTEA NOT NULL CHECK (length(public_key) = 32),
        revoked BOOLEAN NOT NULL,
        details TEXT NOT NULL,
        recorded_at_unix_ns BIGINT NOT NULL
    )""",
    "CREATE INDEX enrolments_identity ON enrolments (role, identity_id, enrolment_id)",
    """CREATE TABLE rounds (
        round_id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        digest TEXT NOT NULL UNIQUE CHECK (length(digest) = 64),
        landmark_id TEXT NOT NULL,
        chip_id TEXT NOT NULL,
        min_rtt_ns BIGINT CHECK (min_rtt_ns IS NULL OR min_rtt_ns >= 0),
        received_at_unix_ns BIGINT NOT NULL,
        raw BYTEA NOT NULL
    )""",
    "CREATE INDEX rounds_chip ON rounds (chip_id, received_at_unix_ns)",
    "CREATE INDEX rounds_landmark ON rounds (landmark_id, received_at_unix_ns)",
    """CREATE TABLE verdicts (
        verdict_id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        chip_id TEXT NOT NULL,
        verdict TEXT NOT NULL,
        model TEXT NOT NULL,
        proof BOOLEAN NOT NULL,
        region_spec TEXT NOT NULL,
        result_json BYTEA NOT NULL,
        certificate BYTEA,
        issued_at_unix_ns BIGINT NOT NULL
    )""",
    "CREATE INDEX verdicts_chip ON verdicts (chip_id, issued_at_unix_ns)",
    """CREATE TABLE verdict_evidence (
        verdict_id BIGINT NOT NULL REFERENCES verdicts (verdict_id),
        round_digest TEXT NOT NULL REFERENCES rounds (digest),
        PRIMARY KEY (verdict_id, round_digest)
    )""",
    """CREATE TABLE audit_log (
        seq BIGINT PRIMARY KEY,
        kind TEXT NOT NULL,
        at_unix_ns BIGINT NOT NULL,
        payload BYTEA NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
    )""",
    # Guard rails against accidents, as on SQLite (plus TRUNCATE, which SQLite lacks).
    """CREATE FUNCTION chiploc_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END $$""",
    *(
        f"CREATE TRIGGER {table}_no_{op} BEFORE {op.upper()} ON {table} "
        f"FOR EACH {'STATEMENT' if op == 'truncate' else 'ROW'} "
        "EXECUTE FUNCTION chiploc_immutable()"
        for table in ("audit_log", "rounds", "verdicts")
        for op in ("update", "delete", "truncate")
    ),
)

# v2: the verdict round. A verdict may name the round it belongs to (a run id, a
# day, a batch); (chip, verdict round) is unique, so a retried batch lands once.
# Verdicts without a round (NULL) stay unconstrained, as before.
_V2 = (
    "ALTER TABLE verdicts ADD COLUMN verdict_round TEXT",
    "CREATE UNIQUE INDEX verdicts_chip_round ON verdicts (chip_id, verdict_round)",
)

# v3: the landmark mesh (docs/mesh.md): signed PEER_REPORTs and the suspect/clear flag log.
_V3 = (
    """CREATE TABLE mesh_rounds (
        mesh_round_id INTEGER PRIMARY KEY,
        digest TEXT NOT NULL UNIQUE CHECK (length(digest) = 64),
        landmark_id TEXT NOT NULL,
        peer_id TEXT NOT NULL CHECK (peer_id <> landmark_id),
        min_rtt_ns INTEGER CHECK (min_rtt_ns IS NULL OR min_rtt_ns >= 0),
        overhead_ns INTEGER NOT NULL CHECK (overhead_ns >= 0),
        received_at_unix_ns INTEGER NOT NULL,
        raw BLOB NOT NULL CHECK (typeof(raw) = 'blob')
    )""",
    "CREATE INDEX mesh_rounds_pair ON mesh_rounds (landmark_id, peer_id, received_at_unix_ns)",
    """CREATE TABLE mesh_flags (
        flag_id INTEGER PRIMARY KEY,
        landmark_id TEXT NOT NULL,
        action TEXT NOT NULL CHECK (action IN ('suspect', 'clear')),
        details BLOB NOT NULL,
        recorded_at_unix_ns INTEGER NOT NULL
    )""",
    "CREATE INDEX mesh_flags_landmark ON mesh_flags (landmark_id, flag_id)",
    """CREATE TRIGGER mesh_rounds_no_update BEFORE UPDATE ON mesh_rounds
        BEGIN SELECT RAISE(ABORT, 'mesh rounds are immutable'); END""",
    """CREATE TRIGGER mesh_rounds_no_delete BEFORE DELETE ON mesh_rounds
        BEGIN SELECT RAISE(ABORT, 'mesh rounds are immutable'); END""",
    """CREATE TRIGGER mesh_flags_no_update BEFORE UPDATE ON mesh_flags
        BEGIN SELECT RAISE(ABORT, 'mesh_flags is append-only'); END""",
    """CREATE TRIGGER mesh_flags_no_delete BEFORE DELETE ON mesh_flags
        BEGIN SELECT RAISE(ABORT, 'mesh_flags is append-only'); END""",
)

_PG_V3 = (
    """CREATE TABLE mesh_rounds (
        mesh_round_id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        digest TEXT NOT NULL UNIQUE CHECK (length(digest) = 64),
        landmark_id TEXT NOT NULL,
        peer_id TEXT NOT NULL CHECK (peer_id <> landmark_id),
        min_rtt_ns BIGINT CHECK (min_rtt_ns IS NULL OR min_rtt_ns >= 0),
        overhead_ns BIGINT NOT NULL CHECK (overhead_ns >= 0),
        received_at_unix_ns BIGINT NOT NULL,
        raw BYTEA NOT NULL
    )""",
    "CREATE INDEX mesh_rounds_pair ON mesh_rounds (landmark_id, peer_id, received_at_unix_ns)",
    """CREATE TABLE mesh_flags (
        flag_id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        landmark_id TEXT NOT NULL,
        action TEXT NOT NULL CHECK (action IN ('suspect', 'clear')),
        details BYTEA NOT NULL,
        recorded_at_unix_ns BIGINT NOT NULL
    )""",
    "CREATE INDEX mesh_flags_landmark ON mesh_flags (landmark_id, flag_id)",
    *(
        f"CREATE TRIGGER {table}_no_{op} BEFORE {op.upper()} ON {table} "
        f"FOR EACH {'STATEMENT' if op == 'truncate' else 'ROW'} "
        "EXECUTE FUNCTION chiploc_immutable()"
        for table in ("mesh_rounds", "mesh_flags")
        for op in ("update", "delete", "truncate")
    ),
)

#: Every migration, oldest first.
MIGRATIONS: Final[tuple[Migration, ...]] = (
    Migration(
        version=1,
        description="landmarks, chips, enrolments, rounds, verdicts, audit log",
        statements=_V1,
        postgresql=_PG_V1,
    ),
    Migration(
        version=2,
        description="verdict round: (chip, verdict round) unique",
        statements=_V2,
        postgresql=_V2,
    ),
    Migration(
        version=3,
        description="landmark mesh: mesh rounds and the suspect/clear flag log",
        statements=_V3,
        postgresql=_PG_V3,
    ),
)

#: The schema version this code reads and writes.
SCHEMA_VERSION: Final = MIGRATIONS[-1].version
