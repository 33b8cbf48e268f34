"""Records the store keeps, and the audit payload each one is covered by.

Invariants:

- records are frozen, keyword-only and validated on construction: ids are
  non-empty, digests are 64 lowercase hex digits, public keys are 32 bytes,
  coordinates are finite and in range, times are integers;
- a round's identity is the SHA-256 of its exact signed bytes: the store
  computes ``digest_hex`` from ``raw`` on insert, and the audit verifier
  recomputes it from the stored row (records loaded from disk are not trusted);
- ``*_audit_payload`` are pure functions of a record: the audit verifier
  recomputes them from stored rows and compares with the logged payload, so a
  row edited behind the log's back is caught.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from chiploc.common.canonical import canonical_json, sha256_hex
from chiploc.common.errors import StoreError

__all__ = [
    "MODELS",
    "ROLES",
    "VERDICTS",
    "BatchResult",
    "BatchRound",
    "BatchVerdict",
    "ChipRecord",
    "EnrolmentRecord",
    "LandmarkRecord",
    "ReportLike",
    "RoundInsert",
    "RoundRecord",
    "VerdictRecord",
    "enrolment_audit_payload",
    "prepare_round",
    "prepare_verdict",
    "round_audit_payload",
    "verdict_audit_payload",
]

#: Verdict names (``solver.Verdict`` values).
VERDICTS: Final = frozenset(
    {"COMPLIANT", "VIOLATION", "INCONCLUSIVE", "INCONSISTENT", "UNREACHABLE"}
)
#: Model names (``solver.Model`` values).
MODELS: Final = frozenset({"vacuum", "fiber", "calibrated"})
#: Roles an enrolment can have.
ROLES: Final = frozenset({"landmark", "chip", "verifier"})

_HEX64 = re.compile(r"[0-9a-f]{64}")


def _check_id(name: str, value: object) -> None:
    if not isinstance(value, str) or not value or len(value) > 256 or not value.isprintable():
        raise ValueError(f"{name} must be a non-empty printable string, got {value!r}")


def _check_digest(name: str, value: object) -> None:
    if not isinstance(value, str) or not _HEX64.fullmatch(value):
        raise ValueError(f"{name} must be 64 lowercase hex digits, got {value!r}")


def _check_int(name: str, value: object, *, minimum: int | None = None) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{name} must be an int, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")


def _check_key(value: object) -> None:
    if not isinstance(value, bytes) or len(value) != 32:
        raise ValueError("public_key must be 32 raw Ed25519 bytes")


class ReportLike(Protocol):
    """What the store needs from a verified ``protocol.MeasurementReport``."""

    @property
    def raw(self) -> bytes: ...
    @property
    def landmark_id(self) -> str: ...
    @property
    def chip_id(self) -> str: ...
    @property
    def min_rtt_ns(self) -> int | None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class LandmarkRecord:
    landmark_id: str
    lat: float
    lon: float
    operator: str
    public_key: bytes
    revoked: bool = False

    def __post_init__(self) -> None:
        _check_id("landmark_id", self.landmark_id)
        for name, v, lim in (("lat", self.lat, 90.0), ("lon", self.lon, 180.0)):
            if not isinstance(v, int | float) or not math.isfinite(v) or abs(v) > lim:
                raise ValueError(f"{name} out of range: {v!r}")
        if not isinstance(self.operator, str):
            raise ValueError("operator must be a string")
        _check_key(self.public_key)

    def details(self) -> dict[str, object]:
        return {"lat": float(self.lat), "lon": float(self.lon), "operator": self.operator}


@dataclass(frozen=True, slots=True, kw_only=True)
class ChipRecord:
    chip_id: str
    region_spec: str
    public_key: bytes
    revoked: bool = False

    def __post_init__(self) -> None:
        _check_id("chip_id", self.chip_id)
        if not isinstance(self.region_spec, str) or not self.region_spec:
            raise ValueError("region_spec must be a non-empty string")
        _check_key(self.public_key)

    def details(self) -> dict[str, object]:
        return {"region_spec": self.region_spec}


@dataclass(frozen=True, slots=True, kw_only=True)
class EnrolmentRecord:
    """One change of an identity's key, place or revocation, as first seen."""

    enrolment_id: int
    role: str
    identity_id: str
    public_key: bytes
    revoked: bool
    details: Mapping[str, object]
    recorded_at_unix_ns: int

    def __post_init__(self) -> None:
        _check_int("enrolment_id", self.enrolment_id, minimum=1)
        if self.role not in ROLES:
            raise ValueError(f"unknown role {self.role!r}")
        _check_id("identity_id", self.identity_id)
        _check_int("recorded_at_unix_ns", self.recorded_at_unix_ns)


@dataclass(frozen=True, slots=True, kw_only=True)
class RoundRecord:
    """A stored round: the exact signed report bytes plus indexed fields."""

    round_id: int
    digest_hex: str
    landmark_id: str
    chip_id: str
    min_rtt_ns: int | None
    received_at_unix_ns: int
    raw: bytes

    def __post_init__(self) -> None:
        _check_int("round_id", self.round_id, minimum=1)
        _check_digest("digest_hex", self.digest_hex)
        _check_id("landmark_id", self.landmark_id)
        _check_id("chip_id", self.chip_id)
        if self.min_rtt_ns is not None:
            _check_int("min_rtt_ns", self.min_rtt_ns, minimum=0)
        _check_int("received_at_unix_ns", self.received_at_unix_ns)
        if not isinstance(self.raw, bytes) or not self.raw:
            raise ValueError("raw must be non-empty bytes")


@dataclass(frozen=True, slots=True, kw_only=True)
class RoundInsert:
    """Result of ``Store.add_round``: the stored row, and whether it is new."""

    record: RoundRecord
    inserted: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class VerdictRecord:
    verdict_id: int
    chip_id: str
    verdict: str
    model: str
    proof: bool
    region_spec: str
    result_json: bytes
    certificate: bytes | None
    evidence: tuple[str, ...]
    issued_at_unix_ns: int
    verdict_round: str | None = None

    def __post_init__(self) -> None:
        _check_int("verdict_id", self.verdict_id, minimum=1)
        if self.verdict_round is not None:
            _check_id("verdict_round", self.verdict_round)
        _check_id("chip_id", self.chip_id)
        if self.verdict not in VERDICTS:
            raise ValueError(f"unknown verdict {self.verdict!r}")
        if self.model not in MODELS:
            raise ValueError(f"unknown model {self.model!r}")
        if not isinstance(self.proof, bool):
            raise ValueError("proof must be a bool")
        if not isinstance(self.region_spec, str):
            raise ValueError("region_spec must be a string")
        for d in self.evidence:
            _check_digest("evidence digest", d)
        _check_int("issued_at_unix_ns", self.issued_at_unix_ns)


def round_audit_payload(r: RoundRecord) -> dict[str, object]:
    """The audit payload covering round ``r`` (``raw_sha256`` recomputed from ``raw``)."""
    return {
        "round_id": r.round_id,
        "digest": r.digest_hex,
        "raw_sha256": sha256_hex(r.raw),
        "landmark_id": r.landmark_id,
        "chip_id": r.chip_id,
        "min_rtt_ns": r.min_rtt_ns,
        "received_at_unix_ns": r.received_at_unix_ns,
    }


def verdict_audit_payload(v: VerdictRecord) -> dict[str, object]:
    """The audit payload covering verdict ``v`` (``verdict_round`` only when set, so
    entries written before schema v2 still recompute)."""
    payload: dict[str, object] = {
        "verdict_id": v.verdict_id,
        "chip_id": v.chip_id,
        "verdict": v.verdict,
        "model": v.model,
        "proof": v.proof,
        "region_spec": v.region_spec,
        "result_sha256": sha256_hex(v.result_json),
        "certificate_sha256": None if v.certificate is None else sha256_hex(v.certificate),
        "evidence": sorted(v.evidence),
        "issued_at_unix_ns": v.issued_at_unix_ns,
    }
    if v.verdict_round is not None:
        payload["verdict_round"] = v.verdict_round
    return payload


def enrolment_audit_payload(e: EnrolmentRecord) -> dict[str, object]:
    """The audit payload covering enrolment ``e``."""
    return {
        "enrolment_id": e.enrolment_id,
        "role": e.role,
        "identity_id": e.identity_id,
        "public_key": e.public_key.hex(),
        "revoked": e.revoked,
        "details": dict(e.details),
        "recorded_at_unix_ns": e.recorded_at_unix_ns,
    }


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchRound:
    """A verified report to store with ``Store.add_batch``."""

    report: ReportLike
    received_at_unix_ns: int

    def __post_init__(self) -> None:
        _check_int("received_at_unix_ns", self.received_at_unix_ns)


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchVerdict:
    """A verdict (``SolveResult.to_json_dict()``, or with ``result_json`` only the row's
    columns from it: a fleet worker's summary), its evidence and certificate.

    With ``verdict_round`` set, (chip, verdict round) is the verdict's key: the
    same pair again is not a second row (a retried batch lands once).

    ``result_json``: ``canonical_json(result)`` when the caller has encoded it already
    (``verifier.encode_result``, which also gives the certificate its region digest from
    the same encoding): the store keeps these bytes instead of encoding the result again.
    They must be that encoding; :func:`prepare_verdict` checks that they name the same
    chip, verdict, model, proof and region spec as ``result`` (the row's columns).
    """

    result: Mapping[str, Any]
    evidence_digests: Sequence[str]
    certificate: bytes | None
    issued_at_unix_ns: int
    verdict_round: str | None = None
    result_json: bytes | None = None

    def __post_init__(self) -> None:
        _check_int("issued_at_unix_ns", self.issued_at_unix_ns)
        if self.verdict_round is not None:
            _check_id("verdict_round", self.verdict_round)
        if self.result_json is not None and (
            not isinstance(self.result_json, bytes) or not self.result_json.startswith(b"{")
        ):
            raise StoreError("result_json must be a JSON object's bytes", reason="bad_record")


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchResult:
    """What ``Store.add_batch`` did: rows new vs already there, audit entries appended.

    ``rounds`` and ``verdicts`` are the stored records in input order (the
    existing row where one was already there).
    """

    rounds: tuple[RoundRecord, ...] = ()
    verdicts: tuple[VerdictRecord, ...] = ()
    rounds_inserted: int = 0
    verdicts_inserted: int = 0
    audit_entries: int = 0
    rows_written: int = field(default=0)

    @property
    def rounds_existing(self) -> int:
        return len(self.rounds) - self.rounds_inserted

    @property
    def verdicts_existing(self) -> int:
        return len(self.verdicts) - self.verdicts_inserted


def prepare_round(report: ReportLike, *, received_at_unix_ns: int) -> RoundRecord:
    """The row a report becomes (``round_id`` 1 until the store assigns one).

    Raises StoreError ``bad_record`` for a report the store cannot hold.
    """
    raw = bytes(report.raw)
    try:
        return RoundRecord(
            round_id=1,
            digest_hex=sha256_hex(raw),
            landmark_id=report.landmark_id,
            chip_id=report.chip_id,
            min_rtt_ns=report.min_rtt_ns,
            received_at_unix_ns=received_at_unix_ns,
            raw=raw,
        )
    except ValueError as e:
        raise StoreError(f"round not stored: {e}", reason="bad_record") from e


#: The result's keys that are also a verdict row's columns.
_COLUMN_KEYS: Final = ("target", "verdict", "model", "proof", "region_spec")


def prepare_verdict(
    result: Mapping[str, Any],
    *,
    evidence_digests: Sequence[str],
    certificate: bytes | None,
    issued_at_unix_ns: int,
    verdict_round: str | None = None,
    result_json: bytes | None = None,
) -> VerdictRecord:
    """The row a solve result becomes (``verdict_id`` 1 until the store assigns one).

    ``result_json``: the result's canonical JSON when the caller encoded it already (kept
    as given after checking that it carries the row's columns: ``"target":<chip>`` and
    the verdict, model, proof and region spec, each as ``result`` has them).
    Raises StoreError ``bad_record`` for a malformed result.
    """
    try:
        if result_json is None:
            result_json = canonical_json(dict(result))
        else:
            for key in _COLUMN_KEYS:
                if b'"%s":%s' % (key.encode(), canonical_json(result[key])) not in result_json:
                    raise ValueError(f"result_json does not carry the result's {key}")
        return VerdictRecord(
            verdict_id=1,
            chip_id=result["target"],
            verdict=result["verdict"],
            model=result["model"],
            proof=result["proof"],
            region_spec=result["region_spec"],
            result_json=result_json,
            certificate=None if certificate is None else bytes(certificate),
            evidence=tuple(sorted(set(evidence_digests))),
            issued_at_unix_ns=issued_at_unix_ns,
            verdict_round=verdict_round,
        )
    except (KeyError, TypeError, ValueError) as e:
        raise StoreError(f"verdict not stored: bad result: {e!r}", reason="bad_record") from e
