"""The agent driven in memory (fake transport, fake clocks): one test per drop reason."""

from __future__ import annotations

from typing import Any

import pytest

from chiploc.chip_agent import AgentLimits, ChipAgent
from chiploc.common.errors import BadSignature
from chiploc.protocol import (
    Hello,
    PrivateKey,
    Probe,
    Registry,
    Role,
    generate_private_key,
    response_message,
    verify_response,
)

NOW = 1_700_000_000_000_000_000
LM_ADDR = ("192.0.2.1", 4000)


class FakeTransport:
    def __init__(self) -> None:
        self.sent: list[tuple[bytes, Any]] = []

    def sendto(self, data: bytes, addr: Any) -> None:
        self.sent.append((data, addr))

    def close(self) -> None:
        pass

    def get_extra_info(self, name: str) -> Any:
        return ("127.0.0.1", 1)


class Clock:
    def __init__(self) -> None:
        self.mono = 10**12

    def __call__(self) -> int:
        return self.mono


def make_agent(
    chip_key: PrivateKey, registry: Registry, limits: AgentLimits | None = None
) -> tuple[ChipAgent, FakeTransport, Clock]:
    clock = Clock()
    agent = ChipAgent(chip_key, registry, limits=limits, clock_ns=clock, wall_clock_ns=lambda: NOW)
    transport = FakeTransport()
    agent.connection_made(transport)  # type: ignore[arg-type]
    return agent, transport, clock


def hello(key: PrivateKey, sid: bytes = b"S" * 16, *, chip: str = "chip-1", at: int = NOW) -> bytes:
    return Hello.create(key, session_id=sid, chip_id=chip, issued_at_unix_ns=at).to_bytes()


def probe(seq: int, sid: bytes = b"S" * 16, nonce: bytes = b"N" * 16) -> bytes:
    return Probe(session_id=sid, seq=seq, nonce=nonce).to_bytes()


def test_hello_then_probe_is_answered_with_a_valid_signature(
    chip_key: PrivateKey, landmark_key: PrivateKey, registry: Registry
) -> None:
    agent, transport, _ = make_agent(chip_key, registry)
    agent.datagram_received(hello(landmark_key), LM_ADDR)
    assert len(transport.sent) == 1  # the signed hello-ack
    agent.datagram_received(probe(0), LM_ADDR)
    data, addr = transport.sent[-1]
    assert addr == LM_ADDR
    assert len(data) == 88
    verify_response(
        chip_key.public_key.key_bytes,
        session_id=b"S" * 16,
        chip_id="chip-1",
        landmark_id="lm-fra",
        seq=0,
        nonce=b"N" * 16,
        signature=data[24:],
    )
    assert agent.counters["answered"] == 1
    assert response_message(
        session_id=b"S" * 16, chip_id="chip-1", landmark_id="lm-fra", seq=0, nonce=b"N" * 16
    )


def _drops(agent: ChipAgent) -> dict[str, int]:
    not_drops = ("answered", "sessions_opened", "hello_acks_resent")
    return {k: v for k, v in agent.counters.items() if k not in not_drops}


@pytest.mark.parametrize(
    ("datagram", "reason"),
    [
        (b"\xc1\x0c\x01", "truncated"),
        (b"\xc1\x0c\x01\x03" + bytes(30), "truncated"),
        (b"\xc1\x0c\x01\x01" + bytes(600), "oversized"),
        (b"\xc1\x0c\x09\x01" + bytes(100), "wrong_version"),
        (b"GET / HTTP/1.1\r\n", "bad_magic"),
        (b"\xc1\x0c\x01\x42" + bytes(30), "unknown_type"),
        (b"\xc1\x0c\x01\x04" + bytes(84), "unexpected_type"),
    ],
)
def test_malformed_datagrams_are_counted(
    chip_key: PrivateKey, registry: Registry, datagram: bytes, reason: str
) -> None:
    agent, transport, _ = make_agent(chip_key, registry)
    agent.datagram_received(datagram, LM_ADDR)
    assert _drops(agent) == {reason: 1}
    assert transport.sent == []


def test_unknown_landmark(chip_key: PrivateKey, registry: Registry) -> None:
    agent, transport, _ = make_agent(chip_key, registry)
    stranger = generate_private_key(Role.LANDMARK, "lm-evil", seed=b"\x0e" * 32)
    agent.datagram_received(hello(stranger), LM_ADDR)
    assert _drops(agent) == {"unknown_identity": 1}
    assert transport.sent == []


def test_revoked_landmark(
    chip_key: PrivateKey, landmark_key: PrivateKey, registry: Registry
) -> None:
    agent, _transport, _ = make_agent(chip_key, registry.with_revoked("lm-fra"))
    agent.datagram_received(hello(landmark_key), LM_ADDR)
    assert _drops(agent) == {"revoked": 1}


def test_bad_signature(chip_key: PrivateKey, registry: Registry) -> None:
    agent, transport, _ = make_agent(chip_key, registry)
    impostor = generate_private_key(Role.LANDMARK, "lm-fra", seed=b"\x0e" * 32)
    agent.datagram_received(hello(impostor), LM_ADDR)
    assert _drops(agent) == {"bad_signature": 1}
    agent.datagram_received(probe(0), LM_ADDR)  # and no session was opened
    assert _drops(agent) == {"bad_signature": 1, "no_session": 1}
    assert transport.sent == []


def test_stale_hello(chip_key: PrivateKey, landmark_key: PrivateKey, registry: Registry) -> None:
    agent, _transport, _ = make_agent(chip_key, registry)
    agent.datagram_received(hello(landmark_key, at=NOW - 60 * 10**9), LM_ADDR)
    assert _drops(agent) == {"stale": 1}


def test_hello_for_another_chip(
    chip_key: PrivateKey, landmark_key: PrivateKey, registry: Registry
) -> None:
    agent, _, _ = make_agent(chip_key, registry)
    agent.datagram_received(hello(landmark_key, chip="chip-2"), LM_ADDR)
    assert _drops(agent) == {"wrong_chip": 1}


def test_replayed_hello(chip_key: PrivateKey, landmark_key: PrivateKey, registry: Registry) -> None:
    agent, transport, _ = make_agent(chip_key, registry)
    data = hello(landmark_key)
    agent.datagram_received(data, LM_ADDR)
    agent.datagram_received(data, ("198.51.100.7", 5))  # an attacker replays it from elsewhere
    assert _drops(agent) == {"replayed": 1}
    agent.datagram_received(probe(0), ("198.51.100.7", 5))
    assert _drops(agent) == {"replayed": 1, "wrong_source": 1}
    assert len(transport.sent) == 1


def test_replayed_and_reordered_probes(
    chip_key: PrivateKey, landmark_key: PrivateKey, registry: Registry
) -> None:
    agent, _transport, _ = make_agent(chip_key, registry)
    agent.datagram_received(hello(landmark_key), LM_ADDR)
    agent.datagram_received(probe(5), LM_ADDR)
    agent.datagram_received(probe(5), LM_ADDR)
    agent.datagram_received(probe(3), LM_ADDR)
    assert _drops(agent) == {"replayed": 2}
    assert agent.counters["answered"] == 1


def test_wrong_source(chip_key: PrivateKey, landmark_key: PrivateKey, registry: Registry) -> None:
    agent, transport, _ = make_agent(chip_key, registry)
    agent.datagram_received(hello(landmark_key), LM_ADDR)
    agent.datagram_received(probe(0), ("192.0.2.1", 4001))
    assert _drops(agent) == {"wrong_source": 1}
    assert len(transport.sent) == 1


def test_probe_without_session(chip_key: PrivateKey, registry: Registry) -> None:
    agent, transport, _ = make_agent(chip_key, registry)
    agent.datagram_received(probe(0), LM_ADDR)
    assert _drops(agent) == {"no_session": 1}
    assert transport.sent == []


def test_session_expires(
    chip_key: PrivateKey, landmark_key: PrivateKey, registry: Registry
) -> None:
    limits = AgentLimits(session_lifetime_ns=10**9)
    agent, _transport, clock = make_agent(chip_key, registry, limits)
    agent.datagram_received(hello(landmark_key), LM_ADDR)
    clock.mono += 2 * 10**9
    agent.datagram_received(probe(0), LM_ADDR)
    assert _drops(agent) == {"stale": 1}
    agent.datagram_received(probe(1), LM_ADDR)
    assert _drops(agent) == {"stale": 1, "no_session": 1}


def test_probe_budget(chip_key: PrivateKey, landmark_key: PrivateKey, registry: Registry) -> None:
    agent, _, _ = make_agent(chip_key, registry, AgentLimits(max_probes_per_session=2))
    agent.datagram_received(hello(landmark_key), LM_ADDR)
    for seq in range(3):
        agent.datagram_received(probe(seq), LM_ADDR)
    assert agent.counters["answered"] == 2
    assert _drops(agent) == {"stale": 1}


def test_rate_limit_per_landmark(
    chip_key: PrivateKey, landmark_key: PrivateKey, registry: Registry
) -> None:
    limits = AgentLimits(probe_rate_per_s=1000.0, probe_burst=3.0)
    agent, _, clock = make_agent(chip_key, registry, limits)
    agent.datagram_received(hello(landmark_key), LM_ADDR)  # spends one token
    for seq in range(4):
        agent.datagram_received(probe(seq), LM_ADDR)
    assert agent.counters["answered"] == 2
    assert _drops(agent) == {"rate_limited": 2}
    clock.mono += 1_000_000  # 1 ms refills one token at 1000/s
    agent.datagram_received(probe(10), LM_ADDR)
    assert agent.counters["answered"] == 3
    # a second session from the same landmark shares the bucket
    agent.datagram_received(hello(landmark_key, b"T" * 16), LM_ADDR)
    assert _drops(agent)["rate_limited"] == 3


def test_rejects_a_key_that_cannot_answer(registry: Registry) -> None:
    verifier_key = generate_private_key(Role.VERIFIER, "ver-1", seed=bytes([4]) * 32)
    with pytest.raises(ValueError, match="chip or landmark key"):
        ChipAgent(verifier_key, registry)


def test_many_agents_are_independent(
    chip_key: PrivateKey, landmark_key: PrivateKey, registry: Registry
) -> None:
    a, _ta, _ = make_agent(chip_key, registry)
    b, _tb, _ = make_agent(chip_key, registry)
    a.datagram_received(hello(landmark_key), LM_ADDR)
    b.datagram_received(probe(0), LM_ADDR)
    assert _drops(b) == {"no_session": 1}
    assert _drops(a) == {}


# -- HELLO retransmission: a copy during set-up is re-acknowledged, never a second session


def test_retransmitted_hello_during_set_up_is_re_acked(
    chip_key: PrivateKey, landmark_key: PrivateKey, registry: Registry
) -> None:
    agent, transport, _ = make_agent(chip_key, registry)
    data = hello(landmark_key)
    agent.datagram_received(data, LM_ADDR)
    agent.datagram_received(data, LM_ADDR)  # the landmark did not get the first ack
    agent.datagram_received(data, LM_ADDR)
    assert [a for _, a in transport.sent] == [LM_ADDR] * 3
    assert transport.sent[0][0] == transport.sent[1][0] == transport.sent[2][0]  # same ack
    assert agent.live_sessions == 1
    assert agent.counters["sessions_opened"] == 1
    assert agent.counters["hello_acks_resent"] == 2
    assert _drops(agent) == {}  # a retransmission is not an attack
    agent.datagram_received(probe(0), LM_ADDR)  # the one session works
    assert agent.counters["answered"] == 1


def test_hello_copy_after_probing_began_is_a_replay(
    chip_key: PrivateKey, landmark_key: PrivateKey, registry: Registry
) -> None:
    agent, transport, _ = make_agent(chip_key, registry)
    data = hello(landmark_key)
    agent.datagram_received(data, LM_ADDR)
    agent.datagram_received(probe(0), LM_ADDR)  # the landmark provably holds the ack
    agent.datagram_received(data, LM_ADDR)
    assert _drops(agent) == {"replayed": 1}
    assert len(transport.sent) == 2  # ack + response, no second ack
    assert agent.counters["sessions_opened"] == 1


@pytest.mark.parametrize("case", ["other_address", "expired", "other_bytes"])
def test_hello_copy_that_is_not_a_retransmission_is_a_replay(
    chip_key: PrivateKey, landmark_key: PrivateKey, registry: Registry, case: str
) -> None:
    agent, transport, clock = make_agent(chip_key, registry, AgentLimits(session_lifetime_ns=10**9))
    agent.datagram_received(hello(landmark_key), LM_ADDR)
    copy, source = hello(landmark_key), LM_ADDR
    if case == "other_address":
        source = ("198.51.100.7", 5)
    elif case == "expired":
        clock.mono += 2 * 10**9
    else:  # same session id, re-signed with another issued_at: not the HELLO that opened it
        copy = hello(landmark_key, at=NOW + 1)
    agent.datagram_received(copy, source)
    assert _drops(agent) == {"replayed": 1}
    assert len(transport.sent) == 1
    assert agent.counters["sessions_opened"] == 1


def test_retransmitted_hello_spends_a_token(
    chip_key: PrivateKey, landmark_key: PrivateKey, registry: Registry
) -> None:
    limits = AgentLimits(probe_rate_per_s=1.0, probe_burst=2.0)
    agent, transport, _ = make_agent(chip_key, registry, limits)
    data = hello(landmark_key)
    for _ in range(3):
        agent.datagram_received(data, LM_ADDR)
    assert agent.counters["hello_acks_resent"] == 1
    assert _drops(agent) == {"rate_limited": 1}
    assert len(transport.sent) == 2


def test_a_landmark_key_answers_its_peers_in_the_mesh_role(
    landmark_key: PrivateKey, registry: Registry
) -> None:
    """A landmark daemon's agent side: answers PEER_HELLOs with its landmark key, under the
    peer domain; a chip HELLO addressed to it (a landmark posing as a chip) is refused."""
    from chiploc.protocol import LandmarkEntry

    peer_key = generate_private_key(Role.LANDMARK, "lm-par", seed=bytes([5]) * 32)
    mesh = Registry(
        authority_public_key=registry.authority_public_key,
        landmarks={
            **registry.landmarks,
            "lm-par": LandmarkEntry(
                id="lm-par", lat=48.86, lon=2.35, public_key=peer_key.public_key.key_bytes
            ),
        },
        chips=registry.chips,
    )
    agent, transport, _ = make_agent(peer_key, mesh)
    chip_hello = Hello.create(
        landmark_key, session_id=b"C" * 16, chip_id="lm-par", issued_at_unix_ns=NOW
    )
    agent.datagram_received(chip_hello.to_bytes(), LM_ADDR)
    assert _drops(agent) == {"wrong_role": 1}
    assert not transport.sent
    peer_hello = Hello.create(
        landmark_key,
        session_id=b"S" * 16,
        chip_id="lm-par",
        issued_at_unix_ns=NOW,
        target_role=Role.LANDMARK,
    )
    agent.datagram_received(peer_hello.to_bytes(), LM_ADDR)
    assert transport.sent[-1][0][3] == 0x07  # PEER_HELLO_ACK
    agent.datagram_received(probe(0), LM_ADDR)
    signature = transport.sent[-1][0][24:]
    args: dict[str, Any] = {
        "session_id": b"S" * 16,
        "chip_id": "lm-par",
        "landmark_id": "lm-fra",
        "seq": 0,
        "nonce": b"N" * 16,
        "signature": signature,
    }
    verify_response(peer_key.public_key.key_bytes, target_role=Role.LANDMARK, **args)
    with pytest.raises(BadSignature):  # never a chip's answer
        verify_response(peer_key.public_key.key_bytes, **args)
    # and a chip agent refuses the mesh hello
    chip_agent_, chip_transport, _ = make_agent(
        generate_private_key(Role.CHIP, "lm-par", seed=bytes([5]) * 32), mesh
    )
    chip_agent_.datagram_received(peer_hello.to_bytes(), LM_ADDR)
    assert _drops(chip_agent_) == {"wrong_role": 1}
    assert not chip_transport.sent
