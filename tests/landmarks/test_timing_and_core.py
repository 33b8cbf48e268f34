"""Pure tests: the RTT rule with fixed clock readings, and a round driven over an in-memory link."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chiploc.chip_agent import ChipAgent
from chiploc.common.errors import BadSignature, BindingError, LocalProtocolError, ReplayDetected
from chiploc.landmarks import RoundCore, hello_schedule_ns, rtt_from_stamps
from chiploc.protocol import PrivateKey, Registry, Role, generate_private_key, verify_report

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


# -- HELLO retransmission (set-up) vs. timed probes (never retransmitted)


@pytest.mark.parametrize(
    ("timeout_ns", "retries", "expected"),
    [
        (1_000_000_000, 0, (0,)),
        (1_000_000_000, 1, (0, 333_333_333)),
        (1_000_000_000, 3, (0, 66_666_666, 200_000_000, 466_666_666)),
        (150, 3, (0, 10, 30, 70)),
    ],
)
def test_hello_schedule(timeout_ns: int, retries: int, expected: tuple[int, ...]) -> None:
    assert hello_schedule_ns(timeout_ns, retries) == expected


@given(st.integers(1, 60 * 10**9), st.integers(0, 16))
def test_hello_schedule_backs_off_within_the_timeout(timeout_ns: int, retries: int) -> None:
    sends = hello_schedule_ns(timeout_ns, retries)
    assert len(sends) == retries + 1
    assert sends[0] == 0
    assert all(0 <= t < timeout_ns for t in sends)
    waits = [b - a for a, b in zip(sends, (*sends[1:], timeout_ns), strict=True)]
    assert all(w2 >= w1 for w1, w2 in itertools.pairwise(waits))  # backoff
    assert waits[-1] >= timeout_ns // 2  # the last copy has the longest wait


@pytest.mark.parametrize(("timeout_ns", "retries"), [(0, 1), (-5, 1), (10, -1), (10, 17)])
def test_hello_schedule_rejects_bad_arguments(timeout_ns: int, retries: int) -> None:
    with pytest.raises(LocalProtocolError):
        hello_schedule_ns(timeout_ns, retries)


def test_lost_hello_ack_then_retransmitted_hello_over_in_memory_link(
    landmark_key: PrivateKey, chip_key: PrivateKey, registry: Registry
) -> None:
    core = _round(landmark_key, registry, probes=2)
    agent, link = _agent(chip_key, registry)
    addr = ("10.0.0.9", 7400)
    hello = core.hello
    agent.datagram_received(hello, addr)
    lost_ack = link.inbox.pop()  # the network loses it
    assert core.hello == hello  # the retransmission is the same signed bytes
    agent.datagram_received(core.hello, addr)
    ack = link.inbox.pop()
    assert ack == lost_ack  # deterministic signature: the same ack
    assert agent.counters["sessions_opened"] == 1
    assert agent.counters["hello_acks_resent"] == 1
    assert agent.live_sessions == 1
    assert not core.is_ack_copy(ack)  # nothing accepted yet
    core.accept_hello_ack(ack)
    assert core.is_ack_copy(lost_ack)  # ... which now arrives late: a copy
    agent.datagram_received(core.next_probe(b"\x01" * 16), addr)
    response = link.inbox.pop()
    with pytest.raises(ReplayDetected) as caught:
        core.accept_response(lost_ack, rtt_ns=1, timestamp_source="kernel")
    assert caught.value.reason == "duplicate_hello_ack"
    core.accept_response(response, rtt_ns=4_000, timestamp_source="kernel")
    assert core.outstanding_seq is None


def test_a_lost_probe_is_followed_by_the_next_seq_and_a_fresh_nonce(
    landmark_key: PrivateKey, chip_key: PrivateKey, registry: Registry
) -> None:
    core = _round(landmark_key, registry, probes=2)
    agent, link = _agent(chip_key, registry)
    addr = ("10.0.0.9", 7400)
    agent.datagram_received(core.hello, addr)
    core.accept_hello_ack(link.inbox.pop())
    first = core.next_probe(b"\x01" * 16)
    agent.datagram_received(first, addr)
    late = link.inbox.pop()  # the answer is slower than the probe timeout
    core.record_lost()
    second = core.next_probe(b"\x02" * 16)
    assert second[20:24] == (1).to_bytes(4, "big")
    assert second[24:40] != first[24:40]
    with pytest.raises(LocalProtocolError):
        core.next_probe(b"\x01" * 16)  # still outstanding; and that nonce is spent anyway
    with pytest.raises(ReplayDetected) as caught:  # the late answer cannot stand in for seq 1
        core.accept_response(late, rtt_ns=1, timestamp_source="kernel")
    assert caught.value.reason == "replayed"
    agent.datagram_received(second, addr)
    core.accept_response(link.inbox.pop(), rtt_ns=7_000, timestamp_source="kernel")
    report = verify_report(core.finish(finished_at_unix_ns=1_700_000_001_000_000_000).raw, registry)
    assert [p.rtt_ns for p in report.probes] == [None, 7_000]
