from __future__ import annotations

import contextlib
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chiploc import protocol
from chiploc.common.errors import (
    BadSignature,
    BindingError,
    DecodeError,
    RevokedIdentity,
    StaleMessage,
    UnknownIdentity,
)
from chiploc.protocol import (
    MAX_DATAGRAM_BYTES,
    ChipEntry,
    Hello,
    HelloAck,
    PrivateKey,
    Probe,
    Registry,
    Response,
    Role,
    decode_datagram,
    generate_private_key,
    response_message,
    verify_hello,
    verify_hello_ack,
    verify_response,
)

SID = bytes(range(16))
NONCE = bytes(range(16, 32))
ISSUED = 1_700_000_000_000_000_000
DOCS = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"

# Test vectors (also printed in docs/protocol.md): landmark "lm-fra" seed 0x02*32,
# chip "chip-1" seed 0x03*32, session id 00..0f, nonce 10..1f, seq 7, issued_at 1.7e18 ns.
VECTORS = {
    "landmark_public_key": "8139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394",
    "chip_public_key": "ed4928c628d1c2c6eae90338905995612959273a5c63f93636c14614ac8737d1",
    "hello": "c10c0101000102030405060708090a0b0c0d0e0f17979cfe362a0000066c6d2d66726106636869702d31"
    "22c65a6872aafb0204e4c3d91f06fab2f060549ca4f0a20c4bc3d65930f2d553c99dd12bc513c5f2ea4254e3c1"
    "9e62ad9138a61dac89b8cf8b8b7882055e1003",
    "hello_ack": "c10c0102000102030405060708090a0b0c0d0e0f066c6d2d66726106636869702d3171a928016a"
    "dbc9779f5d0418bf5553dc4130ff5ad303d5058a51216207af3eb0d527487a065e7e137f3259c6ff3cdb7e5674"
    "a6116da8cb18ab45afcc895d3f0d",
    "probe": "c10c0103000102030405060708090a0b0c0d0e0f00000007101112131415161718191a1b1c1d1e1f",
    "response_signed_message": "636869706c6f632f726573706f6e73652f763100000102030405060708090a0b"
    "0c0d0e0f06636869702d31066c6d2d66726100000007101112131415161718191a1b1c1d1e1f",
    "response": "c10c0104000102030405060708090a0b0c0d0e0f00000007810d13f2aeb7ece4ca1963f837966e81"
    "abdd1c9f942b2e22ffece833a6862eaaec60635cf274cff36343691ed508b17429b6088ccf08ac1caa935eb1a2"
    "38c803",
}


def _hello(landmark_key: PrivateKey, **kw: object) -> Hello:
    args: dict[str, object] = {"session_id": SID, "chip_id": "chip-1", "issued_at_unix_ns": ISSUED}
    args.update(kw)
    return Hello.create(landmark_key, **args)  # type: ignore[arg-type]


def test_vectors(landmark_key: PrivateKey, chip_key: PrivateKey) -> None:
    assert landmark_key.public_key.key_bytes.hex() == VECTORS["landmark_public_key"]
    assert chip_key.public_key.key_bytes.hex() == VECTORS["chip_public_key"]
    assert _hello(landmark_key).to_bytes().hex() == VECTORS["hello"]
    ack = HelloAck.create(chip_key, session_id=SID, landmark_id="lm-fra")
    assert ack.to_bytes().hex() == VECTORS["hello_ack"]
    assert Probe(session_id=SID, seq=7, nonce=NONCE).to_bytes().hex() == VECTORS["probe"]
    msg = response_message(
        session_id=SID, chip_id="chip-1", landmark_id="lm-fra", seq=7, nonce=NONCE
    )
    assert msg.hex() == VECTORS["response_signed_message"]
    response = Response(session_id=SID, seq=7, signature=chip_key.sign(msg))
    assert response.to_bytes().hex() == VECTORS["response"]


def test_vectors_are_the_ones_documented() -> None:
    text = re.sub(r"\s+", "", DOCS.read_text(encoding="utf-8"))
    for name, value in VECTORS.items():
        assert value in text, f"docs/protocol.md lacks the {name} vector"


def test_round_trips(landmark_key: PrivateKey, chip_key: PrivateKey) -> None:
    messages = [
        _hello(landmark_key),
        HelloAck.create(chip_key, session_id=SID, landmark_id="lm-fra"),
        Probe(session_id=SID, seq=2**32 - 1, nonce=NONCE),
        Response(session_id=SID, seq=0, signature=bytes(64)),
    ]
    for message in messages:
        data = message.to_bytes()
        assert decode_datagram(data) == message
        assert type(message).from_bytes(data) == message
        assert len(data) <= MAX_DATAGRAM_BYTES


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "truncated"),
        (b"\xc1\x0c\x01", "truncated"),
        (b"\xc1\x0c\x01\x03" + bytes(10), "truncated"),
        (b"\xc1\x0c\x01\x03" + bytes(37), "trailing_bytes"),
        (b"XX\x01\x03" + bytes(36), "bad_magic"),
        (b"\xc1\x0c\x02\x03" + bytes(36), "wrong_version"),
        (b"\xc1\x0c\x01\x7f" + bytes(36), "unknown_type"),
        (b"\xc1\x0c\x01\x05" + bytes(36), "unknown_type"),  # a REPORT is not a datagram
        (b"\xc1\x0c\x01\x03" + bytes(600), "oversized"),
        (b"\xc1\x0c\x01\x01" + bytes(24) + b"\x00" + bytes(70), "bad_field"),  # empty id
        (b"\xc1\x0c\x01\x01" + bytes(24) + b"\x01\xff" + bytes(70), "bad_field"),  # non-ASCII
    ],
)
def test_decode_errors(data: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as info:
        decode_datagram(data)
    assert info.value.reason == reason


@given(st.binary(max_size=700))
def test_random_bytes_only_raise_decode_error(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decode_datagram(data)


@given(
    st.sampled_from(["hello", "hello_ack", "probe", "response"]),
    st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), min_size=1, max_size=4),
    st.integers(-3, 3),
)
def test_mutated_messages_only_raise_decode_error(
    kind: str, edits: list[tuple[int, int]], resize: int
) -> None:
    data = bytearray(bytes.fromhex(VECTORS[kind]))
    for pos, value in edits:
        data[pos % len(data)] = value
    if resize > 0:
        data += bytes(resize)
    elif resize < 0:
        del data[resize:]
    with contextlib.suppress(DecodeError):
        decode_datagram(bytes(data))


@given(st.integers(0, 105), st.integers(1, 255))
def test_mutated_hello_never_verifies(pos: int, xor: int) -> None:
    landmark = generate_private_key(Role.LANDMARK, "lm-fra", seed=bytes([2]) * 32)
    data = bytearray(bytes.fromhex(VECTORS["hello"]))
    data[pos] ^= xor
    try:
        hello = Hello.from_bytes(bytes(data))
    except DecodeError:
        return
    with pytest.raises(BadSignature):
        landmark.public_key.verify(hello.signed_message(), hello.signature)


@given(st.integers(0, 87), st.integers(1, 255))
def test_mutated_response_never_verifies(pos: int, xor: int) -> None:
    chip = bytes.fromhex(VECTORS["chip_public_key"])
    data = bytearray(bytes.fromhex(VECTORS["response"]))
    data[pos] ^= xor
    try:
        response = Response.from_bytes(bytes(data))
    except DecodeError:
        return
    with pytest.raises(BadSignature):
        verify_response(
            chip,
            session_id=response.session_id,
            chip_id="chip-1",
            landmark_id="lm-fra",
            seq=response.seq,
            nonce=NONCE,
            signature=response.signature,
        )


def test_verify_hello_accepts_good(registry: Registry, landmark_key: PrivateKey) -> None:
    entry = verify_hello(
        _hello(landmark_key), registry, chip_id="chip-1", now_unix_ns=ISSUED, max_skew_ns=10**9
    )
    assert entry.id == "lm-fra"


def test_verify_hello_failures(registry: Registry, landmark_key: PrivateKey) -> None:
    good = _hello(landmark_key)
    kw = {"chip_id": "chip-1", "now_unix_ns": ISSUED, "max_skew_ns": 10**9}
    with pytest.raises(BindingError) as info:
        verify_hello(good, registry, **{**kw, "chip_id": "chip-2"})  # type: ignore[arg-type]
    assert info.value.reason == "wrong_chip"
    with pytest.raises(StaleMessage):
        verify_hello(good, registry, **{**kw, "now_unix_ns": ISSUED + 2 * 10**9})  # type: ignore[arg-type]
    with pytest.raises(StaleMessage):
        verify_hello(good, registry, **{**kw, "now_unix_ns": ISSUED - 2 * 10**9})  # type: ignore[arg-type]
    impostor = generate_private_key(Role.LANDMARK, "lm-fra", seed=bytes([9]) * 32)
    with pytest.raises(BadSignature):
        verify_hello(_hello(impostor), registry, **kw)  # type: ignore[arg-type]
    stranger = generate_private_key(Role.LANDMARK, "lm-xxx", seed=bytes([9]) * 32)
    with pytest.raises(UnknownIdentity):
        verify_hello(_hello(stranger), registry, **kw)  # type: ignore[arg-type]
    with pytest.raises(RevokedIdentity):
        verify_hello(good, registry.with_revoked("lm-fra"), **kw)  # type: ignore[arg-type]
    forged = Hello(
        session_id=good.session_id,
        issued_at_unix_ns=good.issued_at_unix_ns + 1,  # re-dated, old signature
        landmark_id="lm-fra",
        chip_id="chip-1",
        signature=good.signature,
    )
    with pytest.raises(BadSignature):
        verify_hello(forged, registry, **kw)  # type: ignore[arg-type]


def test_hello_ack_failures(registry: Registry, chip_key: PrivateKey) -> None:
    chip: ChipEntry = registry.chip("chip-1")
    ack = HelloAck.create(chip_key, session_id=SID, landmark_id="lm-fra")
    verify_hello_ack(ack, chip, session_id=SID, landmark_id="lm-fra")
    with pytest.raises(BindingError):
        verify_hello_ack(ack, chip, session_id=bytes(16), landmark_id="lm-fra")
    with pytest.raises(BindingError):
        verify_hello_ack(ack, chip, session_id=SID, landmark_id="lm-ber")
    other = generate_private_key(Role.CHIP, "chip-1", seed=bytes([8]) * 32)
    with pytest.raises(BadSignature):
        verify_hello_ack(
            HelloAck.create(other, session_id=SID, landmark_id="lm-fra"),
            chip,
            session_id=SID,
            landmark_id="lm-fra",
        )


@pytest.mark.parametrize("field", ["session_id", "chip_id", "landmark_id", "seq", "nonce"])
def test_response_signature_binds_every_field(chip_key: PrivateKey, field: str) -> None:
    base: dict[str, object] = {
        "session_id": SID, "chip_id": "chip-1", "landmark_id": "lm-fra", "seq": 7, "nonce": NONCE,
    }  # fmt: skip
    signature = chip_key.sign(response_message(**base))  # type: ignore[arg-type]
    verify_response(chip_key.public_key.key_bytes, signature=signature, **base)  # type: ignore[arg-type]
    changed = {
        "session_id": bytes(16), "chip_id": "chip-2", "landmark_id": "lm-ber", "seq": 8,
        "nonce": bytes(16),
    }  # fmt: skip
    with pytest.raises(BadSignature):
        verify_response(
            chip_key.public_key.key_bytes,
            signature=signature,
            **{**base, field: changed[field]},  # type: ignore[arg-type]
        )


def test_domain_separation(landmark_key: PrivateKey) -> None:
    """A hello signature is not valid as a report or registry signature over the same body."""
    hello = _hello(landmark_key)
    body = hello.signed_message().removeprefix(protocol.HELLO_DOMAIN)
    for domain in (protocol.REPORT_DOMAIN, protocol.REGISTRY_DOMAIN, protocol.RESPONSE_DOMAIN):
        with pytest.raises(BadSignature):
            landmark_key.public_key.verify(domain + body, hello.signature)


def test_exported_names() -> None:
    documented = {
        "Role", "PrivateKey", "PublicKey", "generate_private_key", "load_private_key",
        "load_public_key", "write_keypair", "Registry", "LandmarkEntry", "ChipEntry",
        "VerifierEntry", "load_registry", "MeasurementReport", "verify_report",
    }  # fmt: skip
    assert documented <= set(protocol.__all__)
    for name in protocol.__all__:
        assert hasattr(protocol, name)
