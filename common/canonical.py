"""Canonical JSON: the one byte encoding that is hashed and signed — by the authority
(registries), by verifiers (certificates) and by the store's audit chain alike.

Invariants:

- ``canonical_json(x)`` is ``json.dumps`` with sorted keys, no whitespace,
  UTF-8 without ``\\u`` escapes for non-ASCII, and NaN / infinities refused, so
  equal values always give equal bytes.
- ``parse_json_strict`` accepts only well-formed UTF-8 JSON without duplicate
  keys or non-finite numbers, and raises :class:`~chiploc.common.errors.DecodeError`
  for anything else; it never returns a partial value.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

from chiploc.common.errors import DecodeError

__all__ = ["canonical_json", "parse_json_strict", "sha256_hex"]


def canonical_json(value: Any) -> bytes:
    """Encode ``value`` as canonical JSON bytes (sorted keys, no whitespace, UTF-8)."""
    try:
        text = json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except (TypeError, ValueError) as e:
        raise ValueError(f"value has no canonical JSON form: {e}") from e
    return text.encode("utf-8")


def sha256_hex(data: bytes) -> str:
    """Lowercase hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise DecodeError(f"duplicate JSON key {key!r}", reason="duplicate_key")
        out[key] = value
    return out


def _no_constants(name: str) -> Any:
    raise DecodeError(f"non-finite number {name} in JSON", reason="non_finite")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # e.g. 1e999 overflows to infinity
        raise DecodeError(f"number {text[:40]} overflows a float", reason="non_finite")
    return value


def parse_json_strict(data: bytes, *, what: str = "JSON") -> Any:
    """Parse ``data`` as UTF-8 JSON, refusing duplicate keys and NaN / Infinity."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DecodeError(f"{what} is not valid UTF-8: {e}", reason="bad_utf8") from e
    try:
        return json.loads(
            text,
            object_pairs_hook=_no_duplicates,
            parse_constant=_no_constants,
            parse_float=_finite_float,
        )
    except json.JSONDecodeError as e:
        raise DecodeError(f"{what} is not valid JSON: {e}", reason="bad_json") from e
    except RecursionError as e:
        raise DecodeError(f"{what} is nested too deeply", reason="bad_json") from e
