from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chiploc.common.errors import BadSignature, DecodeError, RevokedIdentity, UnknownIdentity
from chiploc.protocol import (
    MeasurementReport,
    PrivateKey,
    ProbeRecord,
    Registry,
    Role,
    decode_report,
    generate_private_key,
    response_message,
    sign_report,
    verify_report,
)

SID = bytes(range(16))


def _probes(
    chip_key: PrivateKey, rtts: list[int | None], *, landmark: str = "lm-fra"
) -> list[ProbeRecord]:
    out = []
    for seq, rtt in enumerate(rtts):
        nonce = bytes([seq]) * 16
        if rtt is None:
            out.append(
                ProbeRecord(
                    seq=seq,
                    nonce=nonce,
                    rtt_ns=None,
                    chip_signature=bytes(64),
                    timestamp_source="none",
                )
            )
            continue
        msg = response_message(
            session_id=SID, chip_id=chip_key.id, landmark_id=landmark, seq=seq, nonce=nonce
        )
        out.append(
            ProbeRecord(
                seq=seq,
                nonce=nonce,
                rtt_ns=rtt,
                chip_signature=chip_key.sign(msg),
                timestamp_source="kernel" if seq % 2 == 0 else "userspace",
            )
        )
    return out


def _report(
    landmark_key: PrivateKey, chip_key: PrivateKey, rtts: list[int | None]
) -> MeasurementReport:
    return sign_report(
        landmark_key,
        chip_id=chip_key.id,
        session_id=SID,
        chip_address="127.0.0.1:9",
        started_at_unix_ns=1_700_000_000_000_000_000,
        finished_at_unix_ns=1_700_000_000_100_000_000,
        probes=_probes(chip_key, rtts),
    )


def test_sign_and_verify(
    registry: Registry, landmark_key: PrivateKey, chip_key: PrivateKey
) -> None:
    report = _report(landmark_key, chip_key, [900_000, None, 700_000, 800_000])
    verified = verify_report(report.raw, registry)
    assert verified == report
    assert verified.min_rtt_ns == 700_000
    assert verified.timestamp_source == "mixed"
    assert verified.answered == 3
    assert verified.overhead_lower_bound_ns == 0
    assert all(verified.min_rtt_ns <= p.rtt_ns for p in verified.probes if p.rtt_ns is not None)
    assert len(verified.digest_hex) == 64
    doc = verified.to_json_dict()
    assert doc["probes"][1]["rtt_ns"] is None
    assert doc["min_rtt_ns"] == 700_000


def test_all_lost_report(
    registry: Registry, landmark_key: PrivateKey, chip_key: PrivateKey
) -> None:
    report = verify_report(_report(landmark_key, chip_key, [None, None]).raw, registry)
    assert report.min_rtt_ns is None
    assert report.timestamp_source == "none"


def test_landmark_signature_failure(registry: Registry, chip_key: PrivateKey) -> None:
    impostor = generate_private_key(Role.LANDMARK, "lm-fra", seed=b"\x09" * 32)
    report = _report(impostor, chip_key, [1000])
    with pytest.raises(BadSignature) as info:
        verify_report(report.raw, registry)
    assert info.value.reason == "bad_signature"


def test_chip_signature_failure(registry: Registry, landmark_key: PrivateKey) -> None:
    """The landmark signs honestly over a response the enrolled chip never made."""
    other_chip = generate_private_key(Role.CHIP, "chip-1", seed=b"\x08" * 32)
    report = _report(landmark_key, other_chip, [1000, 2000])
    with pytest.raises(BadSignature) as info:
        verify_report(report.raw, registry)
    assert info.value.reason == "bad_chip_signature"
    assert "seq 0" in str(info.value)


def test_unknown_and_revoked(
    registry: Registry, landmark_key: PrivateKey, chip_key: PrivateKey
) -> None:
    raw = _report(landmark_key, chip_key, [1000]).raw
    with pytest.raises(RevokedIdentity):
        verify_report(raw, registry.with_revoked("chip-1"))
    with pytest.raises(RevokedIdentity):
        verify_report(raw, registry.with_revoked("lm-fra"))
    stranger = generate_private_key(Role.CHIP, "chip-9", seed=b"\x07" * 32)
    with pytest.raises(UnknownIdentity):
        verify_report(_report(landmark_key, stranger, [1000]).raw, registry)


def _offset_of_min(raw: bytes) -> int:
    # header 4 | session 16 | "lm-fra" 7 | "chip-1" 7 | address 1+11 | started 8 | finished 8 |
    # source 1 | overhead 8 | min 8
    return 4 + 16 + 7 + 7 + 12 + 8 + 8 + 1 + 8


def test_recomputed_fields_are_not_trusted(
    registry: Registry, landmark_key: PrivateKey, chip_key: PrivateKey
) -> None:
    raw = bytearray(_report(landmark_key, chip_key, [900, 700]).raw)
    off = _offset_of_min(bytes(raw))
    assert struct.unpack_from(">Q", raw, off)[0] == 700
    struct.pack_into(">Q", raw, off, 500)  # a smaller minimum than any probe
    with pytest.raises(DecodeError, match="minimum"):
        verify_report(bytes(raw), registry)
    raw = bytearray(_report(landmark_key, chip_key, [900, 700]).raw)
    struct.pack_into(">Q", raw, off - 8, 800)  # overhead bound larger than the minimum
    with pytest.raises(DecodeError, match="overhead"):
        verify_report(bytes(raw), registry)


def test_tampered_rtt_breaks_landmark_signature(
    registry: Registry, landmark_key: PrivateKey, chip_key: PrivateKey
) -> None:
    report = _report(landmark_key, chip_key, [900])
    raw = bytearray(report.raw)
    rtt_offset = _offset_of_min(report.raw) + 8 + 2 + 4 + 16
    assert struct.unpack_from(">Q", raw, rtt_offset)[0] == 900
    struct.pack_into(">Q", raw, rtt_offset + 0, 1)
    struct.pack_into(">Q", raw, _offset_of_min(report.raw), 1)
    with pytest.raises(BadSignature):
        verify_report(bytes(raw), registry)


@given(st.binary(max_size=400))
def test_random_bytes_decode_error_only(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decode_report(data)


@given(st.integers(0, 10_000), st.integers(1, 255))
def test_mutated_report_never_verifies(pos: int, xor: int) -> None:
    authority = generate_private_key(Role.AUTHORITY, "authority", seed=bytes([1]) * 32)
    landmark = generate_private_key(Role.LANDMARK, "lm-fra", seed=bytes([2]) * 32)
    chip = generate_private_key(Role.CHIP, "chip-1", seed=bytes([3]) * 32)
    from chiploc.protocol import ChipEntry, LandmarkEntry

    registry = Registry(
        authority_public_key=authority.public_key.key_bytes,
        landmarks={
            "lm-fra": LandmarkEntry(
                id="lm-fra", lat=0, lon=0, public_key=landmark.public_key.key_bytes
            )
        },
        chips={"chip-1": ChipEntry(id="chip-1", public_key=chip.public_key.key_bytes, region="r")},
    )
    raw = bytearray(_report(landmark, chip, [900, None, 700]).raw)
    raw[pos % len(raw)] ^= xor
    with pytest.raises((DecodeError, BadSignature, UnknownIdentity)):
        verify_report(bytes(raw), registry)


def test_probe_record_validation() -> None:
    with pytest.raises(ValueError, match="lost probe"):
        ProbeRecord(
            seq=0,
            nonce=bytes(16),
            rtt_ns=None,
            chip_signature=b"\x01" * 64,
            timestamp_source="none",
        )
    with pytest.raises(ValueError, match="positive"):
        ProbeRecord(
            seq=0, nonce=bytes(16), rtt_ns=0, chip_signature=b"\x01" * 64, timestamp_source="kernel"
        )


def test_report_invariants(landmark_key: PrivateKey, chip_key: PrivateKey) -> None:
    probes = _probes(chip_key, [900, 700])
    with pytest.raises(ValueError, match="strictly increase"):
        sign_report(
            landmark_key,
            chip_id="chip-1",
            session_id=SID,
            chip_address="a",
            started_at_unix_ns=0,
            finished_at_unix_ns=1,
            probes=probes[::-1],
        )
    with pytest.raises(ValueError, match="precedes"):
        sign_report(
            landmark_key,
            chip_id="chip-1",
            session_id=SID,
            chip_address="a",
            started_at_unix_ns=2,
            finished_at_unix_ns=1,
            probes=probes,
        )
