"""Audit verification: the hash chain, and every stored row against the entry covering it.

Invariants enforced by :func:`verify_audit` (the first violation raises
:class:`~chiploc.common.errors.IntegrityError` naming the entry ``seq`` or the table
and row id; nothing returns a bare bool):

- the chain is intact (:func:`store.verify_chain`): no entry edited, deleted,
  inserted or reordered, and every published anchor ``SEQ:HASH`` still holds;
- every round, verdict, enrolment, mesh round and mesh flag row is covered
  by exactly one audit entry of its kind, and the payload recomputed from the row equals the logged
  payload (so editing a row, not just the log, is caught; a round's digest is
  recomputed from its raw signed bytes);
- every such entry still has its row (a deleted row
  is caught even when the log is untouched);
- the current ``landmarks`` and ``chips`` rows equal the latest logged
  enrolment of that identity.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from chiploc.common.errors import IntegrityError
from chiploc.store import (
    AuditAnchor,
    AuditEntry,
    Store,
    canonical_json,
    enrolment_audit_payload,
    mesh_flag_audit_payload,
    mesh_round_audit_payload,
    parse_json_strict,
    round_audit_payload,
    sha256_hex,
    verdict_audit_payload,
    verify_chain,
)

__all__ = ["AuditReport", "verify_audit"]

_ID_FIELD: Mapping[str, str] = {
    "round": "round_id",
    "verdict": "verdict_id",
    "enrolment": "enrolment_id",
    "mesh_round": "mesh_round_id",
    "mesh_flag": "flag_id",
}
_TABLE: Mapping[str, str] = {
    "round": "rounds",
    "verdict": "verdicts",
    "enrolment": "enrolments",
    "mesh_round": "mesh_rounds",
    "mesh_flag": "mesh_flags",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditReport:
    """An intact store: the chain's size and head, and how many rows it covers."""

    entries: int
    rounds: int
    verdicts: int
    enrolments: int
    head: AuditAnchor | None
    mesh_rounds: int = 0
    mesh_flags: int = 0

    def summary(self) -> str:
        head = "empty log" if self.head is None else f"head {self.head}"
        mesh = (
            f", {self.mesh_rounds} mesh rounds, {self.mesh_flags} mesh flags"
            if self.mesh_rounds or self.mesh_flags
            else ""
        )
        return (
            f"audit log intact: {self.entries} entries covering {self.rounds} rounds, "
            f"{self.verdicts} verdicts, {self.enrolments} enrolments{mesh}; {head}"
        )


def _index(entries: Iterable[AuditEntry]) -> dict[str, dict[int, tuple[int, dict[str, Any]]]]:
    covered: dict[str, dict[int, tuple[int, dict[str, Any]]]] = {k: {} for k in _ID_FIELD}
    for e in entries:
        payload = parse_json_strict(e.payload, what="audit payload")  # chain check parsed it
        row_id = payload.get(_ID_FIELD[e.kind])
        if not isinstance(row_id, int) or isinstance(row_id, bool):
            raise IntegrityError(
                f"audit entry seq={e.seq} ({e.kind}): payload has no {_ID_FIELD[e.kind]}",
                reason="audit_bad_payload",
            )
        earlier = covered[e.kind].get(row_id)
        if earlier is not None:
            raise IntegrityError(
                f"audit entry seq={e.seq}: {_TABLE[e.kind]} row id={row_id} is already covered "
                f"by seq={earlier[0]} (duplicated entry)",
                reason="audit_duplicate",
            )
        covered[e.kind][row_id] = (e.seq, payload)
    return covered


def _diff(logged: Mapping[str, Any], stored: Mapping[str, Any]) -> str:
    keys = sorted(k for k in set(logged) | set(stored) if logged.get(k) != stored.get(k))
    return ", ".join(keys)


def _check_rows(
    kind: str,
    rows: Iterable[Any],
    row_id: Callable[[Any], int],
    payload_of: Callable[[Any], dict[str, Any]],
    covered: dict[int, tuple[int, dict[str, Any]]],
) -> int:
    table = _TABLE[kind]
    n = 0
    for row in rows:
        rid = row_id(row)
        logged = covered.pop(rid, None)
        if logged is None:
            raise IntegrityError(
                f"{table} row id={rid}: not covered by any audit entry (inserted behind the "
                "log's back, or its entry was deleted)",
                reason="row_not_audited",
            )
        seq, logged_payload = logged
        stored = parse_json_strict(canonical_json(payload_of(row)))
        if stored != logged_payload:
            raise IntegrityError(
                f"{table} row id={rid}: differs from audit entry seq={seq} in "
                f"{_diff(logged_payload, stored)} (row edited)",
                reason="row_edited",
            )
        n += 1
    for rid, (seq, _) in sorted(covered.items(), key=lambda kv: kv[1][0]):
        raise IntegrityError(
            f"audit entry seq={seq} ({kind}): {table} row id={rid} is missing (row deleted)",
            reason="row_deleted",
        )
    return n


def verify_audit(store: Store, *, anchors: Iterable[AuditAnchor] = ()) -> AuditReport:
    """Verify the audit chain and every row it covers; raise IntegrityError naming the fault."""
    entries = list(store.audit_entries())
    chain = verify_chain(entries, anchors=anchors)
    covered = _index(entries)

    def round_payload(r: Any) -> dict[str, Any]:
        if sha256_hex(r.raw) != r.digest_hex:
            raise IntegrityError(
                f"rounds row id={r.round_id}: digest does not match its raw signed bytes "
                "(row edited)",
                reason="row_edited",
            )
        return round_audit_payload(r)

    n_rounds = _check_rows(
        "round", store.rounds(), lambda r: r.round_id, round_payload, covered["round"]
    )
    n_verdicts = _check_rows(
        "verdict",
        store.verdicts(),
        lambda v: v.verdict_id,
        verdict_audit_payload,
        covered["verdict"],
    )

    def mesh_round_payload(r: Any) -> dict[str, Any]:
        if sha256_hex(r.raw) != r.digest_hex:
            raise IntegrityError(
                f"mesh_rounds row id={r.mesh_round_id}: digest does not match its raw signed "
                "bytes (row edited)",
                reason="row_edited",
            )
        return mesh_round_audit_payload(r)

    n_mesh_rounds = _check_rows(
        "mesh_round",
        store.mesh_rounds(),
        lambda r: r.mesh_round_id,
        mesh_round_payload,
        covered["mesh_round"],
    )
    n_mesh_flags = _check_rows(
        "mesh_flag",
        store.mesh_flags(),
        lambda f: f.flag_id,
        mesh_flag_audit_payload,
        covered["mesh_flag"],
    )
    enrolments = list(store.enrolments())
    n_enrolments = _check_rows(
        "enrolment",
        enrolments,
        lambda e: e.enrolment_id,
        enrolment_audit_payload,
        covered["enrolment"],
    )
    latest = {(e.role, e.identity_id): e for e in enrolments}
    for lm in store.landmarks():
        e = latest.get(("landmark", lm.landmark_id))
        if e is None or (e.public_key, e.revoked, dict(e.details)) != (
            lm.public_key,
            lm.revoked,
            lm.details(),
        ):
            raise IntegrityError(
                f"landmarks row {lm.landmark_id!r}: differs from its latest logged enrolment "
                "(row edited)",
                reason="row_edited",
            )
    for chip in store.chips():
        e = latest.get(("chip", chip.chip_id))
        if e is None or (e.public_key, e.revoked, dict(e.details)) != (
            chip.public_key,
            chip.revoked,
            chip.details(),
        ):
            raise IntegrityError(
                f"chips row {chip.chip_id!r}: differs from its latest logged enrolment "
                "(row edited)",
                reason="row_edited",
            )
    return AuditReport(
        entries=chain.entries,
        rounds=n_rounds,
        verdicts=n_verdicts,
        enrolments=n_enrolments,
        head=chain.head,
        mesh_rounds=n_mesh_rounds,
        mesh_flags=n_mesh_flags,
    )
