"""The pure hash chain: vectors, and hypothesis over random tampering."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chiploc.common.errors import IntegrityError
from chiploc.store import (
    GENESIS_HASH_HEX,
    AuditAnchor,
    AuditEntry,
    audit_entry_hash,
    next_audit_entry,
    verify_chain,
)


def _chain(n: int) -> list[AuditEntry]:
    out: list[AuditEntry] = []
    for i in range(n):
        kind = ("round", "verdict", "enrolment")[i % 3]
        out.append(
            next_audit_entry(
                out[-1] if out else None,
                kind=kind,
                at_unix_ns=1_000 + i,
                payload={"round_id": i + 1, "x": i},
            )
        )
    return out


def test_first_entry_vector() -> None:
    e = next_audit_entry(None, kind="round", at_unix_ns=0, payload={"a": 1})
    assert (e.seq, e.prev_hash_hex, e.payload) == (1, GENESIS_HASH_HEX, b'{"a":1}')
    import hashlib

    expected = hashlib.sha256(
        b"chiploc/audit-entry/v1\x00"
        + (1).to_bytes(8, "big")
        + bytes(32)
        + b"\x05round"
        + (0).to_bytes(8, "big")
        + b'{"a":1}'
    ).hexdigest()
    assert e.hash_hex == expected


def test_intact_chain_summary() -> None:
    chain = _chain(7)
    s = verify_chain(chain)
    assert s.entries == 7
    assert s.head == AuditAnchor(seq=7, hash_hex=chain[-1].hash_hex)
    assert dict(s.kinds) == {"round": 3, "verdict": 2, "enrolment": 2}
    assert verify_chain([]).head is None


def test_anchor_parse() -> None:
    a = AuditAnchor.parse(f"3:{'AB' * 32}")
    assert a == AuditAnchor(seq=3, hash_hex="ab" * 32)
    assert str(a) == f"3:{'ab' * 32}"
    for bad in ("3", "x:ab", f"0:{'ab' * 32}", "3:zz"):
        with pytest.raises(ValueError):
            AuditAnchor.parse(bad)


def test_non_canonical_payload_with_valid_hash_is_named() -> None:
    payload = b'{ "a": 1 }'
    h = audit_entry_hash(
        seq=1, prev_hash_hex=GENESIS_HASH_HEX, kind="round", at_unix_ns=0, payload=payload
    )
    e = AuditEntry(
        seq=1,
        kind="round",
        at_unix_ns=0,
        payload=payload,
        prev_hash_hex=GENESIS_HASH_HEX,
        hash_hex=h,
    )
    with pytest.raises(IntegrityError, match="seq=1: payload is not canonical"):
        verify_chain([e])


@given(
    n=st.integers(min_value=2, max_value=12),
    op=st.sampled_from(["edit", "delete", "swap", "duplicate", "kind", "time", "prev"]),
    where=st.integers(min_value=0, max_value=100),
)
def test_any_single_tampering_is_caught_and_names_an_entry(n: int, op: str, where: int) -> None:
    chain = _chain(n)
    i = where % (n - 1)  # never only the last entry for a delete (that needs an anchor)
    if op == "edit":
        chain[i] = dataclasses.replace(chain[i], payload=chain[i].payload.replace(b"}", b',"y":1}'))
    elif op == "delete":
        del chain[i]
    elif op == "swap":
        chain[i], chain[i + 1] = (
            dataclasses.replace(chain[i + 1], seq=chain[i].seq),
            dataclasses.replace(chain[i], seq=chain[i + 1].seq),
        )
    elif op == "duplicate":
        chain.insert(i + 1, chain[i])
    elif op == "kind":
        chain[i] = dataclasses.replace(
            chain[i], kind="verdict" if chain[i].kind != "verdict" else "round"
        )
    elif op == "time":
        chain[i] = dataclasses.replace(chain[i], at_unix_ns=chain[i].at_unix_ns + 1)
    else:
        chain[i] = dataclasses.replace(chain[i], prev_hash_hex="ff" * 32)
    with pytest.raises(IntegrityError, match=r"^audit entry seq=\d+"):
        verify_chain(chain)


@given(n=st.integers(min_value=1, max_value=10), cut=st.integers(min_value=1, max_value=10))
def test_truncation_is_caught_by_the_anchor(n: int, cut: int) -> None:
    chain = _chain(n)
    head = verify_chain(chain).head
    assert head is not None
    kept = chain[: max(0, n - cut)]
    with pytest.raises(IntegrityError, match="beyond the head"):
        verify_chain(kept, anchors=[head])
