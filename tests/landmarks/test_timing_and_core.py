"""Pure tests: the RTT rule with fixed clock readings, and a round driven over an in-memory link."""

from __future__ import annotations

from typing import Any

import pytest

from chip_agent import ChipAgent
from chiploc.errors import BadSignature, BindingError, LocalProtocolError, ReplayDetected
from landmarks import RoundCore, rtt_from_stamps
from protocol import PrivateKey, Registry, Role, generate_private_key, verify_report

OFF = 1_700_000_000_000_000_000  # realtime - monotonic


@pytest.mark.parametrize(
    ("kernel", "send_off", "recv_off", "expected"),
    [
        (None, OFF, OFF, (9_000, "userspace")),  # no kernel stamp
        (OFF + 1_000 + 6_000, OFF, OFF, (6_000, "kernel")),  # stamp 3 us before userspace
        # wall clock stepped back 1 s between send and receive: offsets disagree -> userspace
        (OFF - 10**9 + 7_000, OFF, OFF - 10**9, (9_000, "userspace")),
        # small disagreement: the smaller offset is used, which can only lengthen the RTT
        (OFF + 1_000 + 6_000, OFF, OFF - 5_000, (9_000, "userspace")),
        (OFF + 1_000 + 2_000, OFF, OFF - 5_000, (7_000, "kernel")),
        # kernel stamp later than the userspace read (inconsistent): userspace
        (OFF + 1_000 + 9_500, OFF, OFF, (9_000, "userspace")),
        # kernel stamp before the send: userspace
        (OFF + 500, OFF, OFF, (9_000, "userspace")),
    ],
)
def test_rtt_from_stamps(
    kernel: int | None, send_off: int, recv_off: int, expected: tuple[int, str]
) -> None:
    got = rtt_from_stamps(
        sent_ns=1_000,
        received_ns=10_000,
        kernel_rx_realtime_ns=kernel,
        send_offset_lo_ns=send_off,
        receive_offset_lo_ns=recv_off,
    )
    assert got == expected
    assert got[0] <= 9_000  # never longer than userspace ...


def test_rtt_never_shorter_than_a_true_bound_under_a_wall_clock_step() -> None:
    """A +2 us step between send and kernel stamp must not shorten the RTT below the truth."""
    true_rtt = 6_000
    sent = 1_000
    kernel = OFF + 2_000 + sent + true_rtt  # realtime stamped after a +2 us step
    rtt, _ = rtt_from_stamps(
        sent_ns=sent,
        received_ns=sent + true_rtt + 3_000,
        kernel_rx_realtime_ns=kernel,
        send_offset_lo_ns=OFF,
        receive_offset_lo_ns=OFF + 2_000,
    )
    assert rtt >= true_rtt


def test_rtt_rejects_time_travel() -> None:
    with pytest.raises(ValueError, match="follow"):
        rtt_from_stamps(
            sent_ns=5, received_ns=5, kernel_rx_realtime_ns=None,
            send_offset_lo_ns=0, receive_offset_lo_ns=0,
        )  # fmt: skip


class Link:
    """In-memory datagram link: the agent's sendto lands in ``inbox``."""

    def __init__(self) -> None:
        self.inbox: list[bytes] = []

    def sendto(self, data: bytes, addr: Any) -> None:
        self.inbox.append(data)

    def close(self) -> None:
        pass


def _round(landmark_key: PrivateKey, registry: Registry, probes: int = 3) -> RoundCore:
    return RoundCore(
        key=landmark_key,
        chip=registry.chip("chip-1"),
        chip_address="10.0.0.1:7401",
        session_id=b"R" * 16,
        probes=probes,
        started_at_unix_ns=1_700_000_000_000_000_000,
    )


def _agent(chip_key: PrivateKey, registry: Registry) -> tuple[ChipAgent, Link]:
    agent = ChipAgent(chip_key, registry, wall_clock_ns=lambda: 1_700_000_000_000_000_000)
    link = Link()
    agent.connection_made(link)  # type: ignore[arg-type]
    return agent, link


def test_round_over_in_memory_link_with_exact_rtts(
    landmark_key: PrivateKey, chip_key: PrivateKey, registry: Registry
) -> None:
    core = _round(landmark_key, registry)
    agent, link = _agent(chip_key, registry)
    addr = ("10.0.0.9", 7400)
    with pytest.raises(LocalProtocolError):
        core.next_probe(b"\x00" * 16)  # no probe before the ack
    agent.datagram_received(core.hello, addr)
    core.accept_hello_ack(link.inbox.pop())
    fake_rtts = [5_000, 3_000, None]
    for i, rtt in enumerate(fake_rtts):
        agent.datagram_received(core.next_probe(bytes([i + 1]) * 16), addr)
        response = link.inbox.pop()
        if rtt is None:
            core.record_lost()
        else:
            core.accept_response(response, rtt_ns=rtt, timestamp_source="kernel")
    assert core.done
    report = verify_report(core.finish(finished_at_unix_ns=1_700_000_001_000_000_000).raw, registry)
    assert [p.rtt_ns for p in report.probes] == fake_rtts
    assert report.min_rtt_ns == 3_000
    assert report.chip_address == "10.0.0.1:7401"


def test_core_rejects_bad_responses(
    landmark_key: PrivateKey, chip_key: PrivateKey, registry: Registry
) -> None:
    core = _round(landmark_key, registry)
    agent, link = _agent(chip_key, registry)
    addr = ("10.0.0.9", 7400)
    agent.datagram_received(core.hello, addr)
    core.accept_hello_ack(link.inbox.pop())
    agent.datagram_received(core.next_probe(b"\x01" * 16), addr)
    first = link.inbox.pop()
    core.accept_response(first, rtt_ns=10, timestamp_source="userspace")
    agent.datagram_received(core.next_probe(b"\x02" * 16), addr)
    second = link.inbox.pop()
    with pytest.raises(ReplayDetected):  # the previous answer replayed
        core.accept_response(first, rtt_ns=10, timestamp_source="userspace")
    forged = second[:24] + bytes(64)
    with pytest.raises(BadSignature):
        core.accept_response(forged, rtt_ns=10, timestamp_source="userspace")
    other = second[:4] + b"X" * 16 + second[20:]
    with pytest.raises(BindingError):
        core.accept_response(other, rtt_ns=10, timestamp_source="userspace")
    core.accept_response(
        second, rtt_ns=20, timestamp_source="userspace"
    )  # the real one still counts
    with pytest.raises(LocalProtocolError):
        core.next_probe(b"\x01" * 16)  # a nonce is never reused


def test_core_rejects_ack_from_another_chip_key(
    landmark_key: PrivateKey, registry: Registry
) -> None:
    core = _round(landmark_key, registry)
    impostor = generate_private_key(Role.CHIP, "chip-1", seed=b"\x0d" * 32)
    agent, link = _agent(impostor, registry)
    agent.datagram_received(core.hello, ("10.0.0.9", 7400))
    with pytest.raises(BadSignature):
        core.accept_hello_ack(link.inbox.pop())
    assert not core.acked
