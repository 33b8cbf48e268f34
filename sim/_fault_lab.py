"""The fault lab's shared fixtures: :class:`FaultOutcome` and the checks that
produce it, deterministic identities and registry, a landmark config on 127.0.0.1.

Shared by the fault scenarios (``_fault_rounds``, ``_fault_kills``, run by
:func:`run_faults`), the fuzzing (``_fuzz_lab``) and the load (``_load``), so the suite
(``tests/adversarial``) and the benchmark (``benchmarks/robustness.py``) run exactly
the same code.

Invariants:

* Every outcome is computed from what the system did (counters, stored rows,
  bytes served, verified reports), never set by hand; a scenario that does
  not hold comes out ``survived=False`` with the failed check in its evidence.
* Keys are deterministic (SHA-256 of a label, the role and the identity): the
  same label gives the same registry in this process and in a child process.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from chiploc.landmarks import LandmarkConfig
from chiploc.protocol import (
    ChipEntry,
    LandmarkEntry,
    PrivateKey,
    Registry,
    Role,
    VerifierEntry,
    generate_private_key,
)

from ._checks import Checks

__all__ = [
    "_LOOPBACK",
    "_NS_PER_S",
    "FaultOutcome",
    "_Checks",
    "_Identities",
    "_config",
    "_identities",
    "_key",
    "_prepare",
]

_LOOPBACK: Final = "127.0.0.1"
_NS_PER_S: Final = 1_000_000_000

# ------------------------------------------------------------------ outcomes


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultOutcome:
    """What one fault scenario did. ``injected``: fault events (datagrams dropped,
    duplicated or reordered, processes killed, restarts, clock jumps);
    ``records_lost``: acknowledged records missing afterwards (must be 0)."""

    name: str
    survived: bool
    injected: int
    records_lost: int
    evidence: str
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.name or self.injected < 0 or self.records_lost < 0:
            raise ValueError("a fault outcome needs a name and non-negative counts")

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "survived": self.survived,
            "injected": self.injected,
            "records_lost": self.records_lost,
            "evidence": self.evidence,
            "details": dict(self.details),
        }


@dataclass(slots=True)
class _Checks(Checks):
    def outcome(
        self, name: str, *, injected: int, records_lost: int = 0, **details: Any
    ) -> FaultOutcome:
        return FaultOutcome(
            name=name,
            survived=self.ok and records_lost == 0,
            injected=injected,
            records_lost=records_lost,
            evidence=self.evidence(),
            details=details,
        )


# ------------------------------------------------------------------ identities


def _key(role: Role, identity: str, label: str) -> PrivateKey:
    seed = hashlib.sha256(f"chiploc-faults\x1f{label}\x1f{role.value}\x1f{identity}".encode())
    return generate_private_key(role, identity, seed=seed.digest())


@dataclass(frozen=True, slots=True)
class _Identities:
    authority: PrivateKey
    landmark: PrivateKey
    chips: tuple[PrivateKey, ...]
    verifier: PrivateKey
    registry: Registry


def _identities(label: str, *, chips: int = 1) -> _Identities:
    authority = _key(Role.AUTHORITY, "authority", label)
    landmark = _key(Role.LANDMARK, "lm-fra", label)
    verifier = _key(Role.VERIFIER, "verifier-1", label)
    chip_keys = tuple(_key(Role.CHIP, f"chip-{i:05d}", label) for i in range(chips))
    registry = Registry(
        authority_public_key=authority.public_key.key_bytes,
        landmarks={
            landmark.id: LandmarkEntry(
                id=landmark.id,
                lat=50.11,
                lon=8.68,
                public_key=landmark.public_key.key_bytes,
                operator="fault lab",
            )
        },
        chips={
            k.id: ChipEntry(id=k.id, public_key=k.public_key.key_bytes, region="country:DEU")
            for k in chip_keys
        },
        verifiers={
            verifier.id: VerifierEntry(id=verifier.id, public_key=verifier.public_key.key_bytes)
        },
        serial=1,
    )
    return _Identities(authority, landmark, chip_keys, verifier, registry)


def _config(directory: Path, key: PrivateKey, **overrides: Any) -> LandmarkConfig:
    values: dict[str, Any] = {
        "id": key.id,
        "key_path": directory / f"{key.id}.key",  # not read: the key is passed
        "registry_path": directory / "registry.json",  # not read either
        "db_path": directory / f"{key.id}.db",
        "udp_host": _LOOPBACK,
        "http_host": _LOOPBACK,
        "probes_per_round": 10,
        "probe_timeout_ms": 100,
        "hello_timeout_ms": 500,
    }
    values.update(overrides)
    return LandmarkConfig(**values)


def _prepare(directory: str | os.PathLike[str]) -> Path:
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    return root
