"""Faults against real daemons on 127.0.0.1: loss, duplication, reordering, SIGKILL of the
landmark and of the verifier's writer, an agent restart, and wall-clock jumps.

The scenarios live in ``sim._fault_rounds`` and ``sim._fault_kills`` (the benchmark runs
the same code); these tests assert on what each one observed, not only on its summary flag.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from chiploc.landmarks import RoundCore, rtt_from_stamps
from chiploc.protocol import verify_report
from chiploc.sim import (
    FaultPlan,
    FaultyRelay,
    agent_restart,
    landmark_kill_restart,
    lossy_rounds,
    verifier_kill,
    wall_clock_jump,
)
from chiploc.sim._fault_lab import _identities

HOUR_NS = 3600 * 1_000_000_000


@pytest.mark.slow
@pytest.mark.parametrize("rate", [0.0, 0.1, 0.3])
async def test_loss_duplication_reordering(tmp_path: Path, rate: float) -> None:
    plan = FaultPlan(loss=rate, duplicate=rate, reorder=rate, seed=int(rate * 10))
    outcome = await lossy_rounds(tmp_path, plan, rounds=3, probes=20)
    assert outcome.survived, outcome.evidence
    d = outcome.details
    assert d["rounds"] == 3  # set-up datagrams pass clean: every round completes
    assert d["answered"] >= 1
    assert d["min_rtt_ns"] >= d["floor_ns"]
    assert d["relay"].get("to_chip_probe_early", 0) == 0
    if rate:
        relay = d["relay"]
        assert relay.get("to_chip_probe_dropped", 0) + relay.get("to_landmark_response_dropped", 0)
        assert d["lost"] >= 1  # lost probes are in the transcript as lost
        assert outcome.injected > 0
    else:
        assert d["lost"] == 0
        assert outcome.injected == 0


@pytest.mark.slow
async def test_loss_of_set_up_datagrams_fails_rounds_cleanly(tmp_path: Path) -> None:
    plan = FaultPlan(loss=0.3, duplicate=0.3, reorder=0.3, timed_only=False, seed=2)
    outcome = await lossy_rounds(tmp_path, plan, rounds=6, probes=20)
    assert outcome.survived, outcome.evidence
    d = outcome.details
    assert d["rounds"] + d["failed_cleanly"] == 6
    assert d["rounds"] <= d["sessions_opened"] <= 6  # never a second session for a round
    assert d["hello_retransmits"] <= 6 * d["hello_retries"]


@pytest.mark.slow
async def test_hello_retransmission_survives_set_up_loss(tmp_path: Path) -> None:
    """30 % loss on every datagram, set-up included: before HELLO retransmission most
    rounds of this kind ended unreachable; with the same HELLO re-sent (and the agent
    re-acking it) every round is measured, on one session each."""
    plan = FaultPlan(loss=0.3, timed_only=False, seed=3)
    outcome = await lossy_rounds(
        tmp_path, plan, rounds=6, probes=20, hello_timeout_ms=400, hello_retries=6
    )
    assert outcome.survived, outcome.evidence
    d = outcome.details
    relay = d["relay"]
    assert relay["to_chip_hello_dropped"] + relay.get("to_landmark_hello_ack_dropped", 0) >= 1
    assert d["hello_retransmits"] >= 1
    assert (d["rounds"], d["failed_cleanly"]) == (6, 0)
    assert d["sessions_opened"] == 6
    assert d["agent"].get("replayed", 0) == 0  # no retransmission counted as an attack
    assert d["min_rtt_ns"] >= d["floor_ns"]


async def test_relay_never_delivers_early(tmp_path: Path) -> None:
    import asyncio
    import time

    received: list[int] = []

    class Sink(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: object) -> None:
            received.append(time.perf_counter_ns() - int.from_bytes(data[4:12], "big"))

    loop = asyncio.get_running_loop()
    sink, _ = await loop.create_datagram_endpoint(Sink, local_addr=("127.0.0.1", 0))
    plan = FaultPlan(delay_ns=3_000_000, reorder=0.5, duplicate=0.2, seed=5)
    async with FaultyRelay(sink.get_extra_info("sockname")[:2], plan) as relay:
        src, _ = await loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0)
        )
        for _ in range(50):
            src.sendto(
                b"\xc1\x0c\x01\x03" + time.perf_counter_ns().to_bytes(8, "big"), relay.address
            )
            await asyncio.sleep(0.001)
        await relay.settle()
        src.close()
    sink.close()
    assert len(received) == relay.total("delivered") >= 50
    assert min(received) >= plan.delay_ns  # sent-to-received through the relay
    assert relay.total("early") == 0


@pytest.mark.slow
async def test_landmark_sigkill_mid_round_loses_no_acknowledged_report(tmp_path: Path) -> None:
    outcome = await landmark_kill_restart(tmp_path, kills=2, seed=3)
    assert outcome.survived, outcome.evidence
    assert outcome.records_lost == 0
    assert outcome.details["acknowledged"] >= 1
    assert outcome.details["served"] >= outcome.details["acknowledged"]


@pytest.mark.slow
async def test_agent_restart_mid_round(tmp_path: Path) -> None:
    outcome = await agent_restart(tmp_path)
    assert outcome.survived, outcome.evidence


@pytest.mark.slow
def test_verifier_sigkill_during_writes_loses_nothing(tmp_path: Path) -> None:
    outcome = verifier_kill(tmp_path, kills=3, seed=1)
    assert outcome.survived, outcome.evidence
    assert outcome.records_lost == 0
    assert outcome.details["verdicts"] >= 3


@pytest.mark.slow
async def test_wall_clock_jump_mid_round_at_agent_and_landmark(tmp_path: Path) -> None:
    outcome = await wall_clock_jump(tmp_path)
    assert outcome.survived, outcome.evidence
    minima = outcome.details["min_rtt_ns"]
    assert set(minima) == {
        "none",
        "agent +1h",
        "agent -1h",
        "landmark +1h",
        "landmark -1h",
        "landmark +0.5ms before",
    }
    assert all(v >= outcome.details["floor_ns"] for v in minima.values())
    assert all(abs(v - minima["none"]) <= 3_000_000 for v in minima.values())
    assert outcome.injected == 7


# -- the landmark's clock rule, pure: a realtime step between send and receive


@pytest.mark.parametrize("step_ns", [HOUR_NS, -HOUR_NS, 1, -1, 50_000, -50_000])
def test_rtt_from_stamps_with_a_realtime_step(step_ns: int) -> None:
    sent_mono = 1_000_000_000
    true_rtt = 2_000_000
    received_mono = sent_mono + true_rtt + 30_000  # userspace read after the kernel stamp
    offset = 1_700_000_000_000_000_000  # realtime - monotonic before the step
    kernel_rx = sent_mono + true_rtt + offset + step_ns  # the stamp is on the stepped clock
    rtt, source = rtt_from_stamps(
        sent_ns=sent_mono,
        received_ns=received_mono,
        kernel_rx_realtime_ns=kernel_rx,
        send_offset_lo_ns=offset,
        receive_offset_lo_ns=offset + step_ns,
    )
    assert rtt >= true_rtt  # never shorter than the true round trip
    assert rtt <= received_mono - sent_mono  # never longer than the userspace bound
    if abs(step_ns) > 20_000:
        assert (rtt, source) == (received_mono - sent_mono, "userspace")


@pytest.mark.parametrize("step_ns", [HOUR_NS, -HOUR_NS])
def test_rtt_from_stamps_step_unseen_by_the_receive_offset(step_ns: int) -> None:
    # the step lands between the kernel stamp and the receive-side offset read: the
    # stamp is on the old clock, the offset on the new one
    offset = 1_700_000_000_000_000_000
    rtt, _ = rtt_from_stamps(
        sent_ns=10,
        received_ns=2_000_010,
        kernel_rx_realtime_ns=10 + 1_900_000 + offset,
        send_offset_lo_ns=offset,
        receive_offset_lo_ns=offset + step_ns,
    )
    assert 1_900_000 <= rtt <= 2_000_000


def test_round_core_report_verifies_when_wall_clock_steps_back() -> None:
    ids = _identities("clock-core")
    chip = ids.registry.chip(ids.chips[0].id)
    started = 1_700_000_000 * 1_000_000_000
    core = RoundCore(
        key=ids.landmark,
        chip=chip,
        chip_address="127.0.0.1:1",
        session_id=bytes(16),
        probes=1,
        started_at_unix_ns=started,
    )
    core.accept_hello_ack(_ack(ids, core))
    core.next_probe(bytes(range(16)))
    core.record_lost()
    report = core.finish(finished_at_unix_ns=started - HOUR_NS)  # the wall clock went back
    assert report.finished_at_unix_ns >= report.started_at_unix_ns
    verify_report(report.raw, ids.registry)


def _ack(ids: object, core: RoundCore) -> bytes:
    from chiploc.protocol import HelloAck

    chip_key = ids.chips[0]  # type: ignore[attr-defined]
    landmark_id = ids.landmark.id  # type: ignore[attr-defined]
    return HelloAck.create(chip_key, session_id=core.session_id, landmark_id=landmark_id).to_bytes()
