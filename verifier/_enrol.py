"""Record a registry's identities in the store (enrolment history, audited)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from chiploc.store import ChipRecord, LandmarkRecord, Store

__all__ = ["record_registry"]


class _Entry(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def public_key(self) -> bytes: ...
    @property
    def revoked(self) -> bool: ...


class _LandmarkEntry(_Entry, Protocol):
    @property
    def lat(self) -> float: ...
    @property
    def lon(self) -> float: ...
    @property
    def operator(self) -> str: ...


class _ChipEntry(_Entry, Protocol):
    @property
    def region(self) -> str: ...


class RegistryTables(Protocol):
    @property
    def landmarks(self) -> Mapping[str, _LandmarkEntry]: ...
    @property
    def chips(self) -> Mapping[str, _ChipEntry]: ...
    @property
    def verifiers(self) -> Mapping[str, _Entry]: ...


def record_registry(store: Store, registry: RegistryTables, *, now_unix_ns: int) -> int:
    """Record every landmark, chip and verifier of ``registry``; return how many changed."""
    changed = 0
    for lm in registry.landmarks.values():
        record = LandmarkRecord(
            landmark_id=lm.id,
            lat=lm.lat,
            lon=lm.lon,
            operator=lm.operator,
            public_key=lm.public_key,
            revoked=lm.revoked,
        )
        changed += store.record_landmark(record, now_unix_ns=now_unix_ns)
    for chip in registry.chips.values():
        chip_record = ChipRecord(
            chip_id=chip.id,
            region_spec=chip.region,
            public_key=chip.public_key,
            revoked=chip.revoked,
        )
        changed += store.record_chip(chip_record, now_unix_ns=now_unix_ns)
    for v in registry.verifiers.values():
        changed += store.record_verifier(
            v.id, public_key=v.public_key, revoked=v.revoked, now_unix_ns=now_unix_ns
        )
    return changed
