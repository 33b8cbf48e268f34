"""Lazy report verification: what it proves, checked against full verification and against
an independent signature check (PyNaCl directly, not chiploc's helpers).

Every forged report here is signed by the real, enrolled landmark: the landmark vouches for
a transcript carrying a chip signature the chip never made. That is the only forgery lazy
verification treats differently from full verification, so it is the one to test.
"""

from __future__ import annotations

import dataclasses

import nacl.exceptions
import nacl.signing
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from chiploc.common.errors import BadSignature, ChiplocError
from chiploc.protocol import (
    MeasurementReport,
    PrivateKey,
    ProbeRecord,
    Registry,
    Role,
    generate_private_key,
    response_message,
    sign_report,
    verify_report,
    verify_report_lazy,
)

SID = bytes(range(16))
OTHER_SID = bytes(range(1, 17))
FORGERIES = ("flip", "other_key", "wrong_nonce", "wrong_seq", "wrong_session", "swap", "zero")


def _answer(chip: PrivateKey, *, seq: int, nonce: bytes, session: bytes = SID) -> bytes:
    msg = response_message(
        session_id=session, chip_id=chip.id, landmark_id="lm-fra", seq=seq, nonce=nonce
    )
    return chip.sign(msg)


def _probes(chip: PrivateKey, rtts: list[int | None]) -> list[ProbeRecord]:
    out = []
    for seq, rtt in enumerate(rtts):
        nonce = bytes([seq, 0xA5]) * 8
        if rtt is None:
            out.append(
                ProbeRecord(
                    seq=seq, nonce=nonce, rtt_ns=None, chip_signature=bytes(64),
                    timestamp_source="none",
                )
            )  # fmt: skip
        else:
            out.append(
                ProbeRecord(
                    seq=seq,
                    nonce=nonce,
                    rtt_ns=rtt,
                    chip_signature=_answer(chip, seq=seq, nonce=nonce),
                    timestamp_source="kernel",
                )
            )
    return out


def _forge(probes: list[ProbeRecord], k: int, kind: str, chip: PrivateKey, bit: int) -> None:
    """Replace probe ``k``'s chip signature by a forgery of ``kind``."""
    p = probes[k]
    if kind == "flip":
        sig = bytearray(p.chip_signature)
        sig[bit % 64] ^= 1 << (bit % 8)
        new = bytes(sig)
    elif kind == "other_key":  # a cloned id with another key
        impostor = generate_private_key(Role.CHIP, chip.id, seed=b"\x77" * 32)
        new = _answer(impostor, seq=p.seq, nonce=p.nonce)
    elif kind == "wrong_nonce":  # the chip's real answer to another challenge
        new = _answer(chip, seq=p.seq, nonce=bytes(16))
    elif kind == "wrong_seq":
        new = _answer(chip, seq=p.seq + 1000, nonce=p.nonce)
    elif kind == "wrong_session":  # replayed from another session
        new = _answer(chip, seq=p.seq, nonce=p.nonce, session=OTHER_SID)
    elif kind == "swap":  # another probe's genuine signature
        others = [q for q in probes if q.seq != p.seq and q.rtt_ns is not None]
        new = others[0].chip_signature if others else bytes(64)
    else:
        new = bytes(64)
    probes[k] = dataclasses.replace(p, chip_signature=new)


def _signed(landmark: PrivateKey, chip: PrivateKey, probes: list[ProbeRecord]) -> bytes:
    return sign_report(
        landmark,
        chip_id=chip.id,
        session_id=SID,
        chip_address="127.0.0.1:9",
        started_at_unix_ns=1_700_000_000_000_000_000,
        finished_at_unix_ns=1_700_000_000_100_000_000,
        probes=probes,
    ).raw


def _holds(public_key: bytes, report: MeasurementReport, p: ProbeRecord) -> bool:
    """Independent check of one chip signature with PyNaCl."""
    msg = response_message(
        session_id=report.session_id,
        chip_id=report.chip_id,
        landmark_id=report.landmark_id,
        seq=p.seq,
        nonce=p.nonce,
    )
    try:
        nacl.signing.VerifyKey(public_key).verify(msg, p.chip_signature)
    except nacl.exceptions.BadSignatureError:
        return False
    return True


def _reason(fn: object, raw: bytes, registry: Registry) -> str | None:
    try:
        fn(raw, registry)  # type: ignore[operator]
    except ChiplocError as e:
        return e.reason
    return None


rtt_lists = st.lists(
    st.one_of(st.none(), st.integers(min_value=1, max_value=10**9)), min_size=1, max_size=32
).filter(lambda xs: any(x is not None for x in xs))


# The key and registry fixtures are immutable values: sharing them across examples is fine.
_shared = settings(suppress_health_check=[HealthCheck.function_scoped_fixture])


@_shared
@given(rtts=rtt_lists, kind=st.sampled_from(FORGERIES), bit=st.integers(0, 511))
def test_lazy_rejects_every_forgery_full_rejects_on_the_minimum_probe(
    registry: Registry,
    landmark_key: PrivateKey,
    chip_key: PrivateKey,
    rtts: list[int | None],
    kind: str,
    bit: int,
) -> None:
    probes = _probes(chip_key, rtts)
    # The minimum probe: smallest RTT, ties broken by seq.
    k = min((p.rtt_ns, p.seq) for p in probes if p.rtt_ns is not None)[1]
    _forge(probes, k, kind, chip_key, bit)
    raw = _signed(landmark_key, chip_key, probes)
    full = _reason(verify_report, raw, registry)
    lazy = _reason(verify_report_lazy, raw, registry)
    assert full is not None  # every forgery kind here is a forgery
    assert lazy == full == "bad_chip_signature"


@_shared
@given(
    rtts=rtt_lists,
    forged=st.lists(st.integers(0, 31), max_size=8),
    kind=st.sampled_from(FORGERIES),
)
def test_whatever_lazy_accepts_its_minimum_rtt_is_a_probe_the_chip_signed(
    registry: Registry,
    landmark_key: PrivateKey,
    chip_key: PrivateKey,
    rtts: list[int | None],
    forged: list[int],
    kind: str,
) -> None:
    probes = _probes(chip_key, rtts)
    for k in forged:
        if k < len(probes) and probes[k].rtt_ns is not None:
            _forge(probes, k, kind, chip_key, k)
    raw = _signed(landmark_key, chip_key, probes)
    try:
        report = verify_report_lazy(raw, registry)
    except BadSignature:
        return
    chip_pub = registry.chip(chip_key.id).public_key
    carriers = [
        p for p in report.probes if p.rtt_ns == report.min_rtt_ns and _holds(chip_pub, report, p)
    ]
    assert carriers, "lazy verification accepted a minimum no verified probe carries"


def test_lazy_accepts_a_forged_slower_probe_which_only_the_full_check_catches(
    registry: Registry, landmark_key: PrivateKey, chip_key: PrivateKey
) -> None:
    """Why lazy verification needs the sampled full check: the forged probe does not move
    the bound, but it proves the landmark signs transcripts the chip did not answer."""
    probes = _probes(chip_key, [700_000, 900_000, 800_000])
    _forge(probes, 1, "zero", chip_key, 0)
    raw = _signed(landmark_key, chip_key, probes)
    report = verify_report_lazy(raw, registry)
    assert report.min_rtt_ns == 700_000
    with pytest.raises(BadSignature, match="probe seq 1") as info:
        verify_report(raw, registry)
    assert info.value.reason == "bad_chip_signature"


def test_lazy_checks_the_landmark_signature_and_identities(
    registry: Registry, landmark_key: PrivateKey, chip_key: PrivateKey
) -> None:
    impostor = generate_private_key(Role.LANDMARK, "lm-fra", seed=b"\x09" * 32)
    raw = _signed(impostor, chip_key, _probes(chip_key, [1000, 2000]))
    assert _reason(verify_report_lazy, raw, registry) == "bad_signature"
    unknown = generate_private_key(Role.CHIP, "chip-9", seed=b"\x0a" * 32)
    raw = _signed(landmark_key, unknown, _probes(unknown, [1000]))
    assert _reason(verify_report_lazy, raw, registry) == "unknown_identity"
    tampered = bytearray(_signed(landmark_key, chip_key, _probes(chip_key, [1000, 2000])))
    tampered[-70] ^= 1  # inside the last probe's chip signature, under the landmark's
    assert _reason(verify_report_lazy, bytes(tampered), registry) == "bad_signature"


def test_all_lost_report_verifies_lazily_with_no_minimum(
    registry: Registry, landmark_key: PrivateKey, chip_key: PrivateKey
) -> None:
    raw = _signed(landmark_key, chip_key, _probes(chip_key, [None, None]))
    assert verify_report_lazy(raw, registry).min_rtt_ns is None


@given(
    seq=st.integers(0, 2**32 - 1),
    nonce=st.binary(min_size=16, max_size=16),
    rtt=st.one_of(st.just((1 << 64) - 1), st.integers(0, (1 << 64) - 1)),
    code=st.integers(0, 5),
    signature=st.one_of(st.just(bytes(64)), st.binary(min_size=64, max_size=64)),
)
def test_fast_probe_decoding_accepts_and_builds_exactly_what_the_constructor_does(
    seq: int, nonce: bytes, rtt: int, code: int, signature: bytes
) -> None:
    from chiploc.protocol._report import TIMESTAMP_SOURCES, _decoded_probe

    def slow() -> ProbeRecord:
        return ProbeRecord(
            seq=seq,
            nonce=nonce,
            rtt_ns=None if rtt == (1 << 64) - 1 else rtt,
            chip_signature=signature,
            timestamp_source=TIMESTAMP_SOURCES[code],
        )

    try:
        expected: ProbeRecord | type[Exception] = slow()
    except (ValueError, IndexError) as e:
        expected = type(e)
    try:
        got: ProbeRecord | type[Exception] = _decoded_probe(seq, nonce, rtt, code, signature)
    except (ValueError, IndexError) as e:
        got = type(e)
    assert got == expected
    if isinstance(got, ProbeRecord):
        assert got.to_json_dict() == slow().to_json_dict()
        with pytest.raises(dataclasses.FrozenInstanceError):
            got.seq = 0  # type: ignore[misc]


@given(
    records=st.lists(
        st.tuples(
            st.integers(0, 2**32 - 1),
            st.binary(min_size=16, max_size=16),
            st.one_of(st.just((1 << 64) - 1), st.just(0), st.integers(0, (1 << 64) - 1)),
            st.integers(0, 5),
            st.one_of(st.just(bytes(64)), st.binary(min_size=64, max_size=64)),
        ),
        max_size=6,
    )
)
def test_a_block_of_probe_records_decodes_as_each_record_alone(
    records: list[tuple[int, bytes, int, int, bytes]],
) -> None:
    """The inline fast path for answered probes builds and refuses exactly what the
    per-record decoder does (itself checked against the constructor above)."""
    from chiploc.protocol._report import _PROBE_RECORD, _decoded_probe, _decoded_probes

    # the smallest positive RTT is an answered probe's, through either path
    assert _decoded_probe(0, bytes(16), 1, 1, b"\x01" * 64).rtt_ns == 1
    block = b"".join(_PROBE_RECORD.pack(*r) for r in records)
    try:
        expected: object = tuple(_decoded_probe(*r) for r in records)
    except (ValueError, IndexError) as e:
        expected = type(e)
    try:
        got: object = _decoded_probes(block)
    except (ValueError, IndexError) as e:
        got = type(e)
    assert got == expected
    if isinstance(got, tuple):
        assert [p.to_json_dict() for p in got] == [p.to_json_dict() for p in expected]  # type: ignore[union-attr]


_STEP = st.integers(0, 2)  # a seq's step from the previous record's (0: repeated)
_NONCE = st.sampled_from([bytes(16), b"\x01" * 16]) | st.binary(min_size=16, max_size=16)
_SIG = st.binary(min_size=64, max_size=64)
_ANSWERED = st.tuples(_STEP, _NONCE, st.integers(1, 9), st.integers(1, 2), _SIG)
_LOST_RECORD = st.tuples(_STEP, _NONCE, st.just((1 << 64) - 1), st.just(0), st.just(bytes(64)))
_ANY_RECORD = st.tuples(
    _STEP,
    _NONCE,
    st.one_of(st.just((1 << 64) - 1), st.just(0), st.integers(1, 9)),
    st.integers(0, 4),
    st.one_of(st.just(bytes(64)), _SIG),
)


@given(
    records=st.lists(
        st.one_of(_ANSWERED, _ANSWERED, _LOST_RECORD, _ANY_RECORD), min_size=1, max_size=6
    )
)
@example(records=[(0, b"\x01" * 16, 5, 1, b"\x01" * 64), (1, b"\x02" * 16, 5, 2, b"\x02" * 64)])
@example(records=[(1, b"\x01" * 16, (1 << 64) - 1, 0, bytes(64)), (2, bytes(16), 3, 1, bytes(64))])
@settings(max_examples=300)
def test_a_probe_block_accepts_and_derives_exactly_what_the_records_do(
    records: list[tuple[int, bytes, int, int, bytes]],
) -> None:
    """What a decoded report keeps (the records' wire bytes, summarised once) refuses the
    blocks and derives the fields that the report built from ProbeRecord objects does:
    the records' own checks, increasing seqs, distinct nonces, the minimum RTT (and the
    probe carrying it, first in seq order), the report's source and the answered count.
    Small RTTs (1..9) make ties for the minimum common."""
    from chiploc.protocol._report import _PROBE_RECORD, ProbeBlock, _decoded_probe

    seq = -1
    rows = []
    for step, *rest in records:
        seq = max(seq + step, 0)
        rows.append((seq, *rest))
    block = b"".join(_PROBE_RECORD.pack(*r) for r in rows)
    try:
        probes = tuple(_decoded_probe(*r) for r in rows)
        report = MeasurementReport(
            landmark_id="lm-fra",
            chip_id="chip-1",
            session_id=SID,
            chip_address="192.0.2.1:4433",
            started_at_unix_ns=1,
            finished_at_unix_ns=2,
            timestamp_source=_source_of(probes),
            probes=probes,
            min_rtt_ns=_min_of(probes),
        )
    except (ValueError, IndexError) as e:
        with pytest.raises(type(e)):
            ProbeBlock(block)
        return
    best = [p for p in probes if p.rtt_ns is not None and p.rtt_ns == report.min_rtt_ns]
    # the minimum probe straight from the bytes, before anything decodes every record
    assert ProbeBlock(block).min_probe() == (best[0] if best else None)
    got = ProbeBlock(block)
    assert got == probes
    assert probes == got
    assert tuple(got) == probes
    assert len(got) == len(probes)
    assert hash(got) == hash(probes)
    assert (got.min_rtt_ns, got.timestamp_source) == (report.min_rtt_ns, report.timestamp_source)
    assert got.answered == report.answered == sum(p.rtt_ns is not None for p in probes)
    assert got.min_probe() == (best[0] if best else None) == report.min_probe()
    again = dataclasses.replace(report, probes=got)  # a report accepts the block as is
    assert again == report
    assert again.body_bytes() == report.body_bytes()


def _source_of(probes: tuple[ProbeRecord, ...]) -> str:
    sources = {p.timestamp_source for p in probes if p.rtt_ns is not None}
    return "none" if not sources else sources.pop() if len(sources) == 1 else "mixed"


def _min_of(probes: tuple[ProbeRecord, ...]) -> int | None:
    rtts = [p.rtt_ns for p in probes if p.rtt_ns is not None]
    return min(rtts) if rtts else None


def test_a_probe_block_is_whole_records() -> None:
    from chiploc.protocol._report import _PROBE_RECORD, ProbeBlock

    record = _PROBE_RECORD.pack(0, bytes(16), 5, 1, b"\x01" * 64)
    with pytest.raises(ValueError, match=r"^a probe block is whole 93-byte records$"):
        ProbeBlock(record[:-1])
    with pytest.raises(ValueError, match=r"^a report has 1\.\.10000 probes$"):
        ProbeBlock(b"")
    assert len(ProbeBlock(record)) == 1
    assert ProbeBlock(record) != ProbeBlock(_PROBE_RECORD.pack(0, bytes(16), 6, 1, b"\x01" * 64))


def test_probes_built_by_hand_are_refused_with_the_records_reasons() -> None:
    """A report built from ProbeRecord objects (a landmark's draft) checks what a decoded
    block checks, with the same words."""
    p0, p1 = _probes(generate_private_key(Role.CHIP, "chip-1", seed=b"c" * 32), [700, 900])
    fields: dict[str, object] = {
        "landmark_id": "lm-fra",
        "chip_id": "chip-1",
        "session_id": SID,
        "chip_address": "192.0.2.1:4433",
        "started_at_unix_ns": 1,
        "finished_at_unix_ns": 2,
        "timestamp_source": "kernel",
        "min_rtt_ns": 700,
    }
    for probes, message in (
        (
            (p0, dataclasses.replace(p1, seq=p0.seq)),
            "probe sequence numbers must strictly increase",
        ),
        ((p0, dataclasses.replace(p1, nonce=p0.nonce)), "probe nonces must be distinct"),
    ):
        with pytest.raises(ValueError) as info:
            MeasurementReport(probes=probes, **fields)  # type: ignore[arg-type]
        assert str(info.value) == message
