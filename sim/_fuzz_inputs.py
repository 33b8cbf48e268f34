"""Seeded hostile inputs for the fuzzing: :func:`mutate` (byte-level mutations of a
valid input), :func:`random_json` (random JSON values of the wrong shape) and
:func:`http_requests` (hostile requests to a landmark's HTTP API).

Invariants:

* Everything is drawn from the ``random.Random`` passed in: the same seed gives
  the same inputs.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from typing import Any, Final

__all__ = ["http_requests", "mutate", "random_json"]

_TOKENS: Final = (
    b"\x00",
    b"\xff",
    b'"',
    b",",
    b"\n",
    b"\r",
    b"-",
    b"NaN",
    b"Infinity",
    b"1e999",
    b"-0",
    b"99999999999999999999999999",
    b"null",
    b"true",
    b"[]",
    b"{}",
    b'{"a":',
    b"\\u0000",
    b"\xed\xa0\x80",
)


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One to four seeded mutations of ``data`` (bit flips, byte sets, inserts, deletes,
    truncation, chunk copies, interesting tokens, deep nesting, a very long field)."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(11)
        n = len(out)
        pos = rng.randrange(n + 1)
        if op == 0 and n:
            i = rng.randrange(n)
            out[i] ^= 1 << rng.randrange(8)
        elif op == 1 and n:
            out[rng.randrange(n)] = rng.randrange(256)
        elif op == 2:
            out[pos:pos] = rng.randbytes(rng.randint(1, 16))
        elif op == 3 and n:
            end = min(n, pos + rng.randint(1, 32))
            del out[pos:end]
        elif op == 4:
            del out[pos:]
        elif op == 5 and n:
            start = rng.randrange(n)
            chunk = out[start : start + rng.randint(1, 64)]
            out[pos:pos] = chunk
        elif op in (6, 7):
            out[pos:pos] = rng.choice(_TOKENS)
        elif op == 8:
            depth = rng.choice((2, 50, 5_000))
            out[pos:pos] = b"[" * depth + b"]" * depth
        elif op == 9 and rng.random() < 0.2:
            out[pos:pos] = b"a" * 140_000  # over csv's field limit
        elif op == 10 and rng.random() < 0.1:
            out = bytearray(rng.randbytes(rng.randint(0, 600)))
    return bytes(out)


def random_json(rng: random.Random, depth: int = 3) -> Any:
    """A seeded random JSON value (wrong types, huge numbers, odd strings)."""
    kind = rng.randrange(9 if depth > 0 else 6)
    if kind == 0:
        return None
    if kind == 1:
        return rng.random() < 0.5
    if kind == 2:
        return rng.choice((0, -1, 1, 2**31, 2**63, 2**64, 10**30, -(10**30)))
    if kind == 3:
        return rng.choice((0.5, -1e308, 1e308, 1e-320))
    if kind == 4:
        return rng.choice(
            ("", "chip-00000", "127.0.0.1:1", "[::1]:99999", "host:", ":80", "a" * 300, "\x00",
             "127.0.0.1:-1", "ü:1", "1.2.3.4:0x50", "targets", "since")
        )  # fmt: skip
    if kind == 5:
        return "".join(chr(rng.randrange(0x20, 0x3000)) for _ in range(rng.randrange(12)))
    if kind == 6:
        return [random_json(rng, depth - 1) for _ in range(rng.randrange(4))]
    keys = ("chip_id", "address", "probes", "targets", "x")
    obj = {rng.choice(keys): random_json(rng, depth - 1) for _ in range(rng.randrange(5))}
    if kind == 8 and rng.random() < 0.5:
        obj["targets"] = [random_json(rng, depth - 1) for _ in range(rng.randrange(5))]
    return obj


def http_requests(rng: random.Random, count: int) -> Iterator[tuple[str, str, bytes]]:
    """Seeded hostile requests: random JSON bodies, mutated valid bodies, bad cursors."""
    valid = json.dumps({"chip_id": "chip-unknown", "address": "127.0.0.1:9", "probes": 3}).encode()
    cursors = ("-1", "x", "", "1e3", "99999999999999999999999", str(2**63), "0x10", " 1", "١٢")
    for _ in range(count):
        kind = rng.randrange(3)
        if kind == 0:
            body = json.dumps(random_json(rng)).encode()
            yield "POST", "/v1/rounds", body
        elif kind == 1:
            yield "POST", "/v1/rounds", mutate(valid, rng)
        else:
            since = rng.choice(cursors) if rng.random() < 0.7 else str(rng.randrange(-5, 10**6))
            limit = rng.choice(("1", "0", "1001", "-3", "abc", "100"))
            yield "GET", f"/v1/reports?since={since}&limit={limit}", b""
