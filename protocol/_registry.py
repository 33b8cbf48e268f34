"""The enrolment registry: who may take part, signed by the authority.

Invariants enforced here:

* A registry is only ever loaded together with a pinned authority public key;
  the Ed25519 signature over ``b"chiploc/registry/v1\\x00" + canonical(body)``
  must verify before any entry is read. Failure is a
  :class:`~chiploc.common.errors.RegistryError` that names the source file.
* ``canonical(x)`` is ``json.dumps(x, sort_keys=True, separators=(",", ":"),
  ensure_ascii=False, allow_nan=False).encode("utf-8")``; entries are listed in
  id order, so the same registry always has the same bytes.
* Ids are unique within each section and valid (:func:`validate_id`); public
  keys are 32 bytes; latitudes in [-90, 90], longitudes in [-180, 180], finite.
* Lookups (:meth:`Registry.landmark`, ``.chip``, ``.verifier``) raise
  :class:`~chiploc.common.errors.UnknownIdentity` or
  :class:`~chiploc.common.errors.RevokedIdentity`; they never return a revoked entry.

File format (UTF-8 JSON)::

    {"format": "chiploc-registry/1",
     "registry": {"serial": 3,
                  "landmarks": [{"id", "lat", "lon", "public_key" (hex), "operator", "revoked"}],
                  "chips": [{"id", "public_key", "region", "revoked"}],
                  "verifiers": [{"id", "public_key", "revoked"}]},
     "signature": "<128 hex chars>"}
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

from chiploc.common.canonical import canonical_json
from chiploc.common.errors import (
    BadSignature,
    RegistryError,
    RegistryNotTrusted,
    RevokedIdentity,
    UnknownIdentity,
)
from chiploc.protocol._keys import PrivateKey, Role, validate_id, verify_signature

__all__ = [
    "REGISTRY_DOMAIN",
    "REGISTRY_FORMAT",
    "ChipEntry",
    "LandmarkEntry",
    "Registry",
    "VerifierEntry",
    "canonical_json",
    "index_by_id",
    "load_registry",
    "load_registry_pinned",
    "reload_registry",
    "resolve_authority_key",
]

REGISTRY_FORMAT = "chiploc-registry/1"
REGISTRY_DOMAIN = b"chiploc/registry/v1\x00"
_MAX_REGISTRY_BYTES = 64 * 1024 * 1024


def _check_key(key: bytes) -> None:
    if not isinstance(key, bytes) or len(key) != 32:
        raise ValueError("public_key must be 32 bytes")


def _check_bool(value: object, name: str) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be a boolean")


def _check_text(value: object, name: str, *, max_len: int = 256) -> None:
    if not isinstance(value, str) or len(value) > max_len:
        raise ValueError(f"{name} must be a string of at most {max_len} characters")


@dataclass(frozen=True, slots=True, kw_only=True)
class LandmarkEntry:
    id: str
    lat: float
    lon: float
    public_key: bytes
    operator: str = ""
    revoked: bool = False

    def __post_init__(self) -> None:
        validate_id(self.id, what="landmark id")
        for name, value, bound in (("lat", self.lat, 90.0), ("lon", self.lon, 180.0)):
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
                or abs(value) > bound
            ):
                raise ValueError(f"landmark {self.id}: {name} must be finite within ±{bound}")
        _check_key(self.public_key)
        _check_text(self.operator, "operator")
        _check_bool(self.revoked, "revoked")

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "lat": float(self.lat),
            "lon": float(self.lon),
            "public_key": self.public_key.hex(),
            "operator": self.operator,
            "revoked": self.revoked,
        }

    @classmethod
    def from_json_dict(cls, obj: Mapping[str, Any]) -> LandmarkEntry:
        _exact_keys(obj, {"id", "lat", "lon", "public_key", "operator", "revoked"})
        return cls(
            id=obj["id"],
            lat=obj["lat"],
            lon=obj["lon"],
            public_key=_unhex(obj["public_key"]),
            operator=obj["operator"],
            revoked=obj["revoked"],
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ChipEntry:
    id: str
    public_key: bytes
    region: str
    revoked: bool = False

    def __post_init__(self) -> None:
        validate_id(self.id, what="chip id")
        _check_key(self.public_key)
        _check_text(self.region, "region", max_len=4096)
        _check_bool(self.revoked, "revoked")

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "public_key": self.public_key.hex(),
            "region": self.region,
            "revoked": self.revoked,
        }

    @classmethod
    def from_json_dict(cls, obj: Mapping[str, Any]) -> ChipEntry:
        _exact_keys(obj, {"id", "public_key", "region", "revoked"})
        return cls(
            id=obj["id"],
            public_key=_unhex(obj["public_key"]),
            region=obj["region"],
            revoked=obj["revoked"],
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class VerifierEntry:
    id: str
    public_key: bytes
    revoked: bool = False

    def __post_init__(self) -> None:
        validate_id(self.id, what="verifier id")
        _check_key(self.public_key)
        _check_bool(self.revoked, "revoked")

    def to_json_dict(self) -> dict[str, Any]:
        return {"id": self.id, "public_key": self.public_key.hex(), "revoked": self.revoked}

    @classmethod
    def from_json_dict(cls, obj: Mapping[str, Any]) -> VerifierEntry:
        _exact_keys(obj, {"id", "public_key", "revoked"})
        return cls(id=obj["id"], public_key=_unhex(obj["public_key"]), revoked=obj["revoked"])


def _exact_keys(obj: Any, keys: set[str]) -> None:
    if not isinstance(obj, Mapping):
        raise ValueError("entry must be a JSON object")
    if set(obj) != keys:
        raise ValueError(f"entry keys must be exactly {sorted(keys)}, got {sorted(obj)}")


def _unhex(value: Any) -> bytes:
    if not isinstance(value, str):
        raise ValueError("expected a hex string")
    return bytes.fromhex(value)


_E = TypeVar("_E", LandmarkEntry, ChipEntry, VerifierEntry)


def _freeze(entries: Any, kind: type[_E]) -> Mapping[str, _E]:
    if not isinstance(entries, Mapping):
        raise ValueError(f"{kind.__name__} table must be a mapping of id to entry")
    for key, entry in entries.items():
        if not isinstance(entry, kind):
            raise ValueError(f"expected {kind.__name__}, got {type(entry).__name__}")
        if key != entry.id:
            raise ValueError(f"{kind.__name__} keyed {key!r} has id {entry.id!r}")
    return MappingProxyType(dict(sorted(entries.items())))


def index_by_id(entries: Iterable[_E]) -> dict[str, _E]:
    """``{entry.id: entry}``; a duplicate id is a ValueError (never a silent overwrite)."""
    out: dict[str, _E] = {}
    for entry in entries:
        if entry.id in out:
            raise ValueError(f"duplicate {type(entry).__name__} id {entry.id!r}")
        out[entry.id] = entry
    return out


def _lookup(table: Mapping[str, _E], identity: str, what: str) -> _E:
    entry = table.get(identity)
    if entry is None:
        raise UnknownIdentity(f"{what} {identity!r} is not enrolled in the registry")
    if entry.revoked:
        raise RevokedIdentity(f"{what} {identity!r} is revoked")
    return entry


@dataclass(frozen=True, slots=True, kw_only=True)
class Registry:
    """Enrolled landmarks, chips and verifiers, pinned to one authority key.

    ``landmarks``/``chips``/``verifiers`` are mappings of id to entry (build them from a list
    with :func:`index_by_id`), stored read-only and sorted by id.
    """

    authority_public_key: bytes
    landmarks: Mapping[str, LandmarkEntry] = field(default_factory=dict)
    chips: Mapping[str, ChipEntry] = field(default_factory=dict)
    verifiers: Mapping[str, VerifierEntry] = field(default_factory=dict)
    serial: int = 0

    def __post_init__(self) -> None:
        _check_key(self.authority_public_key)
        object.__setattr__(self, "landmarks", _freeze(self.landmarks, LandmarkEntry))
        object.__setattr__(self, "chips", _freeze(self.chips, ChipEntry))
        object.__setattr__(self, "verifiers", _freeze(self.verifiers, VerifierEntry))
        if isinstance(self.serial, bool) or not isinstance(self.serial, int) or self.serial < 0:
            raise ValueError("serial must be a non-negative integer")

    # -- lookups ---------------------------------------------------------------
    def landmark(self, identity: str) -> LandmarkEntry:
        return _lookup(self.landmarks, identity, "landmark")

    def chip(self, identity: str) -> ChipEntry:
        return _lookup(self.chips, identity, "chip")

    def verifier(self, identity: str) -> VerifierEntry:
        return _lookup(self.verifiers, identity, "verifier")

    # -- building --------------------------------------------------------------
    def with_entry(self, entry: LandmarkEntry | ChipEntry | VerifierEntry) -> Registry:
        """A copy with ``entry`` added (serial + 1); an existing id is an error."""
        table = self._table_for(entry)
        if entry.id in table:
            raise RegistryError(f"{type(entry).__name__} {entry.id!r} is already enrolled")
        return self._replace_table(entry, {**table, entry.id: entry})

    def with_revoked(self, identity: str, *, kind: Role | None = None) -> Registry:
        """A copy with ``identity`` revoked (in ``kind``'s section, or its only section)."""
        tables: list[tuple[Role, Mapping[str, Any]]] = [
            (Role.LANDMARK, self.landmarks),
            (Role.CHIP, self.chips),
            (Role.VERIFIER, self.verifiers),
        ]
        matches = [(r, t) for r, t in tables if identity in t and (kind is None or r is kind)]
        if not matches:
            raise RegistryError(f"{identity!r} is not enrolled", reason="unknown_identity")
        if len(matches) > 1:
            raise RegistryError(f"{identity!r} is enrolled in several roles; say which")
        _, table = matches[0]
        old = table[identity]
        new = type(old)(
            **{**{f: getattr(old, f) for f in old.__dataclass_fields__}, "revoked": True}
        )
        return self._replace_table(new, {**table, identity: new})

    def _table_for(self, entry: object) -> Mapping[str, Any]:
        if isinstance(entry, LandmarkEntry):
            return self.landmarks
        if isinstance(entry, ChipEntry):
            return self.chips
        return self.verifiers

    def _replace_table(self, entry: object, table: dict[str, Any]) -> Registry:
        landmarks, chips, verifiers = self.landmarks, self.chips, self.verifiers
        if isinstance(entry, LandmarkEntry):
            landmarks = table
        elif isinstance(entry, ChipEntry):
            chips = table
        else:
            verifiers = table
        return Registry(
            authority_public_key=self.authority_public_key,
            landmarks=landmarks,
            chips=chips,
            verifiers=verifiers,
            serial=self.serial + 1,
        )

    # -- serialisation -----------------------------------------------------------
    def body_json_dict(self) -> dict[str, Any]:
        return {
            "serial": self.serial,
            "landmarks": [e.to_json_dict() for e in self.landmarks.values()],
            "chips": [e.to_json_dict() for e in self.chips.values()],
            "verifiers": [e.to_json_dict() for e in self.verifiers.values()],
        }

    def to_signed_json(self, authority: PrivateKey) -> bytes:
        """The registry file bytes, signed by ``authority`` (which must match the pinned key)."""
        if authority.role is not Role.AUTHORITY:
            raise RegistryError(
                f"key {authority.id!r} is a {authority.role.value} key, not authority"
            )
        if authority.public_key.key_bytes != self.authority_public_key:
            raise RegistryError("signing key does not match the registry's authority key")
        body = self.body_json_dict()
        signature = authority.sign(REGISTRY_DOMAIN + canonical_json(body))
        doc = {"format": REGISTRY_FORMAT, "registry": body, "signature": signature.hex()}
        return json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=False).encode() + b"\n"

    @classmethod
    def from_signed_json(
        cls, data: bytes, *, authority_public_key: bytes, source: str = "<registry>"
    ) -> Registry:
        """Verify the authority signature, then parse.

        Any failure is a RegistryError naming ``source``."""
        try:
            doc = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
            raise RegistryError(f"{source}: registry is not JSON: {e}", reason="malformed") from e
        if not isinstance(doc, dict) or doc.get("format") != REGISTRY_FORMAT:
            raise RegistryError(f"{source}: not a {REGISTRY_FORMAT} document", reason="malformed")
        if set(doc) != {"format", "registry", "signature"}:
            raise RegistryError(f"{source}: unexpected top-level keys", reason="malformed")
        body = doc["registry"]
        try:
            signature = bytes.fromhex(doc["signature"])
            message = REGISTRY_DOMAIN + canonical_json(body)
        except (TypeError, ValueError) as e:
            raise RegistryError(
                f"{source}: malformed signature or body: {e}", reason="malformed"
            ) from e
        try:
            verify_signature(authority_public_key, message, signature)
        except BadSignature as e:
            raise RegistryNotTrusted(
                f"{source}: authority signature does not verify (tampered registry,"
                " or wrong authority key)",
                reason="bad_signature",
            ) from e
        try:
            if not isinstance(body, dict) or set(body) != {
                "serial",
                "landmarks",
                "chips",
                "verifiers",
            }:
                raise ValueError(
                    "registry body must have exactly serial, landmarks, chips, verifiers"
                )
            for section in ("landmarks", "chips", "verifiers"):
                if not isinstance(body[section], list):
                    raise ValueError(f"{section} must be a list")
            return cls(
                authority_public_key=authority_public_key,
                landmarks=index_by_id(LandmarkEntry.from_json_dict(e) for e in body["landmarks"]),
                chips=index_by_id(ChipEntry.from_json_dict(e) for e in body["chips"]),
                verifiers=index_by_id(VerifierEntry.from_json_dict(e) for e in body["verifiers"]),
                serial=body["serial"],
            )
        except (KeyError, TypeError, ValueError) as e:
            raise RegistryError(f"{source}: malformed registry: {e}", reason="malformed") from e


def load_registry(path: str | os.PathLike[str], *, authority_public_key: bytes) -> Registry:
    """Read and verify a registry file against the pinned authority key."""
    p = Path(path)
    try:
        with p.open("rb") as f:
            data = f.read(_MAX_REGISTRY_BYTES + 1)
    except FileNotFoundError as e:
        raise RegistryError(f"{p}: no such registry file", reason="missing_registry") from e
    except OSError as e:
        raise RegistryError(f"{p}: cannot read registry: {e.strerror}") from e
    if len(data) > _MAX_REGISTRY_BYTES:
        raise RegistryError(
            f"{p}: registry larger than {_MAX_REGISTRY_BYTES} bytes", reason="oversized"
        )
    return Registry.from_signed_json(data, authority_public_key=authority_public_key, source=str(p))


def resolve_authority_key(
    registry_path: str | os.PathLike[str], authority_key_path: str | os.PathLike[str] | None = None
) -> bytes:
    """The pinned authority public key: ``authority_key_path``, else ``authority.pub`` beside
    the registry. Neither present is a RegistryError (never a silent trust-on-first-use)."""
    from chiploc.protocol._keys import load_public_key

    if authority_key_path is None:
        candidate = Path(registry_path).parent / "authority.pub"
        if not candidate.exists():
            raise RegistryError(
                f"{registry_path}: no authority key pinned; pass --authority-key FILE or place"
                f" authority.pub beside the registry",
                reason="no_authority_key",
            )
        authority_key_path = candidate
    return load_public_key(authority_key_path, role=Role.AUTHORITY).key_bytes


def reload_registry(
    current: Registry,
    registry_path: str | os.PathLike[str],
    authority_key_path: str | os.PathLike[str] | None = None,
) -> Registry:
    """Load a newer registry to replace ``current`` (e.g. on SIGHUP, after a revocation).

    The new file must verify under the same pinned authority key as ``current`` and
    must not roll back: a lower serial is refused (``RegistryError``, reason
    ``rollback``), since replaying an old signed registry would un-revoke keys. The
    same serial is accepted only if the content is identical.
    """
    new = load_registry_pinned(registry_path, authority_key_path)
    where = os.fspath(registry_path)
    if new.authority_public_key != current.authority_public_key:
        raise RegistryNotTrusted(
            f"{where}: signed by a different authority key than the running registry",
            reason="authority_changed",
        )
    if new.serial < current.serial:
        raise RegistryNotTrusted(
            f"{where}: serial {new.serial} is older than the running serial {current.serial}",
            reason="rollback",
        )
    if new.serial == current.serial and new != current:
        raise RegistryNotTrusted(
            f"{where}: serial {new.serial} equals the running serial but the content differs",
            reason="rollback",
        )
    return new


def load_registry_pinned(
    registry_path: str | os.PathLike[str], authority_key_path: str | os.PathLike[str] | None = None
) -> Registry:
    """:func:`load_registry` with the key from :func:`resolve_authority_key` (CLI convenience)."""
    return load_registry(
        registry_path, authority_public_key=resolve_authority_key(registry_path, authority_key_path)
    )
