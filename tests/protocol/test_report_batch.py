"""Landmark batch signatures: what a verifier accepts when a landmark signs one Merkle root
for many reports, checked against an independent tree (hashlib, written out here) and an
independent signature check (PyNaCl directly).

Each forgery is one a real adversary can build from reports it saw on the wire: it moves a
leaf, grafts another batch's path or root, flips a sibling, has another landmark sign, or
waits for the landmark's revocation. Every one is refused, with the reason a counter shows.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re

import nacl.exceptions
import nacl.signing
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chiploc.common.errors import BadSignature, ChiplocError, DecodeError, InputError
from chiploc.protocol import (
    BatchProof,
    ChipEntry,
    LandmarkEntry,
    MeasurementReport,
    PrivateKey,
    ProbeRecord,
    Registry,
    Role,
    VerifiedRoots,
    decode_report,
    draft_report,
    generate_private_key,
    response_message,
    sign_report,
    sign_report_batch,
    verify_report,
    verify_report_lazy,
)

NOW = 1_700_000_000 * 10**9
LM = generate_private_key(Role.LANDMARK, "lm-fra", seed=b"\x02" * 32)
OTHER_LM = generate_private_key(Role.LANDMARK, "lm-par", seed=b"\x05" * 32)
CHIPS = [
    generate_private_key(Role.CHIP, f"chip-{i}", seed=bytes([0x30 + i]) * 32) for i in range(6)
]
AUTHORITY = generate_private_key(Role.AUTHORITY, "authority", seed=b"\x01" * 32)


def _registry(*, revoked: frozenset[str] = frozenset()) -> Registry:
    return Registry(
        authority_public_key=AUTHORITY.public_key.key_bytes,
        landmarks={
            k.id: LandmarkEntry(
                id=k.id,
                lat=50.0,
                lon=8.0,
                public_key=k.public_key.key_bytes,
                operator="test",
                revoked=k.id in revoked,
            )
            for k in (LM, OTHER_LM)
        },
        chips={
            c.id: ChipEntry(id=c.id, public_key=c.public_key.key_bytes, region="country:DEU")
            for c in CHIPS
        },
        verifiers={},
    )


def _draft(chip: PrivateKey, n: int, *, landmark: PrivateKey = LM) -> MeasurementReport:
    session = hashlib.sha256(f"s/{chip.id}/{n}".encode()).digest()[:16]
    probes = []
    for seq in range(4):
        nonce = hashlib.sha256(f"n/{chip.id}/{n}/{seq}".encode()).digest()[:16]
        msg = response_message(
            session_id=session, chip_id=chip.id, landmark_id=landmark.id, seq=seq, nonce=nonce
        )
        probes.append(
            ProbeRecord(
                seq=seq,
                nonce=nonce,
                rtt_ns=1_000_000 + 1000 * ((n * 7 + seq * 3) % 11),
                chip_signature=chip.sign(msg),
                timestamp_source="kernel",
            )
        )
    return draft_report(
        landmark_id=landmark.id,
        chip_id=chip.id,
        session_id=session,
        chip_address="192.0.2.1:9",
        started_at_unix_ns=NOW - 10**9,
        finished_at_unix_ns=NOW,
        probes=probes,
    )


def _drafts(size: int, *, landmark: PrivateKey = LM, salt: int = 0) -> list[MeasurementReport]:
    """``size`` reports of several chips (a batch mixes chips, as a landmark's uploads do)."""
    return [_draft(CHIPS[i % len(CHIPS)], salt * 1000 + i, landmark=landmark) for i in range(size)]


# -- an independent Merkle tree and signature check --------------------------------------


def _h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _independent_root(leaves: list[bytes]) -> bytes:
    """RFC 6962 prefixes over a complete tree padded with SHA-256(0x02), recursively."""
    width = 1
    while width < len(leaves):
        width *= 2
    nodes = [_h(b"\x00" + leaf) for leaf in leaves] + [_h(b"\x02")] * (width - len(leaves))

    def up(lo: int, hi: int) -> bytes:
        if hi - lo == 1:
            return nodes[lo]
        mid = (lo + hi) // 2
        return _h(b"\x01" + up(lo, mid) + up(mid, hi))

    return up(0, width)


def _leaf_and_proof(raw: bytes) -> tuple[bytes, int, int, list[bytes], bytes, bytes]:
    """Split a batched report's bytes by the documented layout (docs/protocol.md)."""
    signature, root = raw[-64:], raw[-96:-64]
    report = decode_report(raw)
    assert report.batch is not None
    size = report.batch.size
    depth = (size - 1).bit_length()
    tail = 8 + 32 * depth + 96
    leaf = raw[: len(raw) - tail]
    index = int.from_bytes(raw[len(leaf) : len(leaf) + 4], "big")
    assert int.from_bytes(raw[len(leaf) + 4 : len(leaf) + 8], "big") == size
    path_bytes = raw[len(leaf) + 8 : len(raw) - 96]
    path = [path_bytes[i : i + 32] for i in range(0, len(path_bytes), 32)]
    return leaf, index, size, path, root, signature


def _statement(landmark_id: str, size: int, root: bytes) -> bytes:
    ident = landmark_id.encode()
    return (
        b"chiploc/report-batch/v1\x00"
        + bytes([len(ident)])
        + ident
        + size.to_bytes(4, "big")
        + root
    )


def _with_proof(raw: bytes, **change: object) -> bytes:
    """The same leaf with a changed proof (index, size, path, root or signature)."""
    report = decode_report(raw)
    assert report.batch is not None
    proof = dataclasses.replace(report.batch, **change)  # type: ignore[arg-type]
    leaf = _leaf_and_proof(raw)[0]
    return leaf + proof.to_bytes()


_MESSAGES = {
    "batch_path_mismatch": r"^the batch path of landmark 'lm-fra' does not join this report "
    r"at index \d+ to the signed root$",
    "bad_batch_signature": r"^landmark 'lm-fra' signature over the batch root does not verify$",
}


def _reason(raw: bytes, registry: Registry, roots: VerifiedRoots | None = None) -> str:
    reasons = set()
    for verify in (verify_report, verify_report_lazy):
        with pytest.raises(ChiplocError) as e:
            verify(raw, registry, roots=roots)
        reasons.add(e.value.reason)
        if e.value.reason in _MESSAGES:
            assert re.match(_MESSAGES[e.value.reason], str(e.value)), str(e.value)
    assert len(reasons) == 1, reasons  # lazy and full agree
    return reasons.pop()


# -- a valid batch ------------------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8, 9])
def test_a_valid_batch_verifies_and_is_exactly_the_documented_tree(size: int) -> None:
    drafts = _drafts(size)
    signed = sign_report_batch(LM, drafts)
    registry = _registry()
    leaves = []
    for i, (draft, report) in enumerate(zip(drafts, signed, strict=True)):
        leaf, index, got_size, path, root, _signature = _leaf_and_proof(report.raw)
        assert (index, got_size, len(path)) == (i, size, (size - 1).bit_length())
        assert leaf[3] == 0x09  # a batched chip report's type byte
        leaves.append(leaf)
        for verify in (verify_report, verify_report_lazy):
            trusted = verify(report.raw, registry)
            assert (trusted.chip_id, trusted.min_rtt_ns) == (draft.chip_id, draft.min_rtt_ns)
            assert trusted.probes == draft.probes
            assert trusted.overhead_lower_bound_ns == 0  # a draft subtracts nothing unasked
    root = _independent_root(leaves)
    for report in signed:
        assert _leaf_and_proof(report.raw)[4] == root
        # the landmark's one signature, checked by PyNaCl over the documented statement
        nacl.signing.VerifyKey(LM.public_key.key_bytes).verify(
            _statement(LM.id, size, root), _leaf_and_proof(report.raw)[5]
        )
    assert len({r.batch.signature for r in signed if r.batch}) == 1


def test_single_reports_keep_working_beside_batches() -> None:
    draft = _draft(CHIPS[0], 0)
    single = sign_report(
        LM,
        chip_id=CHIPS[0].id,
        session_id=draft.session_id,
        chip_address="192.0.2.1:9",
        started_at_unix_ns=NOW - 10**9,
        finished_at_unix_ns=NOW,
        probes=draft.probes,
    )
    assert single.batch is None
    assert single.raw[3] == 0x05
    assert verify_report(single.raw, _registry(), roots=VerifiedRoots()).batch is None
    # a batch of one is the batch format with an empty path, not the single format
    (one,) = sign_report_batch(LM, [_draft(CHIPS[0], 0)])
    assert one.raw[3] == 0x09
    assert one.batch is not None
    assert one.batch.path == ()
    verify_report(one.raw, _registry())


def test_a_mesh_batch_is_a_mesh_report_and_never_a_chips() -> None:
    peer = draft_report(
        landmark_id=LM.id,
        chip_id=OTHER_LM.id,
        session_id=bytes(16),
        chip_address="192.0.2.2:9",
        started_at_unix_ns=NOW - 10**9,
        finished_at_unix_ns=NOW,
        probes=[
            ProbeRecord(
                seq=0,
                nonce=bytes(range(16)),
                rtt_ns=5_000_000,
                chip_signature=OTHER_LM.sign(
                    response_message(
                        session_id=bytes(16),
                        chip_id=OTHER_LM.id,
                        landmark_id=LM.id,
                        seq=0,
                        nonce=bytes(range(16)),
                        target_role=Role.LANDMARK,
                    )
                ),
                timestamp_source="kernel",
            )
        ],
        target_role=Role.LANDMARK,
    )
    (report,) = sign_report_batch(LM, [peer])
    assert report.raw[3] == 0x0A
    verify_report(report.raw, _registry(), target_role=Role.LANDMARK)
    with pytest.raises(DecodeError) as e:
        verify_report(report.raw, _registry())
    assert e.value.reason == "wrong_role"


# -- forgeries ----------------------------------------------------------------------------


def test_a_leaf_moved_to_another_index_is_refused() -> None:
    signed = sign_report_batch(LM, _drafts(8))
    registry = _registry()
    raw = signed[2].raw
    # its own path at every other index, and the path of the leaf it claims to be
    for j in (0, 1, 3, 7):
        assert _reason(_with_proof(raw, index=j), registry) == "batch_path_mismatch"
        assert signed[j].batch is not None
        moved = _with_proof(raw, index=j, path=signed[j].batch.path)
        assert _reason(moved, registry) == "batch_path_mismatch"


def test_a_path_from_another_batch_is_refused() -> None:
    first = sign_report_batch(LM, _drafts(4))
    second = sign_report_batch(LM, _drafts(4, salt=1))
    registry = _registry()
    verify_report(second[1].raw, registry)  # the other batch is genuine
    b = second[1].batch
    assert b is not None
    grafts = {
        "path": {"path": b.path},
        "path and root": {"path": b.path, "root": b.root},
        "whole proof": {"path": b.path, "root": b.root, "signature": b.signature},
    }
    for change in grafts.values():
        assert _reason(_with_proof(first[1].raw, **change), registry) == "batch_path_mismatch"


@given(sibling=st.integers(0, 2), bit=st.integers(0, 255))
@settings(max_examples=30, deadline=None)
def test_a_tampered_sibling_is_refused(sibling: int, bit: int) -> None:
    signed = _SIGNED_5
    report = signed[3]
    assert report.batch is not None
    path = list(report.batch.path)
    flipped = bytearray(path[sibling])
    flipped[bit // 8] ^= 1 << (bit % 8)
    path[sibling] = bytes(flipped)
    assert _reason(_with_proof(report.raw, path=tuple(path)), _registry()) == (
        "batch_path_mismatch"
    )


_SIGNED_5 = sign_report_batch(LM, _drafts(5))


def test_a_tampered_leaf_or_root_is_refused() -> None:
    raw = _SIGNED_5[0].raw
    registry = _registry()
    leaf_end = len(_leaf_and_proof(raw)[0])
    tampered = bytearray(raw)
    tampered[leaf_end - 1] ^= 1  # the last probe's chip signature, inside the leaf
    assert _reason(bytes(tampered), registry) == "batch_path_mismatch"
    b = _SIGNED_5[0].batch
    assert b is not None
    # a root that matches a forged path but that the landmark never signed
    other = sign_report_batch(LM, _drafts(5, salt=2))[0].batch
    assert other is not None
    assert _reason(_with_proof(raw, root=other.root), registry) == "batch_path_mismatch"


def test_a_root_signed_by_another_landmark_is_refused() -> None:
    drafts = _drafts(4)  # lm-fra's reports
    honest = sign_report_batch(LM, drafts)
    b = honest[0].batch
    assert b is not None
    # lm-par signs lm-fra's root, under lm-fra's name and under its own
    for name in (LM.id, OTHER_LM.id):
        forged_sig = OTHER_LM.sign(_statement(name, b.size, b.root))
        raw = _with_proof(honest[0].raw, signature=forged_sig)
        assert _reason(raw, _registry(), VerifiedRoots()) == "bad_batch_signature"
    # and lm-par cannot batch-sign reports that name lm-fra at all
    with pytest.raises(InputError, match=r"^a batch holds reports of landmark 'lm-par' only$") as e:
        sign_report_batch(OTHER_LM, drafts)
    assert e.value.reason == "foreign_report"


def test_a_revoked_landmarks_batch_is_refused_even_when_its_root_was_cached() -> None:
    roots = VerifiedRoots()
    signed = sign_report_batch(LM, _drafts(3))
    verify_report(signed[0].raw, _registry(), roots=roots)
    assert len(roots) == 1
    revoked = _registry(revoked=frozenset({LM.id}))
    for report in signed:
        assert _reason(report.raw, revoked, roots) == "revoked"


def test_a_batch_mixing_chip_and_mesh_reports_is_not_signed() -> None:
    chip = _draft(CHIPS[0], 0)
    mesh = dataclasses.replace(chip, chip_id=OTHER_LM.id, target_role=Role.LANDMARK)
    with pytest.raises(
        InputError, match=r"^a batch holds chip reports or mesh reports, not both$"
    ) as e:
        sign_report_batch(LM, [chip, mesh])
    assert e.value.reason == "mixed_batch"
    with pytest.raises(InputError, match=r"^a batch has 1\.\.65536 reports$") as e:
        sign_report_batch(LM, [])
    assert e.value.reason == "batch_size"


def test_a_batch_holds_at_most_65536_reports() -> None:
    one = dataclasses.replace(_draft(CHIPS[0], 0), probes=_draft(CHIPS[0], 0).probes[:1])
    with pytest.raises(InputError) as e:
        sign_report_batch(LM, [one] * 65_537)
    assert e.value.reason == "batch_size"
    signed = sign_report_batch(LM, [one] * 65_536)
    assert signed[-1].batch is not None
    assert (signed[-1].batch.index, len(signed[-1].batch.path)) == (65_535, 16)
    verify_report(signed[-1].raw, _registry())


def test_an_impossible_position_does_not_decode() -> None:
    raw = _SIGNED_5[1].raw
    for index, size in ((5, 5), (8, 5), (0, 0), (0, 1 << 17), (1 << 31, 5), (0, 1 << 31)):
        leaf = _leaf_and_proof(raw)[0]
        b = _SIGNED_5[1].batch
        assert b is not None
        bad = leaf + index.to_bytes(4, "big") + size.to_bytes(4, "big") + b"".join(b.path)
        bad += b.root + b.signature
        with pytest.raises(DecodeError, match=rf"^leaf index {index} in a batch of {size} \(") as e:
            decode_report(bad)
        assert e.value.reason == "batch_bad_position"
    # one sibling short, one too many: the path's length is the batch's depth, exactly
    assert b is not None
    short = _leaf_and_proof(raw)[0] + raw[len(_leaf_and_proof(raw)[0]) :][:-128] + raw[-96:]
    with pytest.raises(DecodeError):
        decode_report(short)
    with pytest.raises(DecodeError):
        decode_report(raw[:-96] + b"\x00" * 32 + raw[-96:])


def test_distinct_forgeries_are_counted_under_distinct_reasons() -> None:
    from chiploc.verifier import screen_reports

    signed = sign_report_batch(LM, _drafts(4))
    b = signed[0].batch
    assert b is not None
    forged_sig = OTHER_LM.sign(_statement(LM.id, b.size, b.root))
    leaf = _leaf_and_proof(signed[0].raw)[0]
    raws = [
        signed[0].raw,  # accepted
        _with_proof(signed[1].raw, index=2),  # moved
        _with_proof(signed[2].raw, signature=forged_sig),  # another landmark signed
        leaf + (9).to_bytes(4, "big") + (4).to_bytes(4, "big") + raw_tail(signed[0].raw),
    ]
    screened = screen_reports(raws, _registry(), now_unix_ns=NOW, roots=VerifiedRoots())
    assert [r.chip_id for r in screened.reports] == [signed[0].chip_id]
    assert dict(screened.rejected) == {
        "bad_batch_signature": 1,
        "batch_bad_position": 1,
        "batch_path_mismatch": 1,
    }
    revoked = screen_reports(
        [signed[3].raw], _registry(revoked=frozenset({LM.id})), now_unix_ns=NOW
    )
    assert dict(revoked.rejected) == {"revoked": 1}


def raw_tail(raw: bytes) -> bytes:
    """path | root | signature of a batched report (after index and size)."""
    leaf = _leaf_and_proof(raw)[0]
    return raw[len(leaf) + 8 :]


# -- the cache ----------------------------------------------------------------------------


def _independently_valid(key: bytes) -> bool:
    public_key, signature, statement = key[:32], key[32:96], key[96:]
    try:
        nacl.signing.VerifyKey(public_key).verify(statement, signature)
    except nacl.exceptions.BadSignatureError:
        return False
    return True


@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from(["valid", "flip_sig", "other_key", "other_root"]), st.integers(0, 3)
        ),
        min_size=1,
        max_size=12,
    )
)
@settings(max_examples=40, deadline=None)
def test_the_cache_never_holds_a_root_it_did_not_verify(steps: list[tuple[str, int]]) -> None:
    roots = VerifiedRoots(max_entries=3)
    batches = _CACHE_BATCHES
    for kind, k in steps:
        b = batches[k]
        statement = _statement(LM.id, b.size, b.root)
        public_key, signature = LM.public_key.key_bytes, b.signature
        if kind == "flip_sig":
            signature = bytes([signature[0] ^ 1]) + signature[1:]
        elif kind == "other_key":
            public_key = OTHER_LM.public_key.key_bytes
        elif kind == "other_root":
            statement = _statement(LM.id, b.size, batches[(k + 1) % 4].root)
        before = set(roots._entries)
        if kind == "valid":
            roots.check(public_key, statement, signature)
        else:
            with pytest.raises(BadSignature):
                roots.check(public_key, statement, signature)
            assert set(roots._entries) == before  # a failure is never remembered
        assert len(roots) <= 3
        assert all(_independently_valid(key) for key in roots._entries)


_CACHE_BATCHES = [
    r.batch for s in range(4) for r in sign_report_batch(LM, _drafts(2, salt=10 + s))[:1] if r.batch
]


def test_the_cache_checks_each_distinct_root_once_and_rechecks_other_bytes() -> None:
    roots = VerifiedRoots()
    signed = sign_report_batch(LM, _drafts(6))
    registry = _registry()
    for report in signed:
        verify_report_lazy(report.raw, registry, roots=roots)
    assert (roots.misses, roots.hits, len(roots)) == (1, 5, 1)
    # the same root under a signature that is not the landmark's is checked, and refused
    b = signed[0].batch
    assert b is not None
    bad = _with_proof(signed[0].raw, signature=bytes(64))
    assert _reason(bad, registry, roots) == "bad_batch_signature"
    assert len(roots) == 1


def test_bad_cache_settings_and_proofs_are_refused() -> None:
    with pytest.raises(ValueError, match="max_entries"):
        VerifiedRoots(max_entries=0)
    with pytest.raises(ValueError, match="32 bytes and a signature 64"):
        VerifiedRoots.key(b"\x00" * 31, b"", b"\x00" * 64)
    good = {
        "index": 0,
        "size": 2,
        "path": (b"\x00" * 32,),
        "root": b"\x00" * 32,
        "signature": bytes(64),
    }
    BatchProof(**good)  # type: ignore[arg-type]
    for change, match in (
        ({"size": 0}, "batch size"),
        ({"index": 2}, "below the batch size"),
        ({"path": ()}, "siblings"),
        ({"root": b"\x00" * 31}, "32 bytes"),
        ({"signature": bytes(63)}, "64 bytes"),
    ):
        with pytest.raises(ValueError, match=match):
            BatchProof(**{**good, **change})  # type: ignore[arg-type]


def test_the_json_view_shows_the_batch_place_and_a_batch_must_be_a_proof() -> None:
    report = _SIGNED_5[4]
    assert report.batch is not None
    view = verify_report(report.raw, _registry()).to_json_dict()
    assert view["batch"] == {"index": 4, "size": 5, "root": report.batch.root.hex()}
    assert view["digest"] == hashlib.sha256(report.raw).hexdigest()
    with pytest.raises(ValueError, match=r"^batch must be a BatchProof or None$"):
        dataclasses.replace(report, batch=report.batch.to_bytes())  # type: ignore[arg-type]


def test_the_largest_batched_report_decodes() -> None:
    """10,000 probes, 64-character ids, a 255-byte address and a 16-sibling path: decodes
    (the size limit leaves room for the proof); the path's length is the batch's depth."""
    lm_id, chip_id = "l" * 64, "c" * 64
    probes = [
        ProbeRecord(
            seq=i, nonce=i.to_bytes(16, "big"), rtt_ns=None, chip_signature=bytes(64),
            timestamp_source="none",
        )
        for i in range(10_000)
    ]  # fmt: skip
    draft = draft_report(
        landmark_id=lm_id,
        chip_id=chip_id,
        session_id=bytes(16),
        chip_address="a" * 255,
        started_at_unix_ns=0,
        finished_at_unix_ns=0,
        probes=probes,
    )
    proof = BatchProof(
        index=65_535, size=65_536, path=(b"\x01" * 32,) * 16, root=b"\x02" * 32,
        signature=bytes(64),
    )  # fmt: skip
    leaf = dataclasses.replace(draft, batch=proof).body_bytes()
    assert leaf[3] == 0x09
    report = decode_report(leaf + proof.to_bytes())
    assert report.batch == proof
    assert len(report.probes) == 10_000


def test_the_cache_is_a_bounded_lru_of_verified_roots() -> None:
    batches = _CACHE_BATCHES
    keys = [
        (LM.public_key.key_bytes, _statement(LM.id, b.size, b.root), b.signature) for b in batches
    ]
    roots = VerifiedRoots(max_entries=3)
    assert VerifiedRoots().max_entries == 65_536  # the documented default
    for k in keys[:3]:
        roots.check(*k)
    assert (len(roots), roots.misses, roots.hits) == (3, 3, 0)
    roots.check(*keys[0])  # a hit refreshes it: keys[1] is now the least recently used
    roots.check(*keys[3])
    assert len(roots) == 3
    assert VerifiedRoots.key(*keys[1]) not in roots
    assert all(VerifiedRoots.key(*k) in roots for k in (keys[0], keys[2], keys[3]))
    assert (roots.misses, roots.hits) == (4, 1)
    one = VerifiedRoots(max_entries=1)
    one.check(*keys[0])
    one.check(*keys[1])
    assert len(one) == 1
    assert VerifiedRoots.key(*keys[1]) in one
    roots.clear()
    assert (len(roots), roots.misses, roots.hits) == (0, 0, 0)


def test_bad_trees_and_cache_keys_are_refused_with_their_reasons() -> None:
    from chiploc.protocol import merkle_tree

    with pytest.raises(ValueError, match=r"^a batch has 1\.\.65536 leaves, got 0$"):
        merkle_tree([])
    with pytest.raises(ValueError, match=r"^max_entries must be a positive integer$"):
        VerifiedRoots(max_entries=0)
    with pytest.raises(ValueError, match=r"^a public key is 32 bytes and a signature 64$"):
        VerifiedRoots.key(b"\x00" * 32, b"", b"\x00" * 63)
    good = {"index": 0, "size": 2, "path": (b"\x00" * 32,), "root": b"\x00" * 32}
    for change, message in (
        ({"size": True}, r"^batch size must be in 1\.\.65536$"),
        ({"index": 2}, r"^leaf index must be below the batch size$"),
        ({"path": ()}, r"^a path has exactly ceil\(log2 size\) siblings$"),
        ({"root": b"\x00"}, r"^hashes are 32 bytes$"),
        ({"signature": b"\x00"}, r"^the root signature is 64 bytes$"),
    ):
        with pytest.raises(ValueError, match=message):
            BatchProof(**{**good, "signature": bytes(64), **change})  # type: ignore[arg-type]
