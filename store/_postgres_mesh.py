"""The mesh tables of the PostgreSQL store (a mixin of :class:`PostgresStore`).

Same rules as the rest of that store (``store/_postgres.py``): every write is one
transaction through :meth:`PostgresStore._run`, holding the advisory lock
(:data:`~chiploc.store.ADVISORY_LOCK_KEY`) before it reads the audit head, so the mesh
rows' ``mesh_round`` / ``mesh_flag`` entries join the one hash chain of every process;
the row and its audit entry commit together or not at all. A mesh round is idempotent by
digest (retried freely); a flag is not keyed, so a connection lost during its COMMIT
raises ``StoreUnavailable`` ``commit_unknown`` instead of writing it twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, TypeVar

from chiploc.common.canonical import canonical_json, parse_json_strict
from chiploc.store._batch import (
    mesh_flag_details_json,
    mesh_flag_from_row,
    mesh_minima_from_rows,
    mesh_round_from_row,
    prepare_mesh_round,
)
from chiploc.store._mesh import (
    MeshFlagRecord,
    MeshMinimum,
    MeshReportLike,
    MeshRoundRecord,
    MeshViewsMixin,
    mesh_flag_audit_payload,
    mesh_round_audit_payload,
)

if TYPE_CHECKING:
    import psycopg

    from chiploc.store._audit import AuditEntry

__all__ = ["PostgresMeshMixin"]

_T = TypeVar("_T")
_MESH_COLS: Final = (
    "mesh_round_id, digest, landmark_id, peer_id, min_rtt_ns, overhead_ns, received_at_unix_ns, raw"
)
_FLAG_COLS: Final = "flag_id, landmark_id, action, details, recorded_at_unix_ns"


class PostgresMeshMixin(MeshViewsMixin):
    """``add_mesh_round``, ``mesh_rounds``, ``mesh_minimums``, ``add_mesh_flag``,
    ``mesh_flags`` (see :class:`~chiploc.store.Store`); the views from
    :class:`~chiploc.store._mesh.MeshViewsMixin`."""

    if TYPE_CHECKING:  # provided by PostgresStore

        def _run(
            self,
            what: str,
            fn: Callable[[psycopg.Connection[Any]], _T],
            *,
            write: bool,
            idempotent: bool = True,
            lock: bool = True,
        ) -> _T: ...
        def _paged(
            self, what: str, query: str, params: tuple[Any, ...], key: str
        ) -> Iterator[tuple[Any, ...]]: ...
        @staticmethod
        def _head_in(conn: psycopg.Connection[Any]) -> AuditEntry | None: ...
        @staticmethod
        def _append_encoded(
            conn: psycopg.Connection[Any],
            head: AuditEntry | None,
            items: Sequence[tuple[str, int, bytes]],
        ) -> int: ...

    def add_mesh_round(
        self, report: MeshReportLike, *, received_at_unix_ns: int
    ) -> tuple[MeshRoundRecord, bool]:
        candidate = prepare_mesh_round(report, received_at_unix_ns=received_at_unix_ns)
        digest, raw = candidate.digest_hex, candidate.raw

        def tx(conn: psycopg.Connection[Any]) -> tuple[MeshRoundRecord, bool]:
            existing = conn.execute(
                f"SELECT {_MESH_COLS} FROM mesh_rounds WHERE digest = %s",  # noqa: S608
                (digest,),
            ).fetchone()
            if existing is not None:
                return mesh_round_from_row(tuple(existing)), False
            row = conn.execute(
                "INSERT INTO mesh_rounds (digest, landmark_id, peer_id, min_rtt_ns, "
                "overhead_ns, received_at_unix_ns, raw) VALUES (%s, %s, %s, %s, %s, %s, %s) "
                "RETURNING mesh_round_id",
                (
                    digest,
                    candidate.landmark_id,
                    candidate.peer_id,
                    candidate.min_rtt_ns,
                    candidate.overhead_ns,
                    received_at_unix_ns,
                    raw,
                ),
            ).fetchone()
            assert row is not None  # noqa: S101 - RETURNING always yields the row
            record = MeshRoundRecord(
                mesh_round_id=int(row[0]),
                digest_hex=digest,
                landmark_id=candidate.landmark_id,
                peer_id=candidate.peer_id,
                min_rtt_ns=candidate.min_rtt_ns,
                overhead_ns=candidate.overhead_ns,
                received_at_unix_ns=received_at_unix_ns,
                raw=raw,
            )
            payload = canonical_json(mesh_round_audit_payload(record))
            self._append_encoded(
                conn, self._head_in(conn), [("mesh_round", received_at_unix_ns, payload)]
            )
            return record, True

        # Idempotent by digest: a retry after a lost COMMIT finds the row and writes nothing.
        return self._run(f"mesh round {digest[:12]}", tx, write=True)

    def mesh_rounds(self) -> Iterator[MeshRoundRecord]:
        for r in self._paged(
            "mesh rounds",
            f"SELECT {_MESH_COLS} FROM mesh_rounds WHERE mesh_round_id > %s",  # noqa: S608
            (),
            "mesh_round_id",
        ):
            yield mesh_round_from_row(tuple(r))

    def mesh_minimums(self, *, received_after_unix_ns: int = -(2**63)) -> list[MeshMinimum]:
        rows = self._run(
            "mesh minimums",
            lambda c: c.execute(
                "SELECT landmark_id, peer_id, min_rtt_ns, overhead_ns, digest, "
                "count(*) OVER (PARTITION BY landmark_id, peer_id), "
                "row_number() OVER (PARTITION BY landmark_id, peer_id "
                "ORDER BY min_rtt_ns - overhead_ns, min_rtt_ns, digest) "
                "FROM mesh_rounds WHERE min_rtt_ns IS NOT NULL AND received_at_unix_ns > %s",
                (received_after_unix_ns,),
            ).fetchall(),
            write=False,
        )
        return mesh_minima_from_rows(rows)

    def add_mesh_flag(
        self,
        landmark_id: str,
        *,
        action: str,
        details: Mapping[str, object],
        now_unix_ns: int,
    ) -> MeshFlagRecord:
        details_json = mesh_flag_details_json(landmark_id, action, details, now_unix_ns)

        def tx(conn: psycopg.Connection[Any]) -> MeshFlagRecord:
            row = conn.execute(
                "INSERT INTO mesh_flags (landmark_id, action, details, recorded_at_unix_ns) "
                "VALUES (%s, %s, %s, %s) RETURNING flag_id",
                (landmark_id, action, details_json, now_unix_ns),
            ).fetchone()
            assert row is not None  # noqa: S101 - RETURNING always yields the row
            record = MeshFlagRecord(
                flag_id=int(row[0]),
                landmark_id=landmark_id,
                action=action,
                details=parse_json_strict(details_json, what="mesh flag details"),
                recorded_at_unix_ns=now_unix_ns,
            )
            payload = canonical_json(mesh_flag_audit_payload(record))
            self._append_encoded(conn, self._head_in(conn), [("mesh_flag", now_unix_ns, payload)])
            return record

        # Not keyed: a connection lost during COMMIT must not append the entry twice.
        return self._run(f"mesh flag of {landmark_id}", tx, write=True, idempotent=False)

    def mesh_flags(self) -> Iterator[MeshFlagRecord]:
        for r in self._paged(
            "mesh flags",
            f"SELECT {_FLAG_COLS} FROM mesh_flags WHERE flag_id > %s",  # noqa: S608
            (),
            "flag_id",
        ):
            yield mesh_flag_from_row(tuple(r))
