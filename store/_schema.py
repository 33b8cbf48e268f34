"""Versioned schema migrations of the embedded sqlite store.

Invariants:

- ``MIGRATIONS[i]`` takes a database from version ``i`` to ``i + 1``; the
  version lives in ``PRAGMA user_version`` and each applied step is also
  recorded in ``schema_migrations``;
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
    version: int
    description: str
    statements: tuple[str, ...]


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

_V2 = (
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

#: Every migration, oldest first.
MIGRATIONS: Final[tuple[Migration, ...]] = (
    Migration(
        version=1,
        description="landmarks, chips, enrolments, rounds, verdicts, audit log",
        statements=_V1,
    ),
    Migration(
        version=2,
        description="landmark mesh: mesh rounds and the suspect/clear flag log",
        statements=_V2,
    ),
)

#: The schema version this code reads and writes.
SCHEMA_VERSION: Final = MIGRATIONS[-1].version
