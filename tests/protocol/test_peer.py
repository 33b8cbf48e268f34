"""The mesh role: a landmark answering a peer landmark's probes with its own landmark key.

Properties: the role is bound into every signature (type byte and domain), so a mesh answer
never passes as a chip's answer and a chip report never as a mesh report; the documented
test vectors hold.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from chiploc.common.errors import BadSignature, BindingError, DecodeError, UnknownIdentity
from chiploc.protocol import (
    ChipEntry,
    Hello,
    HelloAck,
    LandmarkEntry,
    PrivateKey,
    ProbeRecord,
    Registry,
    Response,
    Role,
    decode_datagram,
    decode_report,
    generate_private_key,
    response_message,
    sign_report,
    verify_hello,
    verify_hello_ack,
    verify_report,
    verify_response,
)

SID = bytes(range(16))
NONCE = bytes(range(16, 32))
ISSUED = 1_700_000_000_000_000_000
DOCS = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"

# Peer landmark "lm-par" with seed 0x05*32; the prober is "lm-fra" (seed 0x02*32).
PEER_VECTORS = {
    "peer_public_key": "6e7a1cdd29b0b78fd13af4c5598feff4ef2a97166e3ca6f2e4fbfccd80505bf1",
    "peer_hello": "c10c0106000102030405060708090a0b0c0d0e0f17979cfe362a0000066c6d2d667261066c6d2d"
    "706172ca7165819ea279a5050b4e3349e187b06c3abb123bf43603fd7734bc80713804d9ee375aee9f015fd978"
    "ce79d181eb1a58ee9f6889a14a69d3917d0e60d8300e",
    "peer_hello_ack": "c10c0107000102030405060708090a0b0c0d0e0f066c6d2d667261066c6d2d706172266e"
    "661ab5fca14938e9e579c683ac505a3bbc04692997182f61cefb45c068f98b4be80de9095b64b0fc1e530cc864"
    "76f11ef99c6516a332f56cde72102c0108",
    "peer_response_signed_message": "636869706c6f632f706565722d726573706f6e73652f76310000010203"
    "0405060708090a0b0c0d0e0f066c6d2d706172066c6d2d66726100000007101112131415161718191a1b1c1d1e"
    "1f",
    "peer_response": "c10c0104000102030405060708090a0b0c0d0e0f00000007174d028ffc15d77e9be8c207f5f"
    "4c0ba3fec705732b4205f85f5b305daa1848f1b98656b8bfd2dcb99c6f1c66a1541fac5df6d93a668b5d880c1d"
    "f0f23c6d708",
}


@pytest.fixture
def peer_key() -> PrivateKey:
    return generate_private_key(Role.LANDMARK, "lm-par", seed=bytes([5]) * 32)


@pytest.fixture
def mesh_registry(registry: Registry, peer_key: PrivateKey) -> Registry:
    entry = LandmarkEntry(
        id="lm-par", lat=48.86, lon=2.35, public_key=peer_key.public_key.key_bytes
    )
    return Registry(
        authority_public_key=registry.authority_public_key,
        landmarks={**registry.landmarks, "lm-par": entry},
        chips=registry.chips,
        verifiers=registry.verifiers,
    )


def _peer_hello(landmark_key: PrivateKey) -> Hello:
    return Hello.create(
        landmark_key,
        session_id=SID,
        chip_id="lm-par",
        issued_at_unix_ns=ISSUED,
        target_role=Role.LANDMARK,
    )


def test_peer_vectors(landmark_key: PrivateKey, peer_key: PrivateKey) -> None:
    assert peer_key.public_key.key_bytes.hex() == PEER_VECTORS["peer_public_key"]
    assert _peer_hello(landmark_key).to_bytes().hex() == PEER_VECTORS["peer_hello"]
    ack = HelloAck.create(peer_key, session_id=SID, landmark_id="lm-fra")
    assert ack.to_bytes().hex() == PEER_VECTORS["peer_hello_ack"]
    msg = response_message(
        session_id=SID,
        chip_id="lm-par",
        landmark_id="lm-fra",
        seq=7,
        nonce=NONCE,
        target_role=Role.LANDMARK,
    )
    assert msg.hex() == PEER_VECTORS["peer_response_signed_message"]
    response = Response(session_id=SID, seq=7, signature=peer_key.sign(msg))
    assert response.to_bytes().hex() == PEER_VECTORS["peer_response"]


def test_peer_vectors_are_the_ones_documented() -> None:
    text = re.sub(r"\s+", "", DOCS.read_text(encoding="utf-8"))
    for name, value in PEER_VECTORS.items():
        assert value in text, f"docs/protocol.md lacks the {name} vector"


def test_peer_messages_round_trip(landmark_key: PrivateKey, peer_key: PrivateKey) -> None:
    for message in (
        _peer_hello(landmark_key),
        HelloAck.create(peer_key, session_id=SID, landmark_id="lm-fra"),
    ):
        data = message.to_bytes()
        decoded = decode_datagram(data)
        assert decoded == message
        assert decoded.target_role is Role.LANDMARK  # type: ignore[union-attr]


def test_a_landmark_does_not_measure_itself(landmark_key: PrivateKey) -> None:
    with pytest.raises(ValueError, match="itself"):
        Hello.create(
            landmark_key,
            session_id=SID,
            chip_id="lm-fra",
            issued_at_unix_ns=ISSUED,
            target_role=Role.LANDMARK,
        )


def test_roles_do_not_cross_in_hellos(
    landmark_key: PrivateKey, chip_key: PrivateKey, mesh_registry: Registry
) -> None:
    peer_hello = _peer_hello(landmark_key)
    # the peer accepts its own role ...
    verify_hello(
        peer_hello,
        mesh_registry,
        chip_id="lm-par",
        now_unix_ns=ISSUED,
        max_skew_ns=1,
        target_role=Role.LANDMARK,
    )
    # ... but a chip agent named like the peer refuses a mesh hello
    with pytest.raises(BindingError) as info:
        verify_hello(peer_hello, mesh_registry, chip_id="lm-par", now_unix_ns=ISSUED, max_skew_ns=1)
    assert info.value.reason == "wrong_role"
    # and a chip hello is refused by a landmark agent
    chip_hello = Hello.create(
        landmark_key, session_id=SID, chip_id="lm-par", issued_at_unix_ns=ISSUED
    )
    with pytest.raises(BindingError):
        verify_hello(
            chip_hello,
            mesh_registry,
            chip_id="lm-par",
            now_unix_ns=ISSUED,
            max_skew_ns=1,
            target_role=Role.LANDMARK,
        )
    # the type byte is signed: flipping a PEER_HELLO into a HELLO breaks the signature
    flipped = bytearray(peer_hello.to_bytes())
    flipped[3] = 0x01
    with pytest.raises(BadSignature):
        verify_hello(
            Hello.from_bytes(bytes(flipped)),
            mesh_registry,
            chip_id="lm-par",
            now_unix_ns=ISSUED,
            max_skew_ns=1,
        )


def test_peer_ack_binds_the_role(
    peer_key: PrivateKey, chip_key: PrivateKey, mesh_registry: Registry
) -> None:
    ack = HelloAck.create(peer_key, session_id=SID, landmark_id="lm-fra")
    verify_hello_ack(ack, mesh_registry.landmark("lm-par"), session_id=SID, landmark_id="lm-fra")
    # the same key enrolled as a chip: the mesh ack does not count as a chip's ack
    as_chip = ChipEntry(id="lm-par", public_key=peer_key.public_key.key_bytes, region="*")
    with pytest.raises(BindingError):
        verify_hello_ack(ack, as_chip, session_id=SID, landmark_id="lm-fra")


def test_peer_response_is_not_a_chip_response(peer_key: PrivateKey) -> None:
    """Even with one key in both roles, a mesh answer never verifies as a chip's answer."""
    peer_msg = response_message(
        session_id=SID,
        chip_id="lm-par",
        landmark_id="lm-fra",
        seq=7,
        nonce=NONCE,
        target_role=Role.LANDMARK,
    )
    signature = peer_key.sign(peer_msg)
    args = {"session_id": SID, "chip_id": "lm-par", "landmark_id": "lm-fra", "seq": 7}
    verify_response(
        peer_key.public_key.key_bytes,
        nonce=NONCE,
        signature=signature,
        target_role=Role.LANDMARK,
        **args,  # type: ignore[arg-type]
    )
    with pytest.raises(BadSignature):
        verify_response(
            peer_key.public_key.key_bytes,
            nonce=NONCE,
            signature=signature,
            **args,  # type: ignore[arg-type]
        )


def _peer_report(landmark_key: PrivateKey, peer_key: PrivateKey, *, role: Role) -> bytes:
    probes = []
    for seq, rtt in enumerate((2_000_000, 1_500_000)):
        nonce = bytes([seq]) * 16
        msg = response_message(
            session_id=SID,
            chip_id=peer_key.id,
            landmark_id=landmark_key.id,
            seq=seq,
            nonce=nonce,
            target_role=role,
        )
        probes.append(
            ProbeRecord(
                seq=seq,
                nonce=nonce,
                rtt_ns=rtt,
                chip_signature=peer_key.sign(msg),
                timestamp_source="userspace",
            )
        )
    return sign_report(
        landmark_key,
        chip_id=peer_key.id,
        session_id=SID,
        chip_address="127.0.0.1:9",
        started_at_unix_ns=ISSUED,
        finished_at_unix_ns=ISSUED + 1,
        probes=probes,
        target_role=role,
    ).raw


def test_peer_report_verifies_only_as_a_mesh_report(
    landmark_key: PrivateKey, peer_key: PrivateKey, mesh_registry: Registry
) -> None:
    raw = _peer_report(landmark_key, peer_key, role=Role.LANDMARK)
    assert raw[3] == 0x08
    report = verify_report(raw, mesh_registry, target_role=Role.LANDMARK)
    assert (report.landmark_id, report.chip_id, report.min_rtt_ns) == (
        "lm-fra",
        "lm-par",
        1_500_000,
    )
    assert report.to_json_dict()["target_role"] == "landmark"
    with pytest.raises(DecodeError) as info:
        verify_report(raw, mesh_registry)  # the chip pipeline's call
    assert info.value.reason == "wrong_role"


def test_chip_report_is_not_a_mesh_report(
    landmark_key: PrivateKey, chip_key: PrivateKey, mesh_registry: Registry
) -> None:
    raw = _peer_report(landmark_key, chip_key, role=Role.CHIP)
    assert verify_report(raw, mesh_registry).target_role is Role.CHIP
    with pytest.raises(DecodeError) as info:
        verify_report(raw, mesh_registry, target_role=Role.LANDMARK)
    assert info.value.reason == "wrong_role"
    # relabelled as a mesh report (type byte 0x08): the landmark signature breaks
    forged = bytearray(raw)
    forged[3] = 0x08
    with pytest.raises((BadSignature, UnknownIdentity)):
        verify_report(bytes(forged), mesh_registry, target_role=Role.LANDMARK)
    assert decode_report(bytes(forged)).target_role is Role.LANDMARK
