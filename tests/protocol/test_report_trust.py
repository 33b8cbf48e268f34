"""A measurement report as a verifier meets it: bytes from a landmark, checked in full.

Properties of the world, each with an independent oracle:

* A report is exactly the bytes docs/protocol.md's layout gives, written out by hand here,
  with every signature made by PyNaCl directly over the documented signed message (chip
  answers under ``chiploc/response/v1``, a peer landmark's under ``chiploc/peer-response/v1``,
  the landmark's report under ``chiploc/report/v1`` or ``chiploc/peer-report/v1``); such a
  report verifies, in full and lazily, and its JSON view shows what the bytes say.
* Every forged, tampered, malformed or mis-roled report is refused with the right error, a
  one-line diagnosis that names what is wrong, and the stable ``reason`` counters use; every
  value at the edge of a documented range is accepted.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from typing import Any

import pytest
from nacl.signing import SigningKey

from chiploc.common.errors import BadSignature, DecodeError, UnknownIdentity
from chiploc.protocol import (
    ChipEntry,
    LandmarkEntry,
    MeasurementReport,
    PrivateKey,
    ProbeRecord,
    Registry,
    Role,
    decode_report,
    sign_report,
    verify_report,
    verify_report_lazy,
)

LANDMARK_SEED, CHIP_SEED, PEER_SEED = bytes([2]) * 32, bytes([3]) * 32, bytes([5]) * 32
SID = bytes(range(16))
STARTED = 1_700_000_000_000_000_000
FINISHED = STARTED + 100_000_000
ADDRESS = "127.0.0.1:9"
LOST = None
# (seq, nonce, rtt_ns or LOST, source code): kernel 1, userspace 2, none 0.
PROBES = [
    (0, bytes(range(0x10, 0x20)), 900_000, 1),
    (1, bytes(range(0x20, 0x30)), LOST, 0),
    (2, bytes(range(0x30, 0x40)), 700_000, 2),
]
SOURCE_NAMES = ("none", "kernel", "userspace")


def _pub(seed: bytes) -> bytes:
    return SigningKey(seed).verify_key.encode()


def _id(text: str) -> bytes:
    return bytes([len(text)]) + text.encode("ascii")


def _u(value: int, size: int) -> bytes:
    return value.to_bytes(size, "big")


def _answer(seed: bytes, seq: int, nonce: bytes, *, target: str, mesh: bool) -> bytes:
    """The target's signature over the documented RESPONSE message, made with PyNaCl."""
    domain = b"chiploc/peer-response/v1\x00" if mesh else b"chiploc/response/v1\x00"
    message = domain + SID + _id(target) + _id("lm-fra") + _u(seq, 4) + nonce
    return SigningKey(seed).sign(message).signature


def _body(
    *,
    target: str = "chip-1",
    mesh: bool = False,
    target_seed: bytes = CHIP_SEED,
    probes: Sequence[tuple[int, bytes, int | None, int]] = PROBES,
    overhead: int = 1_000,
    source: int = 3,  # mixed
    min_rtt: int | None = 700_000,
    address: bytes = ADDRESS.encode(),
    count: int | None = None,
    lost_signature: bytes = bytes(64),
) -> bytes:
    """header | body of a report, laid out by hand from docs/protocol.md ("Report")."""
    parts = [b"\xc1\x0c\x01" + (b"\x08" if mesh else b"\x05") + SID + _id("lm-fra") + _id(target)]
    parts.append(bytes([len(address)]) + address)
    parts.append(_u(STARTED, 8) + _u(FINISHED, 8) + bytes([source]) + _u(overhead, 8))
    parts.append(b"\xff" * 8 if min_rtt is None else _u(min_rtt, 8))
    parts.append(_u(len(probes) if count is None else count, 2))
    for seq, nonce, rtt, code in probes:
        parts.append(_u(seq, 4) + nonce + (b"\xff" * 8 if rtt is None else _u(rtt, 8)))
        parts.append(bytes([code]))
        if rtt is None:
            parts.append(lost_signature)
        else:
            parts.append(_answer(target_seed, seq, nonce, target=target, mesh=mesh))
    return b"".join(parts)


def _signed(body: bytes, *, mesh: bool = False, seed: bytes = LANDMARK_SEED) -> bytes:
    domain = b"chiploc/peer-report/v1\x00" if mesh else b"chiploc/report/v1\x00"
    return body + SigningKey(seed).sign(domain + body).signature


def _registry() -> Registry:
    return Registry(
        authority_public_key=_pub(bytes([1]) * 32),
        landmarks={
            "lm-fra": LandmarkEntry(
                id="lm-fra", lat=50.11, lon=8.68, public_key=_pub(LANDMARK_SEED)
            ),
            "lm-par": LandmarkEntry(id="lm-par", lat=48.86, lon=2.35, public_key=_pub(PEER_SEED)),
        },
        chips={"chip-1": ChipEntry(id="chip-1", public_key=_pub(CHIP_SEED), region="country:DEU")},
    )


def _records(*, target: str, target_seed: bytes, mesh: bool) -> list[ProbeRecord]:
    return [
        ProbeRecord(
            seq=seq,
            nonce=nonce,
            rtt_ns=rtt,
            chip_signature=bytes(64)
            if rtt is None
            else _answer(target_seed, seq, nonce, target=target, mesh=mesh),
            timestamp_source=SOURCE_NAMES[code],
        )
        for seq, nonce, rtt, code in PROBES
    ]


# -- the bytes, by hand ----------------------------------------------------------------------


def test_a_chip_report_is_exactly_the_documented_bytes_and_verifies() -> None:
    expected = _signed(_body())
    landmark = PrivateKey(role=Role.LANDMARK, id="lm-fra", seed=LANDMARK_SEED)
    report = sign_report(
        landmark,
        chip_id="chip-1",
        session_id=SID,
        chip_address=ADDRESS,
        started_at_unix_ns=STARTED,
        finished_at_unix_ns=FINISHED,
        probes=_records(target="chip-1", target_seed=CHIP_SEED, mesh=False),
        overhead_lower_bound_ns=1_000,
    )
    assert report.raw == expected
    for verify in (verify_report, verify_report_lazy):
        trusted = verify(expected, _registry())
        assert trusted.min_rtt_ns == 700_000
        assert trusted.overhead_lower_bound_ns == 1_000
        assert trusted.target_role is Role.CHIP


def test_a_mesh_report_is_exactly_the_documented_bytes_and_verifies_as_one() -> None:
    body = _body(target="lm-par", mesh=True, target_seed=PEER_SEED)
    expected = _signed(body, mesh=True)
    landmark = PrivateKey(role=Role.LANDMARK, id="lm-fra", seed=LANDMARK_SEED)
    report = sign_report(
        landmark,
        chip_id="lm-par",
        session_id=SID,
        chip_address=ADDRESS,
        started_at_unix_ns=STARTED,
        finished_at_unix_ns=FINISHED,
        probes=_records(target="lm-par", target_seed=PEER_SEED, mesh=True),
        overhead_lower_bound_ns=1_000,
        target_role=Role.LANDMARK,
    )
    assert report.raw == expected
    for verify in (verify_report, verify_report_lazy):
        trusted = verify(expected, _registry(), target_role=Role.LANDMARK)
        assert (trusted.chip_id, trusted.min_rtt_ns) == ("lm-par", 700_000)
        assert trusted.target_role is Role.LANDMARK


def test_the_json_view_shows_what_the_signed_bytes_say() -> None:
    raw = _signed(_body())
    doc = verify_report(raw, _registry()).to_json_dict()
    assert doc == {
        "landmark_id": "lm-fra",
        "chip_id": "chip-1",
        "target_role": "chip",
        "session_id": "000102030405060708090a0b0c0d0e0f",
        "chip_address": "127.0.0.1:9",
        "started_at_unix_ns": STARTED,
        "finished_at_unix_ns": FINISHED,
        "timestamp_source": "mixed",
        "min_rtt_ns": 700_000,
        "overhead_lower_bound_ns": 1_000,
        "probes_sent": 3,
        "probes_answered": 2,
        "probes": [
            {
                "seq": seq,
                "nonce": nonce.hex(),
                "rtt_ns": rtt,
                "timestamp_source": SOURCE_NAMES[code],
                "chip_signature": None
                if rtt is None
                else _answer(CHIP_SEED, seq, nonce, target="chip-1", mesh=False).hex(),
            }
            for seq, nonce, rtt, code in PROBES
        ],
        "digest": hashlib.sha256(raw).hexdigest(),
        "batch": None,
        "report_b64": base64.b64encode(raw).decode(),
    }


# -- forged, mis-roled, mis-keyed ------------------------------------------------------------


def test_a_landmark_signature_under_the_other_role_s_domain_is_refused() -> None:
    """The domain binds the role: a report signed as a chip report and labelled a mesh report
    (or the reverse) is a forgery, whatever else is right."""
    mesh_body = _body(target="lm-par", mesh=True, target_seed=PEER_SEED)
    chip_body = _body()
    for raw, role in (
        (_signed(mesh_body, mesh=False), Role.LANDMARK),
        (_signed(chip_body, mesh=True), Role.CHIP),
    ):
        for verify in (verify_report, verify_report_lazy):
            with pytest.raises(BadSignature) as info:
                verify(raw, _registry(), target_role=role)
            assert str(info.value) == "landmark 'lm-fra' signature over the report does not verify"
            assert info.value.reason == "bad_signature"


def test_a_peer_answer_signed_as_a_chip_answer_is_refused() -> None:
    """A peer landmark's answer must carry the mesh domain; the chip domain's signature of the
    same probe is refused on the minimum probe, in full and lazily."""
    body = _body(target="lm-par", mesh=True, target_seed=PEER_SEED)
    swapped = _body(target="lm-par", mesh=False, target_seed=PEER_SEED)
    forged = _signed(swapped[:3] + b"\x08" + swapped[4:], mesh=True)
    assert len(forged) == len(_signed(body, mesh=True))
    for verify in (verify_report, verify_report_lazy):
        with pytest.raises(BadSignature) as info:
            verify(forged, _registry(), target_role=Role.LANDMARK)
        assert info.value.reason == "bad_chip_signature"


def test_a_report_of_the_other_role_is_refused_naming_both() -> None:
    chip_raw = _signed(_body())
    mesh_raw = _signed(_body(target="lm-par", mesh=True, target_seed=PEER_SEED), mesh=True)
    for verify in (verify_report, verify_report_lazy):
        with pytest.raises(DecodeError) as info:
            verify(chip_raw, _registry(), target_role=Role.LANDMARK)
        assert str(info.value) == "a report on a chip, expected one on a landmark"
        assert info.value.reason == "wrong_role"
        with pytest.raises(DecodeError) as info:
            verify(mesh_raw, _registry())
        assert str(info.value) == "a report on a landmark, expected one on a chip"
        assert info.value.reason == "wrong_role"


def test_a_chip_answer_by_another_key_is_refused_naming_the_probe() -> None:
    raw = _signed(_body(target_seed=bytes([8]) * 32))  # a cloned id, another key
    for verify in (verify_report, verify_report_lazy):
        with pytest.raises(BadSignature) as info:
            verify(raw, _registry())
        # the minimum probe (seq 2) is checked first lazily; in full, seq 0 fails first
        seq = 0 if verify is verify_report else 2
        assert str(info.value) == f"chip 'chip-1' signature for probe seq {seq} does not verify"
        assert info.value.reason == "bad_chip_signature"


def test_a_mesh_report_on_an_unenrolled_peer_is_refused() -> None:
    raw = _signed(_body(target="lm-ghost", mesh=True, target_seed=PEER_SEED), mesh=True)
    with pytest.raises(UnknownIdentity) as info:
        verify_report(raw, _registry(), target_role=Role.LANDMARK)
    assert str(info.value) == "landmark 'lm-ghost' is not enrolled in the registry"


# -- malformed bytes: refused before any signature, saying what is wrong ---------------------

HELLO_VECTOR = bytes.fromhex(  # docs/protocol.md, "Test vectors"
    "c10c0101000102030405060708090a0b0c0d0e0f17979cfe362a0000066c6d2d"
    "66726106636869702d3122c65a6872aafb0204e4c3d91f06fab2f060549ca4f0"
    "a20c4bc3d65930f2d553c99dd12bc513c5f2ea4254e3c19e62ad9138a61dac89"
    "b8cf8b8b7882055e1003"
)
SIG = bytes(range(64))
N1, N2 = bytes(range(16)), bytes(range(1, 17))


@pytest.mark.parametrize(
    ("data", "message", "reason"),
    [
        (HELLO_VECTOR, "not a REPORT", "unexpected_type"),
        (_signed(_body(address=b"\xff:9")), "chip address is not UTF-8", "bad_field"),
        (
            _signed(_body(count=10_001)),
            "too many probes",
            "oversized",
        ),
        (
            _signed(_body(source=9)),
            "invalid report: tuple index out of range",
            "bad_field",
        ),
        (
            # a lost probe with a signature
            _signed(_body(lost_signature=SIG)),
            "invalid report: a lost probe has source 'none' and an all-zero signature",
            "bad_field",
        ),
        (
            # a lost probe said to be timed by the kernel
            _signed(_body(probes=[(0, N1, 5, 1), (1, N2, LOST, 1)], min_rtt=5, source=1)),
            "invalid report: a lost probe has source 'none' and an all-zero signature",
            "bad_field",
        ),
        (
            _signed(_body(probes=[(0, N1, 0, 1)], min_rtt=0, source=1, overhead=0)),
            "invalid report: rtt_ns must be a positive 64-bit integer or None",
            "bad_field",
        ),
        (
            _signed(_body(probes=[(0, N1, 5, 0)], min_rtt=5, source=0, overhead=0)),
            "invalid report: an answered probe's source is 'kernel' or 'userspace'",
            "bad_field",
        ),
        (
            _signed(_body(min_rtt=600_000)),
            "invalid report: min_rtt_ns is not the minimum of the probes' RTTs",
            "bad_field",
        ),
        (
            _signed(_body(overhead=700_001)),
            "invalid report: overhead lower bound exceeds the minimum RTT",
            "bad_field",
        ),
        (
            _signed(_body(source=1)),
            "invalid report: timestamp_source does not match the probes",
            "bad_field",
        ),
        (
            _signed(_body(probes=[(3, N1, 5, 1), (3, N2, 6, 1)], min_rtt=5, source=1, overhead=0)),
            "invalid report: probe sequence numbers must strictly increase",
            "bad_field",
        ),
        (
            _signed(_body(probes=[(0, N1, 5, 1), (1, N1, 6, 1)], min_rtt=5, source=1, overhead=0)),
            "invalid report: probe nonces must be distinct",
            "bad_field",
        ),
    ],
)
def test_malformed_report_bytes_are_refused_saying_what_is_wrong(
    data: bytes, message: str, reason: str
) -> None:
    for parse in (decode_report, lambda d: verify_report(d, _registry())):
        with pytest.raises(DecodeError) as info:
            parse(data)
        assert str(info.value) == message
        assert info.value.reason == reason


def test_a_report_of_the_most_probes_allowed_decodes() -> None:
    probes = [(seq, _u(seq, 16), LOST, 0) for seq in range(10_000)]
    raw = _signed(_body(probes=probes, min_rtt=None, source=0, overhead=0))
    report = verify_report(raw, _registry())
    assert (len(report.probes), report.min_rtt_ns, report.answered) == (10_000, None, 0)


# -- every field's range, as the constructor sees it ------------------------------------------


def _report(**over: Any) -> MeasurementReport:
    probe = ProbeRecord(seq=0, nonce=N1, rtt_ns=5, chip_signature=SIG, timestamp_source="kernel")
    fields: dict[str, Any] = {
        "landmark_id": "lm-fra",
        "chip_id": "chip-1",
        "session_id": SID,
        "chip_address": ADDRESS,
        "started_at_unix_ns": STARTED,
        "finished_at_unix_ns": FINISHED,
        "timestamp_source": "kernel",
        "probes": (probe,),
        "min_rtt_ns": 5,
    }
    fields.update(over)
    return MeasurementReport(**fields)


_ID_RULE = "must be 1-64 characters of [A-Za-z0-9._-], got"
_U64 = "must be a non-negative 64-bit integer"


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"landmark_id": "lm fra"}, f"landmark_id {_ID_RULE} 'lm fra'"),
        ({"chip_id": "chip/1"}, f"chip_id {_ID_RULE} 'chip/1'"),
        (
            {"chip_id": "lm-fra", "target_role": Role.LANDMARK},
            "a landmark does not measure itself",
        ),
        ({"session_id": bytes(15)}, "session_id must be 16 bytes"),
        ({"session_id": bytearray(16)}, "session_id must be 16 bytes"),
        ({"chip_address": "a" * 256}, "chip_address must be a string of at most 255 bytes"),
        ({"chip_address": "é" * 128}, "chip_address must be a string of at most 255 bytes"),
        ({"chip_address": b"127.0.0.1:9"}, "chip_address must be a string of at most 255 bytes"),
        ({"started_at_unix_ns": -1}, f"started_at_unix_ns {_U64}"),
        ({"started_at_unix_ns": True, "finished_at_unix_ns": 1}, f"started_at_unix_ns {_U64}"),
        ({"finished_at_unix_ns": 2**64 - 1}, f"finished_at_unix_ns {_U64}"),
        ({"finished_at_unix_ns": float(FINISHED)}, f"finished_at_unix_ns {_U64}"),
        ({"overhead_lower_bound_ns": -1}, f"overhead_lower_bound_ns {_U64}"),
        ({"finished_at_unix_ns": STARTED - 1}, "finished_at_unix_ns precedes started_at_unix_ns"),
        ({"probes": ()}, "a report has 1..10000 probes"),
        ({"probes": [_report().probes[0]]}, "a report has 1..10000 probes"),
        ({"overhead_lower_bound_ns": 6}, "overhead lower bound exceeds the minimum RTT"),
    ],
)
def test_each_report_field_is_checked_exactly(over: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as info:
        _report(**over)
    assert str(info.value) == message


def test_report_fields_at_the_edge_of_their_range_are_accepted() -> None:
    # A burst that starts and finishes in the same nanosecond; the largest 64-bit stamp.
    assert _report(started_at_unix_ns=STARTED, finished_at_unix_ns=STARTED).answered == 1
    assert _report(finished_at_unix_ns=2**64 - 2).finished_at_unix_ns == 2**64 - 2
    # An overhead bound equal to the minimum RTT (a zero-length distance bound, still sound).
    assert _report(overhead_lower_bound_ns=5).overhead_lower_bound_ns == 5
    assert _report(chip_address="a" * 255).chip_address == "a" * 255
    assert _report(chip_address="é" * 127 + "a").answered == 1  # 255 bytes of UTF-8
    # A chip may share its id with a landmark: the self-measurement rule is the mesh's.
    assert _report(chip_id="lm-fra").chip_id == "lm-fra"
    lost = ProbeRecord(
        seq=0, nonce=N1, rtt_ns=None, chip_signature=bytes(64), timestamp_source="none"
    )
    many = tuple(
        ProbeRecord(
            seq=i, nonce=_u(i, 16), rtt_ns=None, chip_signature=bytes(64), timestamp_source="none"
        )
        for i in range(10_000)
    )
    assert len(_report(probes=many, min_rtt_ns=None, timestamp_source="none").probes) == 10_000
    with pytest.raises(ValueError) as info:
        _report(probes=(*many, lost), min_rtt_ns=None, timestamp_source="none")
    assert str(info.value) == "a report has 1..10000 probes"
