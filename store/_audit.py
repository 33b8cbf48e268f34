"""The audit log's hash chain, as pure functions over stored entries.

Entry ``seq`` (1, 2, 3, ...) commits to everything before it::

    hash = SHA-256( AUDIT_DOMAIN
                    || seq            (8 bytes, big-endian)
                    || prev_hash      (32 bytes; 32 zero bytes for seq 1)
                    || len(kind)      (1 byte) || kind (ASCII)
                    || at_unix_ns     (8 bytes, big-endian, signed)
                    || payload        (canonical JSON, UTF-8) )

Invariants enforced by :func:`verify_chain`:

- sequence numbers start at 1 and increase by exactly one (a gap names the
  deleted entry, a repeat or a step back names the reordered one);
- every entry's ``prev_hash`` equals the previous entry's ``hash`` (an entry
  that chains after some other stored entry is named as reordered, one that
  chains after nothing stored as inserted);
- every entry's ``hash`` is recomputed from its contents (a mismatch names the
  edited entry);
- every payload is canonical JSON of an object (anything else is edited);
- an expected anchor ``(seq, hash)`` published earlier is present unchanged.

The first violation raises :class:`~chiploc.common.errors.IntegrityError` whose
message starts with ``audit entry seq=N:``; nothing returns a bare bool.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from chiploc.common.canonical import canonical_json, parse_json_strict
from chiploc.common.errors import DecodeError, IntegrityError

__all__ = [
    "AUDIT_DOMAIN",
    "AUDIT_KINDS",
    "GENESIS_HASH_HEX",
    "AuditAnchor",
    "AuditEntry",
    "ChainSummary",
    "audit_entry_hash",
    "next_audit_entry",
    "verify_chain",
]

#: Domain separator hashed first into every entry.
AUDIT_DOMAIN: Final = b"chiploc/audit-entry/v1\x00"

#: ``prev_hash`` of entry 1.
GENESIS_HASH_HEX: Final = "00" * 32

#: Kinds of entry the store writes.
AUDIT_KINDS: Final = frozenset({"round", "verdict", "enrolment", "mesh_round", "mesh_flag"})

_HEX64 = re.compile(r"[0-9a-f]{64}")
_I64_MIN = -(2**63)
_I64_MAX = 2**63 - 1


def _check_hash_hex(name: str, value: str) -> None:
    if not isinstance(value, str) or not _HEX64.fullmatch(value):
        raise ValueError(f"{name} must be 64 lowercase hex digits, got {value!r}")


def audit_entry_hash(
    *, seq: int, prev_hash_hex: str, kind: str, at_unix_ns: int, payload: bytes
) -> str:
    """The chain hash of one entry (hex). Pure; see the module docstring."""
    if not 1 <= seq <= _I64_MAX:
        raise ValueError(f"seq out of range: {seq}")
    if not _I64_MIN <= at_unix_ns <= _I64_MAX:
        raise ValueError(f"at_unix_ns out of range: {at_unix_ns}")
    _check_hash_hex("prev_hash", prev_hash_hex)
    kind_bytes = kind.encode("ascii")
    if not 1 <= len(kind_bytes) <= 255:
        raise ValueError(f"kind must be 1..255 ASCII bytes, got {kind!r}")
    h = hashlib.sha256()
    h.update(AUDIT_DOMAIN)
    h.update(seq.to_bytes(8, "big"))
    h.update(bytes.fromhex(prev_hash_hex))
    h.update(len(kind_bytes).to_bytes(1, "big"))
    h.update(kind_bytes)
    h.update(at_unix_ns.to_bytes(8, "big", signed=True))
    h.update(payload)
    return h.hexdigest()


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditEntry:
    """One audit-log entry as stored. Construction does not check the hash:
    stored entries may have been tampered with, and :func:`verify_chain` is
    what judges them."""

    seq: int
    kind: str
    at_unix_ns: int
    payload: bytes
    prev_hash_hex: str
    hash_hex: str

    def __post_init__(self) -> None:
        if not isinstance(self.seq, int) or isinstance(self.seq, bool):
            raise TypeError("seq must be an int")
        if not isinstance(self.payload, bytes):
            raise TypeError("payload must be bytes")

    def to_json_dict(self) -> dict[str, object]:
        payload: object
        try:
            payload = parse_json_strict(self.payload, what="audit payload")
        except DecodeError:
            payload = self.payload.hex()
        return {
            "seq": self.seq,
            "kind": self.kind,
            "at_unix_ns": self.at_unix_ns,
            "payload": payload,
            "prev_hash": self.prev_hash_hex,
            "hash": self.hash_hex,
        }


def next_audit_entry(
    head: AuditEntry | None, *, kind: str, at_unix_ns: int, payload: dict[str, object]
) -> AuditEntry:
    """The entry that follows ``head`` (``None`` = empty log) with ``payload``."""
    if kind not in AUDIT_KINDS:
        raise ValueError(f"unknown audit kind {kind!r}")
    seq = 1 if head is None else head.seq + 1
    prev = GENESIS_HASH_HEX if head is None else head.hash_hex
    body = canonical_json(payload)
    return AuditEntry(
        seq=seq,
        kind=kind,
        at_unix_ns=at_unix_ns,
        payload=body,
        prev_hash_hex=prev,
        hash_hex=audit_entry_hash(
            seq=seq, prev_hash_hex=prev, kind=kind, at_unix_ns=at_unix_ns, payload=body
        ),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditAnchor:
    """A published ``(seq, hash)`` of the log, written ``SEQ:HASH``."""

    seq: int
    hash_hex: str

    def __post_init__(self) -> None:
        if self.seq < 1:
            raise ValueError("anchor seq must be >= 1")
        _check_hash_hex("anchor hash", self.hash_hex)

    @classmethod
    def parse(cls, text: str) -> AuditAnchor:
        seq_text, sep, hash_text = text.strip().partition(":")
        if not sep or not seq_text.isdigit():
            raise ValueError(f"anchor must look like SEQ:HASH, got {text!r}")
        return cls(seq=int(seq_text), hash_hex=hash_text.lower())

    def __str__(self) -> str:
        return f"{self.seq}:{self.hash_hex}"


def _recompute(e: AuditEntry, seq: int) -> str | None:
    try:
        return audit_entry_hash(
            seq=seq,
            prev_hash_hex=e.prev_hash_hex,
            kind=e.kind,
            at_unix_ns=e.at_unix_ns,
            payload=e.payload,
        )
    except (ValueError, TypeError, OverflowError, UnicodeError):
        return None


def _diagnose(e: AuditEntry, seq_of_hash: dict[str, int]) -> tuple[str, str]:
    """Why ``e`` does not hash to its stored hash: moved, or edited."""
    pred = seq_of_hash.get(e.prev_hash_hex)
    if pred is not None and pred >= e.seq:
        return f"it chains after the entry now at seq={pred} (reordered)", "audit_reordered"
    candidates = [] if pred is None else [pred + 1]
    candidates += [e.seq + d for d in (1, -1, 2, -2, 3, -3)]
    for seq in candidates:
        if seq >= 1 and seq != e.seq and _recompute(e, seq) == e.hash_hex:
            if seq < e.seq:
                return (
                    f"it was written as seq={seq}: entries were inserted before it "
                    "(or it was moved)",
                    "audit_inserted",
                )
            return (
                f"it was written as seq={seq}: entries before it were deleted and the log "
                "renumbered",
                "audit_deleted",
            )
    return "contents do not match its hash (edited)", "audit_edited"


@dataclass(frozen=True, slots=True, kw_only=True)
class ChainSummary:
    """An intact chain: how many entries, per kind, and its head."""

    entries: int
    kinds: tuple[tuple[str, int], ...]
    head: AuditAnchor | None


def verify_chain(
    entries: Iterable[AuditEntry], *, anchors: Iterable[AuditAnchor] = ()
) -> ChainSummary:
    """Check the whole chain in order of storage; raise on the first violation."""
    listed = list(entries)
    wanted = {a.seq: a for a in anchors}
    # Where each stored hash sits, to tell a reordered entry from an inserted one.
    seq_of_hash: dict[str, int] = {}
    for e in listed:
        seq_of_hash.setdefault(e.hash_hex, e.seq)
    counts: dict[str, int] = {}
    prev: AuditEntry | None = None
    for e in listed:
        expected_seq = 1 if prev is None else prev.seq + 1
        expected_prev = GENESIS_HASH_HEX if prev is None else prev.hash_hex
        if e.seq > expected_seq:
            gap = (
                f"seq={expected_seq}"
                if e.seq == expected_seq + 1
                else f"seq={expected_seq}..{e.seq - 1}"
            )
            raise IntegrityError(
                f"audit entry seq={e.seq}: entry {gap} is missing (deleted); "
                f"the log jumps from seq={expected_seq - 1} to seq={e.seq}",
                reason="audit_deleted",
            )
        if e.seq < expected_seq:
            raise IntegrityError(
                f"audit entry seq={e.seq}: appears after seq={expected_seq - 1} (reordered "
                "or duplicated)",
                reason="audit_reordered",
            )
        if _recompute(e, e.seq) != e.hash_hex:
            message, reason = _diagnose(e, seq_of_hash)
            raise IntegrityError(f"audit entry seq={e.seq} ({e.kind}): {message}", reason=reason)
        if e.prev_hash_hex != expected_prev:
            other = seq_of_hash.get(e.prev_hash_hex)
            if prev is None:
                what = "the first entry does not start from the genesis hash (replaced)"
            elif other is not None:
                what = f"it chains after seq={other}, not seq={prev.seq} (reordered)"
            else:
                what = (
                    f"it does not chain to seq={prev.seq}: seq={prev.seq} was replaced "
                    "(edited and re-hashed, or inserted)"
                )
            raise IntegrityError(f"audit entry seq={e.seq}: {what}", reason="audit_broken_link")
        if e.kind not in AUDIT_KINDS:
            raise IntegrityError(
                f"audit entry seq={e.seq}: unknown kind {e.kind!r}", reason="audit_bad_kind"
            )
        try:
            payload = parse_json_strict(e.payload, what="audit payload")
        except DecodeError:
            payload = None
        if not isinstance(payload, dict) or canonical_json(payload) != e.payload:
            raise IntegrityError(
                f"audit entry seq={e.seq}: payload is not canonical JSON (edited)",
                reason="audit_edited",
            )
        anchor = wanted.get(e.seq)
        if anchor is not None and anchor.hash_hex != e.hash_hex:
            raise IntegrityError(
                f"audit entry seq={e.seq}: hash {e.hash_hex} differs from the published "
                f"anchor {anchor.hash_hex} (history rewritten)",
                reason="audit_anchor_mismatch",
            )
        counts[e.kind] = counts.get(e.kind, 0) + 1
        prev = e
    for seq in sorted(wanted):
        if prev is None or seq > prev.seq:
            raise IntegrityError(
                f"audit entry seq={seq}: published anchor is beyond the head of the log "
                f"(seq={0 if prev is None else prev.seq}); entries were deleted",
                reason="audit_truncated",
            )
    return ChainSummary(
        entries=len(listed),
        kinds=tuple(sorted(counts.items())),
        head=None if prev is None else AuditAnchor(seq=prev.seq, hash_hex=prev.hash_hex),
    )
