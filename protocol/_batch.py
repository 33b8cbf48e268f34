"""Landmark batch signatures: one Ed25519 signature over a Merkle root of many reports.

A landmark that uploads several reports at once signs one root instead of one report each,
as Roughtime signs one root per batch of responses. This module is the sans-I/O tree and
the root check; the report codec (``_report.py``) carries a leaf's proof on the wire.

Invariants enforced here:

* The tree is a complete binary tree of depth ``d = ceil(log2 size)`` over SHA-256:
  a leaf hashes as ``H(0x00 | leaf bytes)``, an inner node as ``H(0x01 | left | right)``,
  and the positions ``size .. 2^d - 1`` are padded with ``H(0x02)``. The three prefixes
  keep a leaf, a node and a pad from ever hashing alike (an inner node cannot be passed off
  as a report, a report cannot be passed off as a subtree).
* A leaf's path is ordered: sibling ``k`` is the node beside the leaf's ancestor at height
  ``k``, and bit ``k`` of the leaf index says on which side it sits (0: the ancestor is the
  left child). So the same path proves the leaf at one index only: moved to another index it
  hashes to another root. ``index < size`` and exactly ``d`` siblings are decode checks.
* The landmark signs ``BATCH_DOMAIN | landmark_id | size u32 | root[32]`` (the statement).
  :class:`VerifiedRoots` remembers the exact bytes (landmark public key, signature,
  statement) of signatures that verified, and only those: a lookup under any other key,
  signature or statement verifies afresh, and a failed check is never stored.
* Nothing here reads a clock, a file or randomness; the cache is an object the caller owns.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from chiploc.protocol._keys import verify_signature
from chiploc.protocol._wire import SIGNATURE_BYTES, encode_id

__all__ = [
    "BATCH_DOMAIN",
    "HASH_BYTES",
    "MAX_BATCH_SIZE",
    "BatchProof",
    "VerifiedRoots",
    "batch_depth",
    "batch_statement",
    "leaf_hash",
    "merkle_tree",
    "root_from_path",
]

BATCH_DOMAIN: Final = b"chiploc/report-batch/v1\x00"
HASH_BYTES: Final = 32
#: At most 2^16 reports under one root: a path of at most 16 siblings (512 bytes).
MAX_BATCH_SIZE: Final = 1 << 16
_LEAF: Final = b"\x00"
_NODE: Final = b"\x01"
_PAD: Final = hashlib.sha256(b"\x02").digest()
_sha256 = hashlib.sha256


def batch_depth(size: int) -> int:
    """Siblings on every path of a batch of ``size`` leaves (0 for a batch of one)."""
    return (size - 1).bit_length()


def leaf_hash(leaf: bytes) -> bytes:
    return _sha256(_LEAF + leaf).digest()


def merkle_tree(leaves: Sequence[bytes]) -> tuple[bytes, list[tuple[bytes, ...]]]:
    """The root over ``leaves`` (the leaf bytes, in order) and each leaf's path."""
    size = len(leaves)
    if not 1 <= size <= MAX_BATCH_SIZE:
        raise ValueError(f"a batch has 1..{MAX_BATCH_SIZE} leaves, got {size}")
    level = [leaf_hash(leaf) for leaf in leaves]
    level += [_PAD] * ((1 << batch_depth(size)) - size)
    paths: list[list[bytes]] = [[] for _ in range(size)]
    span = 1  # leaves under each node of the current level
    while len(level) > 1:
        for i in range(size):
            paths[i].append(level[(i // span) ^ 1])
        level = [_sha256(_NODE + level[j] + level[j + 1]).digest() for j in range(0, len(level), 2)]
        span *= 2
    return level[0], [tuple(p) for p in paths]


def root_from_path(leaf: bytes, index: int, path: Sequence[bytes]) -> bytes:
    """The root that ``path`` joins ``leaf`` at ``index`` to (the verifier's side)."""
    h = _sha256(_LEAF + leaf).digest()
    for sibling in path:
        h = _sha256(_NODE + sibling + h if index & 1 else _NODE + h + sibling).digest()
        index >>= 1
    return h


def batch_statement(landmark_id: str, size: int, root: bytes) -> bytes:
    """The bytes a landmark signs for a batch: domain, its id, the batch size, the root."""
    return BATCH_DOMAIN + encode_id(landmark_id) + size.to_bytes(4, "big") + root


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchProof:
    """A report's place in its landmark's signed batch: index, size, path, root, signature."""

    index: int
    size: int
    path: tuple[bytes, ...]
    root: bytes
    signature: bytes

    def __post_init__(self) -> None:
        size, index = self.size, self.index
        if type(size) is not int or not 1 <= size <= MAX_BATCH_SIZE:
            raise ValueError(f"batch size must be in 1..{MAX_BATCH_SIZE}")
        if type(index) is not int or not 0 <= index < size:
            raise ValueError("leaf index must be below the batch size")
        if not isinstance(self.path, tuple) or len(self.path) != batch_depth(size):
            raise ValueError("a path has exactly ceil(log2 size) siblings")
        for h in (*self.path, self.root):
            if type(h) is not bytes or len(h) != HASH_BYTES:
                raise ValueError("hashes are 32 bytes")
        if type(self.signature) is not bytes or len(self.signature) != SIGNATURE_BYTES:
            raise ValueError("the root signature is 64 bytes")

    def to_bytes(self) -> bytes:
        """``index u32 | size u32 | path | root | signature`` (the report's tail)."""
        return b"".join(
            (
                self.index.to_bytes(4, "big"),
                self.size.to_bytes(4, "big"),
                *self.path,
                self.root,
                self.signature,
            )
        )


class VerifiedRoots:
    """Batch signatures that verified, keyed by their exact bytes (a bounded LRU).

    ``check`` returns only when ``signature`` is a valid Ed25519 signature of ``statement``
    under ``public_key``: from memory when these exact three byte strings verified before,
    otherwise by verifying now (and then remembering them). A failure raises
    :class:`~chiploc.common.errors.BadSignature` and is never remembered. Thread-safe.
    """

    __slots__ = ("_entries", "_lock", "hits", "max_entries", "misses")

    def __init__(self, max_entries: int = 65_536) -> None:
        if type(max_entries) is not int or max_entries < 1:
            raise ValueError("max_entries must be a positive integer")
        self.max_entries = max_entries
        self._entries: OrderedDict[bytes, None] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    @staticmethod
    def key(public_key: bytes, statement: bytes, signature: bytes) -> bytes:
        """The cache key: fixed-length key and signature first, so the join is injective."""
        if len(public_key) != 32 or len(signature) != SIGNATURE_BYTES:
            raise ValueError("a public key is 32 bytes and a signature 64")
        return public_key + signature + statement

    def check(self, public_key: bytes, statement: bytes, signature: bytes) -> None:
        key = self.key(public_key, statement, signature)
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                self.hits += 1
                return
        verify_signature(public_key, statement, signature)  # raises BadSignature
        with self._lock:
            self.misses += 1
            self._entries[key] = None
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.hits = self.misses = 0
