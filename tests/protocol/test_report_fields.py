"""A report's probe records: every field's exact range, and what the JSON form shows."""

from __future__ import annotations

from typing import Any

import pytest

from chiploc.protocol._report import ProbeRecord

SIG = bytes(range(64))
NONCE = bytes(range(16))


def _probe(**over: Any) -> ProbeRecord:
    base: dict[str, Any] = {
        "seq": 0,
        "nonce": NONCE,
        "rtt_ns": 1,
        "chip_signature": SIG,
        "timestamp_source": "kernel",
    }
    base.update(over)
    return ProbeRecord(**base)


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"seq": -1}, "seq must be an unsigned 32-bit integer"),
        ({"seq": 2**32}, "seq must be an unsigned 32-bit integer"),
        ({"seq": True}, "seq must be an unsigned 32-bit integer"),
        ({"seq": 1.0}, "seq must be an unsigned 32-bit integer"),
        ({"nonce": bytes(15)}, "nonce must be 16 bytes"),
        ({"nonce": "00" * 16}, "nonce must be 16 bytes"),
        ({"chip_signature": bytes(63)}, "chip_signature must be 64 bytes"),
        ({"chip_signature": bytearray(64)}, "chip_signature must be 64 bytes"),
        ({"rtt_ns": 0}, "rtt_ns must be a positive 64-bit integer or None"),
        ({"rtt_ns": 2**64 - 1}, "rtt_ns must be a positive 64-bit integer or None"),
        ({"rtt_ns": True}, "rtt_ns must be a positive 64-bit integer or None"),
        ({"rtt_ns": 1.5}, "rtt_ns must be a positive 64-bit integer or None"),
        ({"timestamp_source": "none"}, "an answered probe's source is 'kernel' or 'userspace'"),
        ({"rtt_ns": None}, "a lost probe has source 'none' and an all-zero signature"),
        (
            {"rtt_ns": None, "timestamp_source": "none"},
            "a lost probe has source 'none' and an all-zero signature",
        ),
    ],
)
def test_each_probe_field_is_checked_exactly(over: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as info:
        _probe(**over)
    assert str(info.value) == message


def test_probe_bounds_are_inclusive_where_the_wire_allows() -> None:
    assert _probe(seq=2**32 - 1).seq == 2**32 - 1
    assert _probe(rtt_ns=2**64 - 2).rtt_ns == 2**64 - 2
    assert _probe(timestamp_source="userspace").timestamp_source == "userspace"


def test_probe_json_shows_the_signature_only_for_answers() -> None:
    answered = _probe(seq=7, rtt_ns=1234)
    assert answered.to_json_dict() == {
        "seq": 7,
        "nonce": NONCE.hex(),
        "rtt_ns": 1234,
        "timestamp_source": "kernel",
        "chip_signature": SIG.hex(),
    }
    lost = _probe(rtt_ns=None, timestamp_source="none", chip_signature=bytes(64))
    assert lost.lost
    assert lost.to_json_dict() == {
        "seq": 0,
        "nonce": NONCE.hex(),
        "rtt_ns": None,
        "timestamp_source": "none",
        "chip_signature": None,
    }
