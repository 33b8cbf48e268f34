"""The mesh tables of the embedded sqlite store (a mixin of :class:`SqliteStore`).

Same rules as the rest of the store: one transaction per write with the audit entry that
covers it, every ``sqlite3`` error converted to :class:`~chiploc.common.errors.StoreError`,
a stored row that no longer parses is an :class:`~chiploc.common.errors.IntegrityError`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Final

from chiploc.common.canonical import parse_json_strict
from chiploc.store._audit import AuditEntry
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

__all__ = ["SqliteMeshMixin"]

_BATCH: Final = 256
_MESH_SELECT: Final = (
    "SELECT mesh_round_id, digest, landmark_id, peer_id, min_rtt_ns, overhead_ns, "
    "received_at_unix_ns, raw FROM mesh_rounds"
)


class SqliteMeshMixin(MeshViewsMixin):
    """``add_mesh_round``, ``mesh_rounds``, ``mesh_minimums``, ``add_mesh_flag``,
    ``mesh_flags`` (see :class:`~chiploc.store.Store`); ``mesh_suspects`` and
    ``mesh_cleared_at`` from :class:`~chiploc.store._mesh.MeshViewsMixin`."""

    if TYPE_CHECKING:  # provided by SqliteStore

        def _write(self) -> AbstractContextManager[sqlite3.Connection]: ...
        def _read(self, what: str) -> AbstractContextManager[sqlite3.Connection]: ...
        def _append_audit(
            self, c: sqlite3.Connection, *, kind: str, at_unix_ns: int, payload: dict[str, object]
        ) -> AuditEntry: ...

    def add_mesh_round(
        self, report: MeshReportLike, *, received_at_unix_ns: int
    ) -> tuple[MeshRoundRecord, bool]:
        candidate = prepare_mesh_round(report, received_at_unix_ns=received_at_unix_ns)
        digest, raw = candidate.digest_hex, candidate.raw
        with self._write() as c:
            existing = c.execute(_MESH_SELECT + " WHERE digest = ?", (digest,)).fetchone()
            if existing is not None:
                return mesh_round_from_row(existing), False
            cur = c.execute(
                "INSERT INTO mesh_rounds (digest, landmark_id, peer_id, min_rtt_ns, overhead_ns, "
                "received_at_unix_ns, raw) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    digest,
                    candidate.landmark_id,
                    candidate.peer_id,
                    candidate.min_rtt_ns,
                    candidate.overhead_ns,
                    received_at_unix_ns,
                    raw,
                ),
            )
            assert cur.lastrowid is not None  # noqa: S101 - INSERT always sets it
            record = MeshRoundRecord(
                mesh_round_id=int(cur.lastrowid),
                digest_hex=digest,
                landmark_id=candidate.landmark_id,
                peer_id=candidate.peer_id,
                min_rtt_ns=candidate.min_rtt_ns,
                overhead_ns=candidate.overhead_ns,
                received_at_unix_ns=received_at_unix_ns,
                raw=raw,
            )
            self._append_audit(
                c,
                kind="mesh_round",
                at_unix_ns=received_at_unix_ns,
                payload=mesh_round_audit_payload(record),
            )
        return record, True

    def mesh_rounds(self) -> Iterator[MeshRoundRecord]:
        with self._read("mesh rounds") as c:
            cur = c.execute(_MESH_SELECT + " ORDER BY mesh_round_id")
            while rows := cur.fetchmany(_BATCH):
                for row in rows:
                    yield mesh_round_from_row(row)

    def mesh_minimums(self, *, received_after_unix_ns: int = -(2**63)) -> list[MeshMinimum]:
        with self._read("mesh minimums") as c:
            rows = c.execute(
                "SELECT landmark_id, peer_id, min_rtt_ns, overhead_ns, digest, "
                "count(*) OVER (PARTITION BY landmark_id, peer_id), "
                "row_number() OVER (PARTITION BY landmark_id, peer_id "
                "ORDER BY min_rtt_ns - overhead_ns, min_rtt_ns, digest) "
                "FROM mesh_rounds WHERE min_rtt_ns IS NOT NULL AND received_at_unix_ns > ?",
                (received_after_unix_ns,),
            ).fetchall()
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
        with self._write() as c:
            cur = c.execute(
                "INSERT INTO mesh_flags (landmark_id, action, details, recorded_at_unix_ns) "
                "VALUES (?, ?, ?, ?)",
                (landmark_id, action, details_json, now_unix_ns),
            )
            assert cur.lastrowid is not None  # noqa: S101 - INSERT always sets it
            record = MeshFlagRecord(
                flag_id=int(cur.lastrowid),
                landmark_id=landmark_id,
                action=action,
                details=parse_json_strict(details_json, what="mesh flag details"),
                recorded_at_unix_ns=now_unix_ns,
            )
            self._append_audit(
                c,
                kind="mesh_flag",
                at_unix_ns=now_unix_ns,
                payload=mesh_flag_audit_payload(record),
            )
        return record

    def mesh_flags(self) -> Iterator[MeshFlagRecord]:
        with self._read("mesh flags") as c:
            cur = c.execute(
                "SELECT flag_id, landmark_id, action, details, recorded_at_unix_ns "
                "FROM mesh_flags ORDER BY flag_id"
            )
            while rows := cur.fetchmany(_BATCH):
                for row in rows:
                    yield mesh_flag_from_row(row)
