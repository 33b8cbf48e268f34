"""The embedded sqlite3 store (the thin I/O edge over the pure chain code).

Invariants:

- ``journal_mode=WAL``, ``synchronous=FULL`` (a committed round, verdict or
  audit entry survives power loss), ``foreign_keys=ON``;
- every write runs in ``BEGIN IMMEDIATE ... COMMIT``; the audit entry is
  appended inside the same transaction as the row it covers, so a crash or an
  exception between the two rolls back both;
- migrations are applied on open (read-write), each in its own transaction; a
  database newer than the code, or not a chiploc store, is refused;
- every ``sqlite3`` exception is converted to :class:`~chiploc.common.errors.StoreError`
  here; a stored row that no longer parses raises
  :class:`~chiploc.common.errors.IntegrityError` naming the table and row.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from os import PathLike
from pathlib import Path
from types import TracebackType
from typing import Any, Final

from chiploc.common.canonical import canonical_json, parse_json_strict
from chiploc.common.errors import DecodeError, IntegrityError, StoreError
from chiploc.store._audit import AuditEntry, next_audit_entry
from chiploc.store._records import (
    MODELS,
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
    prepare_round,
    prepare_verdict,
    round_audit_payload,
    verdict_audit_payload,
)
from chiploc.store._schema import APPLICATION_ID, MIGRATIONS, Migration
from chiploc.store._sqlite_mesh import SqliteMeshMixin

__all__ = ["SqliteStore", "open_store"]

_BUSY_TIMEOUT_MS: Final = 10_000
_BATCH: Final = 256


def open_store(path: str | PathLike[str], *, read_only: bool = False) -> SqliteStore:
    """Open (creating and migrating if needed) the store at ``path``.

    ``read_only=True`` never creates, migrates or writes: it is what audit
    verification uses, and it refuses a missing file or an outdated schema.
    """
    p = Path(path)
    try:
        if read_only:
            if not p.is_file():
                raise StoreError(f"{p}: no such database", reason="missing")
            conn = sqlite3.connect(
                f"{p.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None
            )
        else:
            if not p.parent.is_dir():
                raise StoreError(f"{p}: directory {p.parent} does not exist", reason="missing")
            conn = sqlite3.connect(p, isolation_level=None)
    except sqlite3.Error as e:
        raise StoreError(f"{p}: cannot open database: {e}", reason="open_failed") from e
    try:
        return SqliteStore._setup(conn, p, read_only=read_only, migrations=MIGRATIONS)
    except BaseException:
        conn.close()
        raise


class SqliteStore(SqliteMeshMixin):
    """A :class:`store.Store` over one sqlite3 file. Use :func:`open_store`."""

    def __init__(self, conn: sqlite3.Connection, path: Path, *, read_only: bool) -> None:
        self._conn = conn
        self._path = path
        self._read_only = read_only

    # opening ------------------------------------------------------------
    @classmethod
    def _setup(
        cls,
        conn: sqlite3.Connection,
        path: Path,
        *,
        read_only: bool,
        migrations: Sequence[Migration],
    ) -> SqliteStore:
        try:
            conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            n_objects = conn.execute("SELECT count(*) FROM sqlite_schema").fetchone()[0]
        except sqlite3.DatabaseError as e:
            raise StoreError(f"{path}: not a database: {e}", reason="not_a_database") from e
        if app_id not in (0, APPLICATION_ID) or (app_id == 0 and n_objects > 0):
            raise StoreError(
                f"{path}: not a chiploc store (application_id={app_id:#x})", reason="not_a_store"
            )
        latest = migrations[-1].version if migrations else 0
        if version > latest:
            raise StoreError(
                f"{path}: schema version {version} is newer than this chiploc supports "
                f"({latest}); upgrade chiploc to open it",
                reason="schema_too_new",
            )
        store = cls(conn, path, read_only=read_only)
        try:
            conn.execute("PRAGMA foreign_keys = ON")
            if read_only:
                if version < latest:
                    raise StoreError(
                        f"{path}: schema version {version} is older than {latest}; open it "
                        "read-write once to migrate",
                        reason="schema_outdated",
                    )
                return store
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(f"{path}: cannot enable WAL (got {mode})", reason="no_wal")
            conn.execute("PRAGMA synchronous = FULL")
        except sqlite3.Error as e:
            raise StoreError(f"{path}: cannot configure database: {e}", reason="open_failed") from e
        store._migrate(migrations)
        return store

    def _migrate(self, migrations: Sequence[Migration]) -> None:
        for m in migrations:
            with self._write() as c:
                version = c.execute("PRAGMA user_version").fetchone()[0]
                if version >= m.version:
                    continue
                if version != m.version - 1:
                    raise StoreError(
                        f"{self._path}: cannot apply migration {m.version} to version {version}",
                        reason="migration_gap",
                    )
                for statement in m.statements:
                    c.execute(statement)
                c.execute(
                    "INSERT INTO schema_migrations (version, description) VALUES (?, ?)",
                    (m.version, m.description),
                )
                c.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                c.execute(f"PRAGMA user_version = {m.version}")

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        if self._read_only:
            raise StoreError(f"{self._path}: store opened read-only", reason="read_only")
        c = self._conn
        try:
            c.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as e:
            raise StoreError(f"{self._path}: cannot begin: {e}", reason="busy") from e
        try:
            yield c
            c.execute("COMMIT")
        except sqlite3.Error as e:
            c.execute("ROLLBACK")
            raise StoreError(f"{self._path}: write failed: {e}", reason="write_failed") from e
        except BaseException:
            c.execute("ROLLBACK")
            raise

    @contextmanager
    def _read(self, what: str) -> Iterator[sqlite3.Connection]:
        try:
            yield self._conn
        except sqlite3.Error as e:
            raise StoreError(f"{self._path}: cannot read {what}: {e}", reason="read_failed") from e

    # lifecycle ----------------------------------------------------------
    @property
    def path(self) -> Path:
        return self._path

    @property
    def schema_version(self) -> int:
        with self._read("schema version") as c:
            return int(c.execute("PRAGMA user_version").fetchone()[0])

    @property
    def journal_mode(self) -> str:
        with self._read("journal mode") as c:
            return str(c.execute("PRAGMA journal_mode").fetchone()[0]).lower()

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> SqliteStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # audit --------------------------------------------------------------
    def _append_audit(
        self, c: sqlite3.Connection, *, kind: str, at_unix_ns: int, payload: dict[str, object]
    ) -> AuditEntry:
        row = c.execute(
            "SELECT seq, kind, at_unix_ns, payload, prev_hash, hash FROM audit_log "
            "ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        head = None if row is None else _audit_from_row(row)
        entry = next_audit_entry(head, kind=kind, at_unix_ns=at_unix_ns, payload=payload)
        c.execute(
            "INSERT INTO audit_log (seq, kind, at_unix_ns, payload, prev_hash, hash) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (
                entry.seq,
                entry.kind,
                entry.at_unix_ns,
                entry.payload,
                entry.prev_hash_hex,
                entry.hash_hex,
            ),
        )
        return entry

    def audit_entries(self) -> Iterator[AuditEntry]:
        with self._read("audit log") as c:
            cur = c.execute(
                "SELECT seq, kind, at_unix_ns, payload, prev_hash, hash FROM audit_log ORDER BY seq"
            )
            while rows := cur.fetchmany(_BATCH):
                for row in rows:
                    yield _audit_from_row(row)

    def audit_head(self) -> AuditEntry | None:
        with self._read("audit log") as c:
            row = c.execute(
                "SELECT seq, kind, at_unix_ns, payload, prev_hash, hash FROM audit_log "
                "ORDER BY seq DESC LIMIT 1"
            ).fetchone()
        return None if row is None else _audit_from_row(row)

    # identities ---------------------------------------------------------
    def _record_enrolment(
        self,
        c: sqlite3.Connection,
        *,
        role: str,
        identity_id: str,
        public_key: bytes,
        revoked: bool,
        details: dict[str, object],
        now_unix_ns: int,
    ) -> bool:
        details_json = canonical_json(details)
        last = c.execute(
            "SELECT public_key, revoked, details FROM enrolments "
            "WHERE role = ? AND identity_id = ? ORDER BY enrolment_id DESC LIMIT 1",
            (role, identity_id),
        ).fetchone()
        if last is not None and (bytes(last[0]), bool(last[1]), _as_bytes(last[2])) == (
            public_key,
            revoked,
            details_json,
        ):
            return False
        cur = c.execute(
            "INSERT INTO enrolments (role, identity_id, public_key, revoked, details, "
            "recorded_at_unix_ns) VALUES (?, ?, ?, ?, ?, ?)",
            (role, identity_id, public_key, int(revoked), details_json.decode(), now_unix_ns),
        )
        record = EnrolmentRecord(
            enrolment_id=_rowid(cur),
            role=role,
            identity_id=identity_id,
            public_key=public_key,
            revoked=revoked,
            details=details,
            recorded_at_unix_ns=now_unix_ns,
        )
        self._append_audit(
            c, kind="enrolment", at_unix_ns=now_unix_ns, payload=enrolment_audit_payload(record)
        )
        return True

    def record_landmark(self, landmark: LandmarkRecord, *, now_unix_ns: int) -> bool:
        with self._write() as c:
            changed = self._record_enrolment(
                c,
                role="landmark",
                identity_id=landmark.landmark_id,
                public_key=landmark.public_key,
                revoked=landmark.revoked,
                details=landmark.details(),
                now_unix_ns=now_unix_ns,
            )
            if changed:
                c.execute(
                    "INSERT INTO landmarks (landmark_id, lat, lon, operator, public_key, revoked, "
                    "updated_at_unix_ns) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (landmark_id) "
                    "DO UPDATE SET lat = excluded.lat, lon = excluded.lon, "
                    "operator = excluded.operator, public_key = excluded.public_key, "
                    "revoked = excluded.revoked, updated_at_unix_ns = excluded.updated_at_unix_ns",
                    (
                        landmark.landmark_id,
                        float(landmark.lat),
                        float(landmark.lon),
                        landmark.operator,
                        landmark.public_key,
                        int(landmark.revoked),
                        now_unix_ns,
                    ),
                )
        return changed

    def record_chip(self, chip: ChipRecord, *, now_unix_ns: int) -> bool:
        with self._write() as c:
            changed = self._record_enrolment(
                c,
                role="chip",
                identity_id=chip.chip_id,
                public_key=chip.public_key,
                revoked=chip.revoked,
                details=chip.details(),
                now_unix_ns=now_unix_ns,
            )
            if changed:
                c.execute(
                    "INSERT INTO chips (chip_id, region_spec, public_key, revoked, "
                    "updated_at_unix_ns) VALUES (?, ?, ?, ?, ?) ON CONFLICT (chip_id) "
                    "DO UPDATE SET region_spec = excluded.region_spec, "
                    "public_key = excluded.public_key, revoked = excluded.revoked, "
                    "updated_at_unix_ns = excluded.updated_at_unix_ns",
                    (
                        chip.chip_id,
                        chip.region_spec,
                        chip.public_key,
                        int(chip.revoked),
                        now_unix_ns,
                    ),
                )
        return changed

    def record_verifier(
        self, verifier_id: str, *, public_key: bytes, revoked: bool, now_unix_ns: int
    ) -> bool:
        if not isinstance(public_key, bytes) or len(public_key) != 32:
            raise StoreError("verifier public_key must be 32 bytes", reason="bad_record")
        with self._write() as c:
            return self._record_enrolment(
                c,
                role="verifier",
                identity_id=verifier_id,
                public_key=public_key,
                revoked=revoked,
                details={},
                now_unix_ns=now_unix_ns,
            )

    def landmarks(self) -> list[LandmarkRecord]:
        with self._read("landmarks") as c:
            rows = c.execute(
                "SELECT landmark_id, lat, lon, operator, public_key, revoked FROM landmarks "
                "ORDER BY landmark_id"
            ).fetchall()
        out = []
        for r in rows:
            with _row_guard("landmarks", r[0]):
                out.append(
                    LandmarkRecord(
                        landmark_id=r[0],
                        lat=r[1],
                        lon=r[2],
                        operator=r[3],
                        public_key=_as_bytes(r[4]),
                        revoked=bool(r[5]),
                    )
                )
        return out

    def chips(self) -> list[ChipRecord]:
        with self._read("chips") as c:
            rows = c.execute(
                "SELECT chip_id, region_spec, public_key, revoked FROM chips ORDER BY chip_id"
            ).fetchall()
        out = []
        for r in rows:
            with _row_guard("chips", r[0]):
                out.append(
                    ChipRecord(
                        chip_id=r[0],
                        region_spec=r[1],
                        public_key=_as_bytes(r[2]),
                        revoked=bool(r[3]),
                    )
                )
        return out

    def enrolments(self) -> Iterator[EnrolmentRecord]:
        with self._read("enrolments") as c:
            cur = c.execute(
                "SELECT enrolment_id, role, identity_id, public_key, revoked, details, "
                "recorded_at_unix_ns FROM enrolments ORDER BY enrolment_id"
            )
            while rows := cur.fetchmany(_BATCH):
                for r in rows:
                    with _row_guard("enrolments", r[0]):
                        details = parse_json_strict(_as_bytes(r[5]), what="enrolment details")
                        if not isinstance(details, dict):
                            raise ValueError("details is not a JSON object")
                        yield EnrolmentRecord(
                            enrolment_id=r[0],
                            role=r[1],
                            identity_id=r[2],
                            public_key=_as_bytes(r[3]),
                            revoked=bool(r[4]),
                            details=details,
                            recorded_at_unix_ns=r[6],
                        )

    # rounds -------------------------------------------------------------
    def add_round(self, report: ReportLike, *, received_at_unix_ns: int) -> RoundInsert:
        candidate = prepare_round(report, received_at_unix_ns=received_at_unix_ns)
        with self._write() as c:
            return self._add_round_in(c, candidate)

    def _add_round_in(self, c: sqlite3.Connection, candidate: RoundRecord) -> RoundInsert:
        digest = candidate.digest_hex
        existing = c.execute(_ROUND_SELECT + " WHERE digest = ?", (digest,)).fetchone()
        if existing is not None:
            return RoundInsert(record=_round_from_row(existing), inserted=False)
        cur = c.execute(
            "INSERT INTO rounds (digest, landmark_id, chip_id, min_rtt_ns, "
            "received_at_unix_ns, raw) VALUES (?, ?, ?, ?, ?, ?)",
            (
                digest,
                candidate.landmark_id,
                candidate.chip_id,
                candidate.min_rtt_ns,
                candidate.received_at_unix_ns,
                candidate.raw,
            ),
        )
        record = dataclasses.replace(candidate, round_id=_rowid(cur))
        self._append_audit(
            c,
            kind="round",
            at_unix_ns=record.received_at_unix_ns,
            payload=round_audit_payload(record),
        )
        return RoundInsert(record=record, inserted=True)

    def round_by_digest(self, digest_hex: str) -> RoundRecord | None:
        with self._read("rounds") as c:
            row = c.execute(_ROUND_SELECT + " WHERE digest = ?", (digest_hex,)).fetchone()
        return None if row is None else _round_from_row(row)

    def rounds(self, *, chip_id: str | None = None) -> Iterator[RoundRecord]:
        with self._read("rounds") as c:
            if chip_id is None:
                cur = c.execute(_ROUND_SELECT + " ORDER BY round_id")
            else:
                cur = c.execute(_ROUND_SELECT + " WHERE chip_id = ? ORDER BY round_id", (chip_id,))
            while rows := cur.fetchmany(_BATCH):
                for row in rows:
                    yield _round_from_row(row)

    # verdicts -----------------------------------------------------------
    def add_verdict(
        self,
        result: Mapping[str, Any],
        *,
        evidence_digests: Sequence[str],
        certificate: bytes | None,
        issued_at_unix_ns: int,
        verdict_round: str | None = None,
    ) -> VerdictRecord:
        candidate = prepare_verdict(
            result,
            evidence_digests=evidence_digests,
            certificate=certificate,
            issued_at_unix_ns=issued_at_unix_ns,
            verdict_round=verdict_round,
        )
        with self._write() as c:
            return self._add_verdict_in(c, candidate)[0]

    def _add_verdict_in(
        self, c: sqlite3.Connection, candidate: VerdictRecord
    ) -> tuple[VerdictRecord, bool]:
        if candidate.verdict_round is not None:
            row = c.execute(
                "SELECT verdict_id FROM verdicts WHERE chip_id = ? AND verdict_round = ?",
                (candidate.chip_id, candidate.verdict_round),
            ).fetchone()
            if row is not None:
                return self._verdict_by_id(c, int(row[0])), False
        for d in candidate.evidence:
            if c.execute("SELECT 1 FROM rounds WHERE digest = ?", (d,)).fetchone() is None:
                raise StoreError(
                    f"verdict not stored: evidence report {d} is not in the store",
                    reason="unknown_evidence",
                )
        cur = c.execute(
            "INSERT INTO verdicts (chip_id, verdict, model, proof, region_spec, result_json, "
            "certificate, issued_at_unix_ns, verdict_round) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                candidate.chip_id,
                candidate.verdict,
                candidate.model,
                int(candidate.proof),
                candidate.region_spec,
                candidate.result_json,
                candidate.certificate,
                candidate.issued_at_unix_ns,
                candidate.verdict_round,
            ),
        )
        record = dataclasses.replace(candidate, verdict_id=_rowid(cur))
        c.executemany(
            "INSERT INTO verdict_evidence (verdict_id, round_digest) VALUES (?, ?)",
            [(record.verdict_id, d) for d in record.evidence],
        )
        self._append_audit(
            c,
            kind="verdict",
            at_unix_ns=record.issued_at_unix_ns,
            payload=verdict_audit_payload(record),
        )
        return record, True

    def _verdict_by_id(self, c: sqlite3.Connection, verdict_id: int) -> VerdictRecord:
        row = c.execute(_VERDICT_SELECT + " WHERE verdict_id = ?", (verdict_id,)).fetchone()
        return self._verdict_from_row(c, row)

    def _verdict_from_row(self, c: sqlite3.Connection, r: tuple[Any, ...]) -> VerdictRecord:
        evidence = tuple(
            str(e[0])
            for e in c.execute(
                "SELECT round_digest FROM verdict_evidence WHERE verdict_id = ? "
                "ORDER BY round_digest",
                (r[0],),
            )
        )
        with _row_guard("verdicts", r[0]):
            if r[2] not in VERDICTS or r[3] not in MODELS:
                raise ValueError(f"unknown verdict/model {r[2]!r}/{r[3]!r}")
            return VerdictRecord(
                verdict_id=r[0],
                chip_id=r[1],
                verdict=r[2],
                model=r[3],
                proof=bool(r[4]),
                region_spec=r[5],
                result_json=_as_bytes(r[6]),
                certificate=None if r[7] is None else _as_bytes(r[7]),
                evidence=evidence,
                issued_at_unix_ns=r[8],
                verdict_round=r[9],
            )

    # batches ------------------------------------------------------------
    def add_batch(
        self, rounds: Sequence[BatchRound] = (), verdicts: Sequence[BatchVerdict] = ()
    ) -> BatchResult:
        """Store rounds, then verdicts (with certificates), and their audit entries, in ONE
        transaction: all of it lands or none. Idempotent: a round already stored (by digest)
        or a verdict already stored (by chip and verdict round) is not written again."""
        round_rows = [
            prepare_round(b.report, received_at_unix_ns=b.received_at_unix_ns) for b in rounds
        ]
        verdict_rows = [
            prepare_verdict(
                v.result,
                evidence_digests=v.evidence_digests,
                certificate=v.certificate,
                issued_at_unix_ns=v.issued_at_unix_ns,
                verdict_round=v.verdict_round,
            )
            for v in verdicts
        ]
        with self._write() as c:
            stored_rounds = [self._add_round_in(c, r) for r in round_rows]
            stored_verdicts = [self._add_verdict_in(c, v) for v in verdict_rows]
        n_rounds = sum(r.inserted for r in stored_rounds)
        n_verdicts = sum(new for _, new in stored_verdicts)
        evidence_rows = sum(len(v.evidence) for v, new in stored_verdicts if new)
        return BatchResult(
            rounds=tuple(r.record for r in stored_rounds),
            verdicts=tuple(v for v, _ in stored_verdicts),
            rounds_inserted=n_rounds,
            verdicts_inserted=n_verdicts,
            audit_entries=n_rounds + n_verdicts,
            rows_written=2 * (n_rounds + n_verdicts) + evidence_rows,
        )

    def verdicts(self, *, chip_id: str | None = None) -> Iterator[VerdictRecord]:
        with self._read("verdicts") as c:
            if chip_id is None:
                cur = c.execute(_VERDICT_SELECT + " ORDER BY verdict_id")
            else:
                cur = c.execute(
                    _VERDICT_SELECT + " WHERE chip_id = ? ORDER BY verdict_id", (chip_id,)
                )
            while rows := cur.fetchmany(_BATCH):
                for r in rows:
                    yield self._verdict_from_row(c, r)

    def counts(self) -> dict[str, int]:
        """Rows per table (for summaries)."""
        tables = (
            "landmarks",
            "chips",
            "enrolments",
            "rounds",
            "verdicts",
            "mesh_rounds",
            "mesh_flags",
            "audit_log",
        )
        with self._read("counts") as c:
            return {
                t: int(c.execute(f"SELECT count(*) FROM {t}").fetchone()[0])  # noqa: S608
                for t in tables
            }


_VERDICT_SELECT: Final = (
    "SELECT verdict_id, chip_id, verdict, model, proof, region_spec, result_json, "
    "certificate, issued_at_unix_ns, verdict_round FROM verdicts"
)
_ROUND_SELECT: Final = (
    "SELECT round_id, digest, landmark_id, chip_id, min_rtt_ns, received_at_unix_ns, raw "
    "FROM rounds"
)


def _rowid(cur: sqlite3.Cursor) -> int:
    rowid = cur.lastrowid
    if rowid is None:  # pragma: no cover - sqlite always sets it after INSERT
        raise StoreError("insert returned no row id", reason="write_failed")
    return rowid


def _as_bytes(value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    raise ValueError(f"expected bytes, got {type(value).__name__}")


@contextmanager
def _row_guard(table: str, row_id: object) -> Iterator[None]:
    try:
        yield
    except (ValueError, TypeError, DecodeError) as e:
        raise IntegrityError(
            f"{table} row {row_id!r}: stored values are invalid ({e})", reason="bad_row"
        ) from e


def _round_from_row(r: tuple[Any, ...]) -> RoundRecord:
    with _row_guard("rounds", r[0]):
        return RoundRecord(
            round_id=r[0],
            digest_hex=r[1],
            landmark_id=r[2],
            chip_id=r[3],
            min_rtt_ns=r[4],
            received_at_unix_ns=r[5],
            raw=_as_bytes(r[6]),
        )


def _audit_from_row(r: tuple[Any, ...]) -> AuditEntry:
    with _row_guard("audit_log", r[0]):
        return AuditEntry(
            seq=r[0],
            kind=str(r[1]),
            at_unix_ns=r[2],
            payload=_as_bytes(r[3]),
            prev_hash_hex=str(r[4]),
            hash_hex=str(r[5]),
        )
