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
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from os import PathLike
from pathlib import Path
from types import TracebackType
from typing import Any, Final, TypeVar

from chiploc.common.canonical import canonical_json
from chiploc.common.errors import StoreError
from chiploc.store._audit import AuditEntry, next_audit_entry
from chiploc.store._batch import (
    VerdictKey,
    as_bytes,
    audit_from_row,
    batch_result,
    chain_audit,
    check_evidence,
    chip_from_row,
    enrolment_from_row,
    landmark_from_row,
    new_audit_items,
    plan_rounds,
    plan_verdicts,
    prepare_batch,
    round_from_row,
    round_row,
    verdict_from_row,
)
from chiploc.store._records import (
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
_IN_CHUNK: Final = 500  # keys per ``IN (...)``: below SQLite's variable limit
_T = TypeVar("_T")


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
        entry = next_audit_entry(
            self._head_in(c), kind=kind, at_unix_ns=at_unix_ns, payload=payload
        )
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
                    yield audit_from_row(row)

    @staticmethod
    def _head_in(c: sqlite3.Connection) -> AuditEntry | None:
        row = c.execute(
            "SELECT seq, kind, at_unix_ns, payload, prev_hash, hash FROM audit_log "
            "ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        return None if row is None else audit_from_row(row)

    def audit_head(self) -> AuditEntry | None:
        with self._read("audit log") as c:
            return self._head_in(c)

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
        if last is not None and (bytes(last[0]), bool(last[1]), as_bytes(last[2])) == (
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
        return [landmark_from_row(r) for r in rows]

    def chips(self) -> list[ChipRecord]:
        with self._read("chips") as c:
            rows = c.execute(
                "SELECT chip_id, region_spec, public_key, revoked FROM chips ORDER BY chip_id"
            ).fetchall()
        return [chip_from_row(r) for r in rows]

    def enrolments(self) -> Iterator[EnrolmentRecord]:
        with self._read("enrolments") as c:
            cur = c.execute(
                "SELECT enrolment_id, role, identity_id, public_key, revoked, details, "
                "recorded_at_unix_ns FROM enrolments ORDER BY enrolment_id"
            )
            while rows := cur.fetchmany(_BATCH):
                for r in rows:
                    yield enrolment_from_row(r)

    # rounds -------------------------------------------------------------
    def add_round(self, report: ReportLike, *, received_at_unix_ns: int) -> RoundInsert:
        candidate = prepare_round(report, received_at_unix_ns=received_at_unix_ns)
        with self._write() as c:
            return self._add_round_in(c, candidate)

    def _add_round_in(self, c: sqlite3.Connection, candidate: RoundRecord) -> RoundInsert:
        digest = candidate.digest_hex
        existing = c.execute(_ROUND_SELECT + " WHERE digest = ?", (digest,)).fetchone()
        if existing is not None:
            return RoundInsert(record=round_from_row(existing), inserted=False)
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
        return None if row is None else round_from_row(row)

    def rounds(self, *, chip_id: str | None = None) -> Iterator[RoundRecord]:
        with self._read("rounds") as c:
            if chip_id is None:
                cur = c.execute(_ROUND_SELECT + " ORDER BY round_id")
            else:
                cur = c.execute(_ROUND_SELECT + " WHERE chip_id = ? ORDER BY round_id", (chip_id,))
            while rows := cur.fetchmany(_BATCH):
                for row in rows:
                    yield round_from_row(row)

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
        return verdict_from_row(r, evidence)

    # batches ------------------------------------------------------------
    def add_batch(
        self, rounds: Sequence[BatchRound] = (), verdicts: Sequence[BatchVerdict] = ()
    ) -> BatchResult:
        """Store rounds, then verdicts (with certificates), and their audit entries, in ONE
        transaction: all of it lands or none. Idempotent: a round already stored (by digest)
        or a verdict already stored (by chip and verdict round) is not written again.

        Bulk: what is stored already is looked up per chunk of keys, the new rows get ids
        after the largest (``BEGIN IMMEDIATE`` holds the write lock: no other writer can
        take them) and go in with one ``executemany`` per table."""
        round_rows, verdict_rows = prepare_batch(rounds, verdicts)
        with self._write() as c:
            return self._batch_in(c, round_rows, verdict_rows)

    def _batch_in(
        self,
        c: sqlite3.Connection,
        round_rows: Sequence[RoundRecord],
        verdict_rows: Sequence[VerdictRecord],
    ) -> BatchResult:
        def next_ids(table: str, column: str) -> Callable[[int], list[int]]:
            def take(n: int) -> list[int]:
                top = c.execute(f"SELECT coalesce(max({column}), 0) FROM {table}").fetchone()[0]  # noqa: S608
                return list(range(int(top) + 1, int(top) + 1 + n))

            return take

        digests = sorted({r.digest_hex for r in round_rows})
        stored_rounds = {
            rec.digest_hex: rec
            for rec in self._select_in(
                c, _ROUND_SELECT + " WHERE digest IN ({})", digests, round_from_row
            )
        }
        new_rounds = plan_rounds(round_rows, set(stored_rounds), next_ids("rounds", "round_id"))
        keyed: set[VerdictKey] = {
            (v.chip_id, v.verdict_round) for v in verdict_rows if v.verdict_round
        }
        stored_verdicts: dict[VerdictKey, VerdictRecord] = {}
        for verdict_round in sorted({str(k[1]) for k in keyed}):
            chips = sorted(k[0] for k in keyed if k[1] == verdict_round)
            for r in self._select_in(
                c,
                _VERDICT_SELECT + " WHERE verdict_round = ? AND chip_id IN ({})",
                chips,
                lambda row: row,
                first=verdict_round,
            ):
                stored = self._verdict_from_row(c, r)
                stored_verdicts[(stored.chip_id, stored.verdict_round)] = stored
        new_verdicts = plan_verdicts(
            verdict_rows, set(stored_verdicts), next_ids("verdicts", "verdict_id")
        )
        check_evidence(
            new_verdicts,
            {r.digest_hex for r in new_rounds},
            lambda wanted: {
                str(row[0])
                for row in self._select_in(
                    c, "SELECT digest FROM rounds WHERE digest IN ({})", wanted, lambda row: row
                )
            },
        )
        c.executemany(
            "INSERT INTO rounds (round_id, digest, landmark_id, chip_id, min_rtt_ns, "
            "received_at_unix_ns, raw) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [round_row(r) for r in new_rounds],
        )
        c.executemany(
            "INSERT INTO verdicts (verdict_id, chip_id, verdict, model, proof, region_spec, "
            "result_json, certificate, issued_at_unix_ns, verdict_round) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    v.verdict_id,
                    v.chip_id,
                    v.verdict,
                    v.model,
                    int(v.proof),
                    v.region_spec,
                    v.result_json,
                    v.certificate,
                    v.issued_at_unix_ns,
                    v.verdict_round,
                )
                for v in new_verdicts
            ],
        )
        c.executemany(
            "INSERT INTO verdict_evidence (verdict_id, round_digest) VALUES (?, ?)",
            [(v.verdict_id, d) for v in new_verdicts for d in v.evidence],
        )
        audit = chain_audit(self._head_in(c), new_audit_items(new_rounds, new_verdicts))
        c.executemany(
            "INSERT INTO audit_log (seq, kind, at_unix_ns, payload, prev_hash, hash) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            audit,
        )
        return batch_result(
            round_rows,
            verdict_rows,
            new_rounds,
            new_verdicts,
            stored_rounds=stored_rounds,
            stored_verdicts=stored_verdicts,
            audit_entries=len(audit),
        )

    @staticmethod
    def _select_in(
        c: sqlite3.Connection,
        query: str,
        keys: Sequence[str],
        convert: Callable[[tuple[Any, ...]], _T],
        *,
        first: str | None = None,
    ) -> list[_T]:
        """``query`` (with ``IN ({})``, after one ``first`` parameter if given) for every
        key, a chunk of keys per statement."""
        out: list[_T] = []
        lead = [] if first is None else [first]
        for lo in range(0, len(keys), _IN_CHUNK):
            part = keys[lo : lo + _IN_CHUNK]
            sql = query.format(", ".join("?" * len(part)))
            out.extend(convert(row) for row in c.execute(sql, [*lead, *part]))
        return out

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
