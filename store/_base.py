"""The ``Store`` interface: what the verifier needs from a database.

Two implementations ship: :class:`store.SqliteStore` (embedded, the default)
and :class:`store.PostgresStore` (a server shared by several verifier
processes). Contract for every implementation (``tests/store`` runs it
against both):

- every write is one transaction; a round, verdict or enrolment row and the
  audit entry covering it commit together or not at all;
- the audit log is append-only and hash-chained (:mod:`store._audit`);
- ``add_round`` is idempotent by report digest: the same signed bytes give the
  same row and no second audit entry;
- ``add_verdict`` with a ``verdict_round`` is idempotent by (chip, verdict
  round): the same pair again returns the stored verdict, writes nothing;
- ``add_batch`` stores rounds, verdicts (with certificates) and their audit
  entries in ONE transaction, idempotently: a retried batch lands once;
- time is an argument (``*_unix_ns``); nothing reads the clock;
- the store does not verify signatures: callers pass reports that
  ``protocol.verify_report`` accepted.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Protocol

from chiploc.store._audit import AuditEntry
from chiploc.store._mesh import MeshFlagRecord, MeshMinimum, MeshReportLike, MeshRoundRecord
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
)

__all__ = ["Store"]


class Store(Protocol):
    @property
    def schema_version(self) -> int: ...

    def close(self) -> None: ...

    def __enter__(self) -> Store: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    # identities ---------------------------------------------------------
    def record_landmark(self, landmark: LandmarkRecord, *, now_unix_ns: int) -> bool:
        """Upsert; log an enrolment when key, place or revocation changed. True if changed."""
        ...

    def record_chip(self, chip: ChipRecord, *, now_unix_ns: int) -> bool: ...

    def record_verifier(
        self, verifier_id: str, *, public_key: bytes, revoked: bool, now_unix_ns: int
    ) -> bool: ...

    def landmarks(self) -> list[LandmarkRecord]: ...

    def chips(self) -> list[ChipRecord]: ...

    def enrolments(self) -> Iterator[EnrolmentRecord]: ...

    # rounds and verdicts ------------------------------------------------
    def add_round(self, report: ReportLike, *, received_at_unix_ns: int) -> RoundInsert: ...

    def round_by_digest(self, digest_hex: str) -> RoundRecord | None: ...

    def rounds(self, *, chip_id: str | None = None) -> Iterator[RoundRecord]: ...

    def add_verdict(
        self,
        result: Mapping[str, Any],
        *,
        evidence_digests: Sequence[str],
        certificate: bytes | None,
        issued_at_unix_ns: int,
        verdict_round: str | None = None,
    ) -> VerdictRecord: ...

    def add_batch(
        self, rounds: Sequence[BatchRound] = (), verdicts: Sequence[BatchVerdict] = ()
    ) -> BatchResult:
        """Rounds, then verdicts, and their audit entries in one transaction (idempotent)."""
        ...

    def verdicts(self, *, chip_id: str | None = None) -> Iterator[VerdictRecord]: ...

    # the landmark mesh (docs/mesh.md) -----------------------------------
    def add_mesh_round(
        self, report: MeshReportLike, *, received_at_unix_ns: int
    ) -> tuple[MeshRoundRecord, bool]:
        """Store a verified mesh report (idempotent by digest; audited ``mesh_round``).
        Returns the row and whether it is new."""
        ...

    def mesh_rounds(self) -> Iterator[MeshRoundRecord]: ...

    def mesh_minimums(self, *, received_after_unix_ns: int = -(2**63)) -> list[MeshMinimum]:
        """Per direction (landmark, peer): the answered round with the smallest
        ``min_rtt_ns - overhead_ns`` among those received after the given time."""
        ...

    def add_mesh_flag(
        self,
        landmark_id: str,
        *,
        action: str,
        details: Mapping[str, object],
        now_unix_ns: int,
    ) -> MeshFlagRecord:
        """Append ``suspect`` or ``clear`` for a landmark (audited ``mesh_flag``)."""
        ...

    def mesh_flags(self) -> Iterator[MeshFlagRecord]: ...

    def mesh_suspects(self) -> dict[str, MeshFlagRecord]:
        """Landmarks whose latest flag-log entry is ``suspect``."""
        ...

    def mesh_cleared_at(self) -> dict[str, int]:
        """Landmark id -> time of its latest ``clear``."""
        ...

    # audit log ----------------------------------------------------------
    def audit_entries(self) -> Iterator[AuditEntry]:
        """Every entry in ``seq`` order, as stored (not verified)."""
        ...

    def audit_head(self) -> AuditEntry | None: ...
