"""What both store backends do alike with a batch and with stored rows (pure: no database).

``Store.add_batch`` on SQLite and on PostgreSQL runs the same steps; only the SQL differs:

1. :func:`prepare_batch` - the rows the inputs become (validated once);
2. :func:`plan_rounds` / :func:`plan_verdicts` - what is new (not stored already, not
   repeated in the batch), each with a fresh id from the caller (ascending: under the
   write lock they follow the audit order);
3. :func:`chain_audit` - the new rows' audit entries chained after the log's head;
4. :func:`batch_result` - every input row as stored, in input order, and the counts.

And the row mappers (:func:`round_from_row`, :func:`verdict_from_row`,
:func:`audit_from_row`) turn a stored row back into a record, raising
:class:`~chiploc.common.errors.IntegrityError` (table and row named) for a row that no
longer parses. No value is coerced on the way: a stored value of the wrong type is a bad
row, not one to convert.

Invariants: the audit payloads are the canonical JSON the chain hashes, computed once per
new row; a verdict whose evidence is neither in the batch nor stored is refused
(``unknown_evidence``) before anything is written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from chiploc.common.canonical import canonical_json, parse_json_strict, sha256_hex
from chiploc.common.errors import DecodeError, IntegrityError, StoreError
from chiploc.store._audit import GENESIS_HASH_HEX, AuditEntry, audit_entry_hash
from chiploc.store._mesh import MeshFlagRecord, MeshMinimum, MeshReportLike, MeshRoundRecord
from chiploc.store._records import (
    MODELS,
    VERDICTS,
    BatchResult,
    BatchRound,
    BatchVerdict,
    ChipRecord,
    EnrolmentRecord,
    LandmarkRecord,
    RoundRecord,
    VerdictRecord,
    prepare_round,
    prepare_verdict,
    round_audit_payload,
    verdict_audit_payload,
)

__all__ = [
    "AuditRow",
    "VerdictKey",
    "as_bytes",
    "audit_from_row",
    "batch_result",
    "chain_audit",
    "check_evidence",
    "chip_from_row",
    "enrolment_from_row",
    "landmark_from_row",
    "mesh_flag_details_json",
    "mesh_flag_from_row",
    "mesh_minima_from_rows",
    "mesh_round_from_row",
    "new_audit_items",
    "plan_rounds",
    "plan_verdicts",
    "prepare_batch",
    "prepare_mesh_round",
    "round_from_row",
    "row_guard",
    "verdict_from_row",
    "with_id",
]

#: (seq, kind, at_unix_ns, payload, prev_hash, hash): an audit_log row as written.
AuditRow = tuple[int, str, int, bytes, str, str]
#: A verdict's key in the store: (chip, verdict round).
VerdictKey = tuple[str, str | None]


# -- rows back into records ---------------------------------------------------------------


def as_bytes(value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, memoryview | bytearray):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8")
    raise ValueError(f"expected bytes, got {type(value).__name__}")


@contextmanager
def row_guard(table: str, row_id: object) -> Iterator[None]:
    try:
        yield
    except (ValueError, TypeError, DecodeError) as e:
        raise IntegrityError(
            f"{table} row {row_id!r}: stored values are invalid ({e})", reason="bad_row"
        ) from e


def round_from_row(r: Sequence[Any]) -> RoundRecord:
    with row_guard("rounds", r[0]):
        return RoundRecord(
            round_id=r[0],
            digest_hex=r[1],
            landmark_id=r[2],
            chip_id=r[3],
            min_rtt_ns=r[4],
            received_at_unix_ns=r[5],
            raw=as_bytes(r[6]),
        )


def round_row(r: RoundRecord) -> tuple[int, str, str, str, int | None, int, bytes]:
    """The ``rounds`` columns of ``r``, in the order :func:`round_from_row` reads them."""
    return (
        r.round_id,
        r.digest_hex,
        r.landmark_id,
        r.chip_id,
        r.min_rtt_ns,
        r.received_at_unix_ns,
        r.raw,
    )


def verdict_from_row(r: Sequence[Any], evidence: tuple[str, ...]) -> VerdictRecord:
    with row_guard("verdicts", r[0]):
        if r[2] not in VERDICTS or r[3] not in MODELS:
            raise ValueError(f"unknown verdict/model {r[2]!r}/{r[3]!r}")
        return VerdictRecord(
            verdict_id=r[0],
            chip_id=r[1],
            verdict=r[2],
            model=r[3],
            proof=bool(r[4]),
            region_spec=r[5],
            result_json=as_bytes(r[6]),
            certificate=None if r[7] is None else as_bytes(r[7]),
            evidence=evidence,
            issued_at_unix_ns=r[8],
            verdict_round=r[9],
        )


def landmark_from_row(r: Sequence[Any]) -> LandmarkRecord:
    with row_guard("landmarks", r[0]):
        return LandmarkRecord(
            landmark_id=r[0],
            lat=r[1],
            lon=r[2],
            operator=r[3],
            public_key=as_bytes(r[4]),
            revoked=bool(r[5]),
        )


def chip_from_row(r: Sequence[Any]) -> ChipRecord:
    with row_guard("chips", r[0]):
        return ChipRecord(
            chip_id=r[0], region_spec=r[1], public_key=as_bytes(r[2]), revoked=bool(r[3])
        )


def enrolment_from_row(r: Sequence[Any]) -> EnrolmentRecord:
    with row_guard("enrolments", r[0]):
        details = parse_json_strict(as_bytes(r[5]), what="enrolment details")
        if not isinstance(details, dict):
            raise ValueError("details is not a JSON object")
        return EnrolmentRecord(
            enrolment_id=int(r[0]),
            role=r[1],
            identity_id=r[2],
            public_key=as_bytes(r[3]),
            revoked=bool(r[4]),
            details=details,
            recorded_at_unix_ns=int(r[6]),
        )


def audit_from_row(r: Sequence[Any]) -> AuditEntry:
    with row_guard("audit_log", r[0]):
        return AuditEntry(
            seq=r[0],
            kind=str(r[1]),
            at_unix_ns=r[2],
            payload=as_bytes(r[3]),
            prev_hash_hex=str(r[4]),
            hash_hex=str(r[5]),
        )


# -- a batch ------------------------------------------------------------------------------


def prepare_batch(
    rounds: Sequence[BatchRound], verdicts: Sequence[BatchVerdict]
) -> tuple[list[RoundRecord], list[VerdictRecord]]:
    """The rows the batch's inputs become (``StoreError`` ``bad_record`` for a bad one)."""
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
            result_json=v.result_json,
        )
        for v in verdicts
    ]
    return round_rows, verdict_rows


_R = TypeVar("_R", RoundRecord, VerdictRecord)


def with_id(record: _R, name: str, value: int) -> _R:
    """``record`` with its id set to ``value`` (a positive int from the store).

    ``dataclasses.replace`` would validate every field again; ``record`` was validated by
    ``prepare_round`` / ``prepare_verdict`` and only the id changes (a batch of 4,000
    rounds spends a noticeable share of its time re-validating otherwise).
    """
    if type(value) is not int or value < 1:
        raise StoreError(f"bad {name} {value!r} from the id sequence", reason="write_failed")
    cls = type(record)
    out = object.__new__(cls)
    for slot in cls.__slots__:
        object.__setattr__(out, slot, value if slot == name else getattr(record, slot))
    return out


def plan_rounds(
    rows: Sequence[RoundRecord], stored: set[str], next_ids: Callable[[int], Sequence[int]]
) -> list[RoundRecord]:
    """The rounds to insert (not ``stored``, first of their digest), ids from ``next_ids(n)``."""
    planned: dict[str, RoundRecord] = {}
    for r in rows:
        if r.digest_hex not in stored and r.digest_hex not in planned:
            planned[r.digest_hex] = r
    ids = next_ids(len(planned)) if planned else []
    return [with_id(r, "round_id", rid) for rid, r in zip(ids, planned.values(), strict=True)]


def plan_verdicts(
    rows: Sequence[VerdictRecord],
    stored: set[VerdictKey],
    next_ids: Callable[[int], Sequence[int]],
) -> list[VerdictRecord]:
    """The verdicts to insert: keyed ones not ``stored`` nor repeated in the batch, and
    every unkeyed one; ids from ``next_ids(n)``."""
    fresh: list[VerdictRecord] = []
    seen: set[VerdictKey] = set()
    for v in rows:
        key = (v.chip_id, v.verdict_round)
        if v.verdict_round is not None:
            if key in stored or key in seen:
                continue  # stored already, or repeated in this batch: the same verdict
            seen.add(key)
        fresh.append(v)
    ids = next_ids(len(fresh)) if fresh else []
    return [with_id(v, "verdict_id", vid) for vid, v in zip(ids, fresh, strict=True)]


def check_evidence(
    verdicts: Sequence[VerdictRecord],
    batch_digests: set[str],
    stored_of: Callable[[Sequence[str]], set[str]],
) -> None:
    """Refuse (``unknown_evidence``) a verdict whose evidence is neither in the batch nor
    stored (``stored_of(digests)``: those of ``digests`` the store holds)."""
    wanted = sorted({d for v in verdicts for d in v.evidence} - batch_digests)
    if not wanted:
        return
    present = stored_of(wanted)
    missing = [d for d in wanted if d not in present]
    if missing:
        raise StoreError(
            f"verdict not stored: evidence report {missing[0]} is not in the store",
            reason="unknown_evidence",
        )


def new_audit_items(
    rounds: Iterable[RoundRecord], verdicts: Iterable[VerdictRecord]
) -> list[tuple[str, int, bytes]]:
    """(kind, at, canonical payload) of the new rows, rounds first: what is chained."""
    items = [
        ("round", r.received_at_unix_ns, canonical_json(round_audit_payload(r))) for r in rounds
    ]
    items += [
        ("verdict", v.issued_at_unix_ns, canonical_json(verdict_audit_payload(v))) for v in verdicts
    ]
    return items


def chain_audit(head: AuditEntry | None, items: Sequence[tuple[str, int, bytes]]) -> list[AuditRow]:
    """``items`` (kind, at, canonical payload) chained after ``head``: the rows to append."""
    seq = 0 if head is None else head.seq
    prev = GENESIS_HASH_HEX if head is None else head.hash_hex
    out: list[AuditRow] = []
    for kind, at_unix_ns, payload in items:
        seq += 1
        h = audit_entry_hash(
            seq=seq, prev_hash_hex=prev, kind=kind, at_unix_ns=at_unix_ns, payload=payload
        )
        out.append((seq, kind, at_unix_ns, payload, prev, h))
        prev = h
    return out


def batch_result(
    round_rows: Sequence[RoundRecord],
    verdict_rows: Sequence[VerdictRecord],
    new_rounds: Sequence[RoundRecord],
    new_verdicts: Sequence[VerdictRecord],
    *,
    stored_rounds: Mapping[str, RoundRecord],
    stored_verdicts: Mapping[VerdictKey, VerdictRecord],
    audit_entries: int,
) -> BatchResult:
    """Every input row as stored, in input order (``stored_*``: the rows that were there
    before, by digest and by key), and what was written."""
    by_digest = {**stored_rounds, **{r.digest_hex: r for r in new_rounds}}
    by_key: dict[VerdictKey, VerdictRecord] = {
        **stored_verdicts,
        **{(v.chip_id, v.verdict_round): v for v in new_verdicts if v.verdict_round},
    }
    unkeyed = iter([v for v in new_verdicts if v.verdict_round is None])
    evidence_rows = sum(len(v.evidence) for v in new_verdicts)
    return BatchResult(
        rounds=tuple(by_digest[r.digest_hex] for r in round_rows),
        verdicts=tuple(
            by_key[(v.chip_id, v.verdict_round)] if v.verdict_round is not None else next(unkeyed)
            for v in verdict_rows
        ),
        rounds_inserted=len(new_rounds),
        verdicts_inserted=len(new_verdicts),
        audit_entries=audit_entries,
        rows_written=len(new_rounds) + len(new_verdicts) + evidence_rows + audit_entries,
    )


# -- mesh rows (both backends) ----------------------------------------------------------


def _bytes_only(value: object) -> bytes:
    """A mesh row's bytes column: exactly bytes (unlike :func:`as_bytes`, nothing converted)."""
    if isinstance(value, bytes):
        return value
    raise ValueError(f"expected bytes, got {type(value).__name__}")


#: Both backends store integers as signed 64-bit.
_I64_MAX = 2**63 - 1


def prepare_mesh_round(report: MeshReportLike, *, received_at_unix_ns: int) -> MeshRoundRecord:
    """The mesh round to store for ``report`` (id 1 until written), or ``bad_record``."""
    raw = bytes(report.raw)
    try:
        candidate = MeshRoundRecord(
            mesh_round_id=1,
            digest_hex=sha256_hex(raw),
            landmark_id=report.landmark_id,
            peer_id=report.chip_id,
            min_rtt_ns=report.min_rtt_ns,
            overhead_ns=report.overhead_lower_bound_ns,
            received_at_unix_ns=received_at_unix_ns,
            raw=raw,
        )
        for name, value in (
            ("min_rtt_ns", candidate.min_rtt_ns or 0),
            ("overhead_ns", candidate.overhead_ns),
        ):
            if value > _I64_MAX:
                raise ValueError(f"{name} out of range")
    except ValueError as e:
        raise StoreError(f"mesh round not stored: {e}", reason="bad_record") from e
    return candidate


def mesh_round_from_row(r: Sequence[Any]) -> MeshRoundRecord:
    with row_guard("mesh_rounds", r[0]):
        return MeshRoundRecord(
            mesh_round_id=r[0],
            digest_hex=r[1],
            landmark_id=r[2],
            peer_id=r[3],
            min_rtt_ns=r[4],
            overhead_ns=r[5],
            received_at_unix_ns=r[6],
            raw=_bytes_only(r[7]),
        )


def mesh_flag_from_row(r: Sequence[Any]) -> MeshFlagRecord:
    with row_guard("mesh_flags", r[0]):
        return MeshFlagRecord(
            flag_id=r[0],
            landmark_id=r[1],
            action=r[2],
            details=parse_json_strict(_bytes_only(r[3]), what="mesh flag details"),
            recorded_at_unix_ns=r[4],
        )


def mesh_minima_from_rows(rows: Sequence[Sequence[Any]]) -> list[MeshMinimum]:
    """Each (landmark, peer)'s minimum from ranked mesh_rounds rows (rank 1 only), sorted."""
    return [
        MeshMinimum(
            landmark_id=r[0],
            peer_id=r[1],
            min_rtt_ns=int(r[2]),
            overhead_ns=int(r[3]),
            digest_hex=r[4],
            rounds=int(r[5]),
        )
        for r in sorted(rows, key=lambda r: (r[0], r[1]))
        if r[6] == 1
    ]


def mesh_flag_details_json(
    landmark_id: str, action: str, details: Mapping[str, object], now_unix_ns: int
) -> bytes:
    """Check a mesh flag before it is written; its details as canonical JSON."""
    try:
        MeshFlagRecord(
            flag_id=1,
            landmark_id=landmark_id,
            action=action,
            details=details,
            recorded_at_unix_ns=now_unix_ns,
        )
        return canonical_json(dict(details))
    except (TypeError, ValueError) as e:
        raise StoreError(f"mesh flag not stored: {e}", reason="bad_record") from e
