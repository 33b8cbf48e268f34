"""The landmark mesh in the store: signed mesh rounds and the suspect/clear log.

Invariants:

- a mesh round is a verified PEER_REPORT (``protocol.verify_report(..., target_role=
  Role.LANDMARK)``), kept verbatim and identified by the SHA-256 of its bytes, like a chip
  round; rows are immutable and each is covered by one ``mesh_round`` audit entry;
- the mesh's minimum RTTs are derived from the stored rounds (never stored alone), so nothing
  measured is lost and a minimum can always be re-proven from signed bytes;
- the flag log is append-only: ``suspect`` (the verifier's mesh check named the landmark)
  and ``clear`` (an operator vouched for it, with a name and a reason) rows, each covered by
  one ``mesh_flag`` audit entry; a landmark is suspect while its latest row is ``suspect``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final, Protocol

from chiploc.common.canonical import sha256_hex
from chiploc.store._records import _check_digest, _check_id, _check_int

__all__ = [
    "MESH_ACTIONS",
    "MeshFlagRecord",
    "MeshMinimum",
    "MeshReportLike",
    "MeshRoundRecord",
    "MeshViewsMixin",
    "mesh_flag_audit_payload",
    "mesh_round_audit_payload",
]

#: What a flag row says about a landmark.
MESH_ACTIONS: Final = frozenset({"suspect", "clear"})


class MeshReportLike(Protocol):
    """What the store needs from a verified mesh ``protocol.MeasurementReport``."""

    @property
    def raw(self) -> bytes: ...
    @property
    def landmark_id(self) -> str: ...
    @property
    def chip_id(self) -> str: ...  # the peer landmark
    @property
    def min_rtt_ns(self) -> int | None: ...
    @property
    def overhead_lower_bound_ns(self) -> int: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class MeshRoundRecord:
    """A stored mesh round: ``landmark_id`` measured ``peer_id`` (the signed bytes, verbatim)."""

    mesh_round_id: int
    digest_hex: str
    landmark_id: str
    peer_id: str
    min_rtt_ns: int | None
    overhead_ns: int
    received_at_unix_ns: int
    raw: bytes = field(repr=False)

    def __post_init__(self) -> None:
        _check_int("mesh_round_id", self.mesh_round_id, minimum=1)
        _check_digest("digest_hex", self.digest_hex)
        _check_id("landmark_id", self.landmark_id)
        _check_id("peer_id", self.peer_id)
        if self.landmark_id == self.peer_id:
            raise ValueError("a landmark does not measure itself")
        if self.min_rtt_ns is not None:
            _check_int("min_rtt_ns", self.min_rtt_ns, minimum=0)
        _check_int("overhead_ns", self.overhead_ns, minimum=0)
        _check_int("received_at_unix_ns", self.received_at_unix_ns)
        if not isinstance(self.raw, bytes) or not self.raw:
            raise ValueError("raw must be non-empty bytes")


@dataclass(frozen=True, slots=True, kw_only=True)
class MeshMinimum:
    """The smallest ``min_rtt_ns - overhead_ns`` of one direction (landmark -> peer)."""

    landmark_id: str
    peer_id: str
    min_rtt_ns: int
    overhead_ns: int
    rounds: int  # answered rounds it is the minimum of
    digest_hex: str  # the round that holds it


@dataclass(frozen=True, slots=True, kw_only=True)
class MeshFlagRecord:
    """One entry of the flag log."""

    flag_id: int
    landmark_id: str
    action: str
    details: Mapping[str, object]
    recorded_at_unix_ns: int

    def __post_init__(self) -> None:
        _check_int("flag_id", self.flag_id, minimum=1)
        _check_id("landmark_id", self.landmark_id)
        if self.action not in MESH_ACTIONS:
            raise ValueError(f"unknown mesh action {self.action!r}")
        _check_int("recorded_at_unix_ns", self.recorded_at_unix_ns)
        object.__setattr__(self, "details", MappingProxyType(dict(self.details)))


def mesh_round_audit_payload(r: MeshRoundRecord) -> dict[str, object]:
    """The audit payload covering mesh round ``r`` (``raw_sha256`` recomputed from ``raw``)."""
    return {
        "mesh_round_id": r.mesh_round_id,
        "digest": r.digest_hex,
        "raw_sha256": sha256_hex(r.raw),
        "landmark_id": r.landmark_id,
        "peer_id": r.peer_id,
        "min_rtt_ns": r.min_rtt_ns,
        "overhead_ns": r.overhead_ns,
        "received_at_unix_ns": r.received_at_unix_ns,
    }


def mesh_flag_audit_payload(f: MeshFlagRecord) -> dict[str, object]:
    """The audit payload covering flag-log entry ``f``."""
    return {
        "flag_id": f.flag_id,
        "landmark_id": f.landmark_id,
        "action": f.action,
        "details": dict(f.details),
        "recorded_at_unix_ns": f.recorded_at_unix_ns,
    }


class MeshViewsMixin:
    """What both backends derive from the flag log (``mesh_flags()``, oldest first)."""

    def mesh_flags(self) -> Iterator[MeshFlagRecord]:
        raise NotImplementedError  # pragma: no cover - every backend overrides it

    def mesh_suspects(self) -> dict[str, MeshFlagRecord]:
        """Landmark id -> its latest flag-log entry, for landmarks whose latest is ``suspect``."""
        latest: dict[str, MeshFlagRecord] = {}
        for flag in self.mesh_flags():
            latest[flag.landmark_id] = flag
        return {k: v for k, v in sorted(latest.items()) if v.action == "suspect"}

    def mesh_cleared_at(self) -> dict[str, int]:
        """Landmark id -> when an operator last cleared it (``recorded_at_unix_ns``)."""
        out: dict[str, int] = {}
        for flag in self.mesh_flags():
            if flag.action == "clear":
                out[flag.landmark_id] = flag.recorded_at_unix_ns
        return out
