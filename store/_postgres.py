"""The PostgreSQL store (psycopg 3 + psycopg_pool): the same ``Store`` contract, many writers.

Invariants:

- the schema is :data:`store.MIGRATIONS` (their ``postgresql`` dialect), applied on
  open under the store's advisory lock, each step in one transaction with its
  ``schema_migrations`` row; a database whose newest step is unknown to this code,
  or that holds tables but is not a chiploc store, is refused;
- every write is ONE transaction that first takes the transaction-scoped advisory
  lock :data:`ADVISORY_LOCK_KEY` (``pg_advisory_xact_lock``): writes from any number
  of processes are serialised, so the audit log stays one hash chain (its head is
  read after the lock is held) and ids grow in audit order; the row and the audit
  entry covering it commit together or not at all;
- writes are idempotent by key: a report by its digest (``rounds.digest`` unique),
  a verdict by (chip, verdict round) (unique index); enrolments record only a change;
- every psycopg error is converted here, at one seam (:meth:`PostgresStore._run`):
  connection-level failures (server restart, network, pool exhausted; psycopg's
  ``OperationalError``) are retried with exponential backoff within
  ``retry_budget_s``, then raise :class:`~chiploc.common.errors.StoreUnavailable`
  (transient); anything else raises :class:`~chiploc.common.errors.StoreError`.
  A write whose connection broke *during* COMMIT is retried only when it is
  idempotent by key (every write but a verdict without a verdict round);
- ``read_only=True`` sessions are ``default_transaction_read_only``: the server
  itself refuses a write;
- the store does not verify signatures, and never logs the URL's password.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Final, TypeVar

import psycopg
import psycopg_pool
from psycopg import sql

from chiploc.common.canonical import canonical_json
from chiploc.common.errors import StoreError, StoreUnavailable
from chiploc.store._audit import AuditEntry
from chiploc.store._batch import (
    VerdictKey,
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
from chiploc.store._postgres_mesh import PostgresMeshMixin
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
)
from chiploc.store._schema import APPLICATION_ID, MIGRATIONS, Migration

__all__ = ["ADVISORY_LOCK_KEY", "PostgresStore", "is_postgres_url", "redact_url"]

#: The advisory lock every write holds until it commits ("CHLC").
ADVISORY_LOCK_KEY: Final = APPLICATION_ID
_PAGE: Final = 1000
_T = TypeVar("_T")

_ROUND_COLS: Final = "round_id, digest, landmark_id, chip_id, min_rtt_ns, received_at_unix_ns, raw"
_VERDICT_COLS: Final = (
    "verdict_id, chip_id, verdict, model, proof, region_spec, result_json, certificate, "
    "issued_at_unix_ns, verdict_round"
)
_AUDIT_COLS: Final = "seq, kind, at_unix_ns, payload, prev_hash, hash"
_VERDICT_TYPES: Final = (
    "int8", "text", "text", "text", "bool", "text", "bytea", "bytea", "int8", "text"
)  # fmt: skip


def is_postgres_url(target: object) -> bool:
    """True for ``postgresql://...`` / ``postgres://...`` (what ``--db`` accepts besides a path)."""
    return isinstance(target, str) and target.startswith(("postgresql://", "postgres://"))


def redact_url(url: str) -> str:
    """``postgresql://user@host:port/db`` without a password (for messages)."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.Error:
        return "postgresql://<unparsable URL>"
    user = f"{info['user']}@" if info.get("user") else ""
    port = f":{info['port']}" if info.get("port") else ""
    return f"postgresql://{user}{info.get('host', '')}{port}/{info.get('dbname', '')}"


class PostgresStore(PostgresMeshMixin):
    """A :class:`store.Store` over a PostgreSQL database. Use :meth:`open`."""

    def __init__(
        self,
        pool: psycopg_pool.ConnectionPool,
        *,
        label: str,
        read_only: bool,
        retry_budget_s: float,
        sleep: Callable[[float], None],
    ) -> None:
        self._pool = pool
        self._label = label
        self._read_only = read_only
        self._retry_budget_s = retry_budget_s
        self._sleep = sleep
        self.retries = 0  # connection-level failures retried so far (for counters)

    # opening ------------------------------------------------------------
    @classmethod
    def open(
        cls,
        url: str,
        *,
        read_only: bool = False,
        pool_size: int = 4,
        retry_budget_s: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        migrations: Sequence[Migration] = MIGRATIONS,
    ) -> PostgresStore:
        """Connect (pool of up to ``pool_size`` connections), migrate unless read-only.

        Connection failures are retried for ``retry_budget_s`` seconds, here and on every
        later call, then raise StoreUnavailable.
        """
        if not is_postgres_url(url):
            raise StoreError(f"{url!r} is not a postgresql:// URL", reason="bad_url")
        label = redact_url(url)
        if pool_size < 1 or retry_budget_s < 0:
            raise StoreError("pool_size must be >= 1, retry_budget_s >= 0", reason="bad_config")

        def configure(conn: psycopg.Connection[Any]) -> None:
            conn.read_only = read_only
            conn.autocommit = False

        try:
            pool = psycopg_pool.ConnectionPool(
                url,
                min_size=1,
                max_size=pool_size,
                open=False,
                configure=configure,
                check=psycopg_pool.ConnectionPool.check_connection,
                timeout=max(1.0, min(10.0, retry_budget_s)),
                reconnect_timeout=max(1.0, retry_budget_s),
                name="chiploc-store",
            )
            pool.open(wait=False)
        except psycopg.Error as e:
            raise StoreError(f"{label}: cannot create pool: {e}", reason="open_failed") from e
        store = cls(
            pool,
            label=label,
            read_only=read_only,
            retry_budget_s=retry_budget_s,
            sleep=sleep,
        )
        try:
            store._check_and_migrate(migrations)
        except BaseException:
            store.close()
            raise
        return store

    def _check_and_migrate(self, migrations: Sequence[Migration]) -> None:
        latest = migrations[-1].version if migrations else 0
        version = self._run("schema version", self._version_in, write=False)
        if version > latest:
            raise StoreError(
                f"{self._label}: schema version {version} is newer than this chiploc supports "
                f"({latest}); upgrade chiploc to open it",
                reason="schema_too_new",
            )
        if self._read_only:
            if version < latest:
                raise StoreError(
                    f"{self._label}: schema version {version} is older than {latest}; open it "
                    "read-write once to migrate",
                    reason="schema_outdated",
                )
            return
        for m in migrations:
            if not m.postgresql:
                raise StoreError(
                    f"migration {m.version} has no PostgreSQL dialect", reason="migration_gap"
                )

            def step(conn: psycopg.Connection[Any], m: Migration = m) -> None:
                self._lock(conn)
                version = self._version_in(conn)
                if version >= m.version:
                    return
                if version != m.version - 1:
                    raise StoreError(
                        f"{self._label}: cannot apply migration {m.version} to version {version}",
                        reason="migration_gap",
                    )
                for statement in m.postgresql:
                    conn.execute(statement.encode())
                conn.execute(
                    "INSERT INTO schema_migrations (version, description) VALUES (%s, %s)",
                    (m.version, m.description),
                )

            self._run(f"migration {m.version}", step, write=True)

    def _version_in(self, conn: psycopg.Connection[Any]) -> int:
        # A catalog scan, not to_regclass: to_regclass answers from this session's catalog
        # cache, which may still hold "no such table" after another writer's migration
        # committed while this one waited on the lock (an advisory lock does not refresh it).
        has_table = conn.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = current_schema() "
            "AND tablename = 'schema_migrations')"
        ).fetchone()
        if has_table is None or not has_table[0]:
            other = conn.execute(
                "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()"
            ).fetchone()
            if other is not None and other[0]:
                raise StoreError(
                    f"{self._label}: not a chiploc store (tables but no schema_migrations)",
                    reason="not_a_store",
                )
            return 0
        first = conn.execute("SELECT description FROM schema_migrations WHERE version = 1")
        row = first.fetchone()
        if row is None or row[0] != MIGRATIONS[0].description:
            raise StoreError(
                f"{self._label}: not a chiploc store (foreign schema_migrations)",
                reason="not_a_store",
            )
        top = conn.execute("SELECT max(version) FROM schema_migrations").fetchone()
        return int(top[0]) if top is not None and top[0] is not None else 0

    # the one seam: transactions, retries, error conversion -----------------
    @staticmethod
    def _lock(conn: psycopg.Connection[Any]) -> None:
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (ADVISORY_LOCK_KEY,))

    def _run(
        self,
        what: str,
        fn: Callable[[psycopg.Connection[Any]], _T],
        *,
        write: bool,
        idempotent: bool = True,
        lock: bool = True,
    ) -> _T:
        """Run ``fn`` in one transaction (holding the write lock when ``write``, unless
        ``lock=False``: then ``fn`` takes it itself before it reads the audit head); retry
        it after a connection-level failure, with backoff, within the retry budget."""
        if write and self._read_only:
            raise StoreError(f"{self._label}: store opened read-only", reason="read_only")
        deadline = time.monotonic() + self._retry_budget_s
        delay = 0.05
        while True:
            committing = False
            try:
                with self._pool.connection() as conn:
                    try:
                        if write and lock:
                            self._lock(conn)
                        out = fn(conn)
                        committing = True
                        conn.commit()
                        return out
                    except BaseException:
                        if not conn.closed and not committing:
                            with contextlib.suppress(psycopg.Error):  # broken: pool drops it
                                conn.rollback()
                        raise
            except psycopg.OperationalError as e:
                if committing and not idempotent:
                    raise StoreUnavailable(
                        f"{self._label}: connection lost while committing {what}; whether it "
                        f"was stored is unknown ({_first_line(e)})",
                        reason="commit_unknown",
                    ) from e
                if time.monotonic() + delay > deadline:
                    raise StoreUnavailable(
                        f"{self._label}: database unavailable for {what} after "
                        f"{self._retry_budget_s:g} s of retries: {_first_line(e)}",
                    ) from e
                self.retries += 1
                self._sleep(delay)
                delay = min(delay * 2, 2.0)
            except psycopg.Error as e:
                verb = "write" if write else "read"
                raise StoreError(
                    f"{self._label}: cannot {verb} {what}: {_first_line(e)}",
                    reason=f"{verb}_failed",
                ) from e

    # lifecycle ----------------------------------------------------------
    @property
    def label(self) -> str:
        return self._label

    @property
    def schema_version(self) -> int:
        return self._run("schema version", self._version_in, write=False)

    def close(self) -> None:
        self._pool.close()

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # audit --------------------------------------------------------------
    @staticmethod
    def _head_in(conn: psycopg.Connection[Any]) -> AuditEntry | None:
        row = conn.execute(
            f"SELECT {_AUDIT_COLS} FROM audit_log ORDER BY seq DESC LIMIT 1"  # noqa: S608
        ).fetchone()
        return None if row is None else audit_from_row(row)

    def audit_head(self) -> AuditEntry | None:
        return self._run("audit log", self._head_in, write=False)

    def audit_entries(self) -> Iterator[AuditEntry]:
        after = 0
        while True:

            def page(conn: psycopg.Connection[Any], after: int = after) -> list[Any]:
                return conn.execute(
                    f"SELECT {_AUDIT_COLS} FROM audit_log WHERE seq > %s "  # noqa: S608
                    "ORDER BY seq LIMIT %s",
                    (after, _PAGE),
                ).fetchall()

            rows = self._run("audit log", page, write=False)
            for row in rows:
                yield audit_from_row(row)
            if len(rows) < _PAGE:
                return
            after = int(rows[-1][0])

    # identities ---------------------------------------------------------
    def _record_enrolment(
        self,
        *,
        role: str,
        identity_id: str,
        public_key: bytes,
        revoked: bool,
        details: dict[str, object],
        now_unix_ns: int,
        upsert: tuple[str, tuple[Any, ...]] | None,
    ) -> bool:
        details_json = canonical_json(details)

        def tx(conn: psycopg.Connection[Any]) -> bool:
            last = conn.execute(
                "SELECT public_key, revoked, details FROM enrolments "
                "WHERE role = %s AND identity_id = %s ORDER BY enrolment_id DESC LIMIT 1",
                (role, identity_id),
            ).fetchone()
            if last is not None and (bytes(last[0]), bool(last[1]), str(last[2]).encode()) == (
                public_key,
                revoked,
                details_json,
            ):
                return False
            row = conn.execute(
                "INSERT INTO enrolments (role, identity_id, public_key, revoked, details, "
                "recorded_at_unix_ns) VALUES (%s, %s, %s, %s, %s, %s) RETURNING enrolment_id",
                (role, identity_id, public_key, revoked, details_json.decode(), now_unix_ns),
            ).fetchone()
            assert row is not None  # noqa: S101 - RETURNING always yields the row
            record = EnrolmentRecord(
                enrolment_id=int(row[0]),
                role=role,
                identity_id=identity_id,
                public_key=public_key,
                revoked=revoked,
                details=details,
                recorded_at_unix_ns=now_unix_ns,
            )
            self._append_encoded(
                conn,
                self._head_in(conn),
                [("enrolment", now_unix_ns, canonical_json(enrolment_audit_payload(record)))],
            )
            if upsert is not None:
                conn.execute(upsert[0].encode(), upsert[1])
            return True

        return self._run(f"enrolment of {role} {identity_id}", tx, write=True)

    def record_landmark(self, landmark: LandmarkRecord, *, now_unix_ns: int) -> bool:
        return self._record_enrolment(
            role="landmark",
            identity_id=landmark.landmark_id,
            public_key=landmark.public_key,
            revoked=landmark.revoked,
            details=landmark.details(),
            now_unix_ns=now_unix_ns,
            upsert=(
                "INSERT INTO landmarks (landmark_id, lat, lon, operator, public_key, revoked, "
                "updated_at_unix_ns) VALUES (%s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (landmark_id) DO UPDATE SET lat = excluded.lat, "
                "lon = excluded.lon, operator = excluded.operator, "
                "public_key = excluded.public_key, revoked = excluded.revoked, "
                "updated_at_unix_ns = excluded.updated_at_unix_ns",
                (
                    landmark.landmark_id,
                    float(landmark.lat),
                    float(landmark.lon),
                    landmark.operator,
                    landmark.public_key,
                    landmark.revoked,
                    now_unix_ns,
                ),
            ),
        )

    def record_chip(self, chip: ChipRecord, *, now_unix_ns: int) -> bool:
        return self._record_enrolment(
            role="chip",
            identity_id=chip.chip_id,
            public_key=chip.public_key,
            revoked=chip.revoked,
            details=chip.details(),
            now_unix_ns=now_unix_ns,
            upsert=(
                "INSERT INTO chips (chip_id, region_spec, public_key, revoked, "
                "updated_at_unix_ns) VALUES (%s, %s, %s, %s, %s) ON CONFLICT (chip_id) "
                "DO UPDATE SET region_spec = excluded.region_spec, "
                "public_key = excluded.public_key, revoked = excluded.revoked, "
                "updated_at_unix_ns = excluded.updated_at_unix_ns",
                (chip.chip_id, chip.region_spec, chip.public_key, chip.revoked, now_unix_ns),
            ),
        )

    def record_verifier(
        self, verifier_id: str, *, public_key: bytes, revoked: bool, now_unix_ns: int
    ) -> bool:
        if not isinstance(public_key, bytes) or len(public_key) != 32:
            raise StoreError("verifier public_key must be 32 bytes", reason="bad_record")
        return self._record_enrolment(
            role="verifier",
            identity_id=verifier_id,
            public_key=public_key,
            revoked=revoked,
            details={},
            now_unix_ns=now_unix_ns,
            upsert=None,
        )

    def landmarks(self) -> list[LandmarkRecord]:
        rows = self._run(
            "landmarks",
            lambda c: c.execute(
                "SELECT landmark_id, lat, lon, operator, public_key, revoked FROM landmarks "
                "ORDER BY landmark_id"
            ).fetchall(),
            write=False,
        )
        return [landmark_from_row(r) for r in rows]

    def chips(self) -> list[ChipRecord]:
        rows = self._run(
            "chips",
            lambda c: c.execute(
                "SELECT chip_id, region_spec, public_key, revoked FROM chips ORDER BY chip_id"
            ).fetchall(),
            write=False,
        )
        return [chip_from_row(r) for r in rows]

    def enrolments(self) -> Iterator[EnrolmentRecord]:
        for r in self._paged(
            "enrolments",
            "SELECT enrolment_id, role, identity_id, public_key, revoked, details, "
            "recorded_at_unix_ns FROM enrolments WHERE enrolment_id > %s",
            (),
            "enrolment_id",
        ):
            yield enrolment_from_row(r)

    def _paged(
        self, what: str, query: str, params: tuple[Any, ...], key: str
    ) -> Iterator[tuple[Any, ...]]:
        """Rows of ``query`` (which has ``WHERE key > %s`` first) in key order, page by page,
        each page its own retried read."""
        after = 0
        while True:

            def page(conn: psycopg.Connection[Any], after: int = after) -> list[Any]:
                return conn.execute(
                    f"{query} ORDER BY {key} LIMIT {_PAGE}".encode(), (after, *params)
                ).fetchall()

            rows = self._run(what, page, write=False)
            yield from rows
            if len(rows) < _PAGE:
                return
            after = int(rows[-1][0])

    # rounds -------------------------------------------------------------
    def add_round(self, report: ReportLike, *, received_at_unix_ns: int) -> RoundInsert:
        result = self.add_batch(
            [BatchRound(report=report, received_at_unix_ns=received_at_unix_ns)]
        )
        return RoundInsert(record=result.rounds[0], inserted=result.rounds_inserted == 1)

    def round_by_digest(self, digest_hex: str) -> RoundRecord | None:
        row = self._run(
            "rounds",
            lambda c: c.execute(
                f"SELECT {_ROUND_COLS} FROM rounds WHERE digest = %s",  # noqa: S608
                (digest_hex,),
            ).fetchone(),
            write=False,
        )
        return None if row is None else round_from_row(row)

    def rounds(self, *, chip_id: str | None = None) -> Iterator[RoundRecord]:
        params: tuple[Any, ...]
        if chip_id is None:
            query, params = f"SELECT {_ROUND_COLS} FROM rounds WHERE round_id > %s", ()  # noqa: S608
        else:
            query = f"SELECT {_ROUND_COLS} FROM rounds WHERE round_id > %s AND chip_id = %s"  # noqa: S608
            params = (chip_id,)
        for row in self._paged("rounds", query, params, "round_id"):
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
        out = self.add_batch(
            verdicts=[
                BatchVerdict(
                    result=result,
                    evidence_digests=evidence_digests,
                    certificate=certificate,
                    issued_at_unix_ns=issued_at_unix_ns,
                    verdict_round=verdict_round,
                )
            ]
        )
        return out.verdicts[0]

    def verdicts(self, *, chip_id: str | None = None) -> Iterator[VerdictRecord]:
        params: tuple[Any, ...]
        if chip_id is None:
            query, params = f"SELECT {_VERDICT_COLS} FROM verdicts WHERE verdict_id > %s", ()  # noqa: S608
        else:
            query = f"SELECT {_VERDICT_COLS} FROM verdicts WHERE verdict_id > %s AND chip_id = %s"  # noqa: S608
            params = (chip_id,)
        rows: list[tuple[Any, ...]] = []
        for row in self._paged("verdicts", query, params, "verdict_id"):
            rows.append(row)
            if len(rows) == _PAGE:
                yield from self._with_evidence(rows)
                rows = []
        yield from self._with_evidence(rows)

    def _with_evidence(self, rows: Sequence[tuple[Any, ...]]) -> Iterator[VerdictRecord]:
        if not rows:
            return
        ids = [int(r[0]) for r in rows]
        links = self._run(
            "verdict evidence",
            lambda c: c.execute(
                "SELECT verdict_id, round_digest FROM verdict_evidence "
                "WHERE verdict_id = ANY(%s) ORDER BY verdict_id, round_digest",
                (ids,),
            ).fetchall(),
            write=False,
        )
        evidence: dict[int, list[str]] = {}
        for vid, digest in links:
            evidence.setdefault(int(vid), []).append(str(digest))
        for r in rows:
            yield verdict_from_row(r, tuple(evidence.get(int(r[0]), ())))

    # batches ------------------------------------------------------------
    def add_batch(
        self, rounds: Sequence[BatchRound] = (), verdicts: Sequence[BatchVerdict] = ()
    ) -> BatchResult:
        """Store rounds, then verdicts (with certificates), and their audit entries, in ONE
        transaction under the write lock, with COPY: all of it lands or none. Idempotent: a
        round already stored (by digest) or a verdict already stored (by chip and verdict
        round) is not written again, so a retried batch lands once."""
        round_rows, verdict_rows = prepare_batch(rounds, verdicts)
        for r in round_rows:
            if r.min_rtt_ns is not None and r.min_rtt_ns >= 2**63:
                raise StoreError("round not stored: min_rtt_ns out of range", reason="bad_record")
        idempotent = all(v.verdict_round is not None for v in verdict_rows)
        return self._run(
            f"batch of {len(round_rows)} rounds and {len(verdict_rows)} verdicts",
            lambda conn: self._batch_in(conn, round_rows, verdict_rows),
            write=True,
            idempotent=idempotent,
            lock=False,  # _batch_in takes it after the parallel part
        )

    def _batch_in(
        self,
        conn: psycopg.Connection[Any],
        round_rows: Sequence[RoundRecord],
        verdict_rows: Sequence[VerdictRecord],
    ) -> BatchResult:
        # 1. Without the lock (several writers do this part in parallel): what is new,
        #    fresh ids from the identity sequences.
        new_rounds = plan_rounds(
            round_rows,
            self._stored_digests(conn, round_rows),
            lambda n: _next_ids(conn, "rounds", "round_id", n),
        )
        keyed: set[VerdictKey] = {
            (v.chip_id, v.verdict_round) for v in verdict_rows if v.verdict_round
        }
        new_verdicts = plan_verdicts(
            verdict_rows,
            self._stored_keys(conn, keyed),
            lambda n: _next_ids(conn, "verdicts", "verdict_id", n),
        )
        # 2. Under the lock: drop what another writer stored meanwhile, check the evidence,
        #    chain the audit entries after the head, COPY everything in.
        self._lock(conn)
        if new_rounds:
            raced = self._stored_digests(conn, new_rounds)
            new_rounds = [r for r in new_rounds if r.digest_hex not in raced]
        if new_verdicts:
            raced_keys = self._stored_keys(
                conn, {(v.chip_id, v.verdict_round) for v in new_verdicts if v.verdict_round}
            )
            new_verdicts = [
                v for v in new_verdicts if (v.chip_id, v.verdict_round) not in raced_keys
            ]
        check_evidence(
            new_verdicts,
            {r.digest_hex for r in new_rounds},
            lambda digests: self._stored_digests_of(conn, digests),
        )
        audit = new_audit_items(new_rounds, new_verdicts)
        if new_rounds:
            with conn.cursor().copy(
                f"COPY rounds ({_ROUND_COLS}) FROM STDIN (FORMAT BINARY)"
            ) as copy:
                copy.set_types(["int8", "text", "text", "text", "int8", "int8", "bytea"])
                for r in new_rounds:
                    copy.write_row(round_row(r))
        if new_verdicts:
            with conn.cursor().copy(
                f"COPY verdicts ({_VERDICT_COLS}) FROM STDIN (FORMAT BINARY)"
            ) as copy:
                copy.set_types(_VERDICT_TYPES)
                for v in new_verdicts:
                    copy.write_row(
                        (
                            v.verdict_id,
                            v.chip_id,
                            v.verdict,
                            v.model,
                            v.proof,
                            v.region_spec,
                            v.result_json,
                            v.certificate,
                            v.issued_at_unix_ns,
                            v.verdict_round,
                        )
                    )
            with conn.cursor().copy(
                "COPY verdict_evidence (verdict_id, round_digest) FROM STDIN (FORMAT BINARY)"
            ) as copy:
                copy.set_types(["int8", "text"])
                for v in new_verdicts:
                    for d in v.evidence:
                        copy.write_row((v.verdict_id, d))
        n_audit = self._append_encoded(conn, self._head_in(conn), audit)
        # 3. What the caller gets back: every input row as stored, in input order.
        fresh = {r.digest_hex for r in new_rounds}
        missing_rounds = sorted({r.digest_hex for r in round_rows} - fresh)
        stored_rounds: dict[str, RoundRecord] = {}
        if missing_rounds:
            for row in conn.execute(
                f"SELECT {_ROUND_COLS} FROM rounds WHERE digest = ANY(%s)",  # noqa: S608
                (missing_rounds,),
            ):
                rec = round_from_row(row)
                stored_rounds[rec.digest_hex] = rec
        old_keys = keyed - {(v.chip_id, v.verdict_round) for v in new_verdicts}
        stored_verdicts: dict[VerdictKey, VerdictRecord] = {}
        if old_keys:
            rows = conn.execute(
                f"SELECT {_VERDICT_COLS} FROM verdicts "  # noqa: S608
                "WHERE verdict_round = ANY(%s) AND chip_id = ANY(%s)",
                (sorted({str(k[1]) for k in old_keys}), sorted({k[0] for k in old_keys})),
            ).fetchall()
            for stored in self._evidence_in(conn, [r for r in rows if (r[1], r[9]) in old_keys]):
                stored_verdicts[(stored.chip_id, stored.verdict_round)] = stored
        return batch_result(
            round_rows,
            verdict_rows,
            new_rounds,
            new_verdicts,
            stored_rounds=stored_rounds,
            stored_verdicts=stored_verdicts,
            audit_entries=n_audit,
        )

    @staticmethod
    def _stored_digests_of(conn: psycopg.Connection[Any], digests: Sequence[str]) -> set[str]:
        if not digests:
            return set()
        rows = conn.execute(
            "SELECT digest FROM rounds WHERE digest = ANY(%s)", (list(digests),)
        ).fetchall()
        return {str(r[0]) for r in rows}

    def _stored_digests(
        self, conn: psycopg.Connection[Any], rows: Sequence[RoundRecord]
    ) -> set[str]:
        return self._stored_digests_of(conn, sorted({r.digest_hex for r in rows}))

    @staticmethod
    def _stored_keys(conn: psycopg.Connection[Any], keys: set[VerdictKey]) -> set[VerdictKey]:
        if not keys:
            return set()
        rows = conn.execute(
            "SELECT chip_id, verdict_round FROM verdicts "
            "WHERE verdict_round = ANY(%s) AND chip_id = ANY(%s)",
            (sorted({str(k[1]) for k in keys}), sorted({k[0] for k in keys})),
        ).fetchall()
        found: set[VerdictKey] = {(str(r[0]), str(r[1])) for r in rows}
        return found & keys

    @staticmethod
    def _append_encoded(
        conn: psycopg.Connection[Any],
        head: AuditEntry | None,
        items: Sequence[tuple[str, int, bytes]],
    ) -> int:
        """Chain ``items`` (kind, at, canonical payload) after ``head``; COPY them in."""
        if not items:
            return 0
        with conn.cursor().copy(
            f"COPY audit_log ({_AUDIT_COLS}) FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.set_types(["int8", "text", "int8", "bytea", "text", "text"])
            for row in chain_audit(head, items):
                copy.write_row(row)
        return len(items)

    @staticmethod
    def _evidence_in(
        conn: psycopg.Connection[Any], rows: Sequence[tuple[Any, ...]]
    ) -> list[VerdictRecord]:
        ids = [int(r[0]) for r in rows]
        evidence: dict[int, list[str]] = {}
        if ids:
            for vid, digest in conn.execute(
                "SELECT verdict_id, round_digest FROM verdict_evidence "
                "WHERE verdict_id = ANY(%s) ORDER BY verdict_id, round_digest",
                (ids,),
            ):
                evidence.setdefault(int(vid), []).append(str(digest))
        return [verdict_from_row(r, tuple(evidence.get(int(r[0]), ()))) for r in rows]

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

        def tx(conn: psycopg.Connection[Any]) -> dict[str, int]:
            out = {}
            for t in tables:
                row = conn.execute(
                    sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(t))
                ).fetchone()
                out[t] = int(row[0]) if row is not None else 0
            return out

        return self._run("counts", tx, write=False)


def _next_ids(conn: psycopg.Connection[Any], table: str, column: str, n: int) -> list[int]:
    """``n`` fresh ids from the column's identity sequence, ascending (under the write lock
    they also follow the audit order)."""
    if n == 0:
        return []
    rows = conn.execute(
        "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
        (table, column, n),
    ).fetchall()
    return sorted(int(r[0]) for r in rows)


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
