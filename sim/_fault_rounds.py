"""Fault scenarios during live rounds in this process: datagram loss,
duplication and reordering through a :class:`FaultyRelay` (:func:`lossy_rounds`),
a chip agent restarted mid-round (:func:`agent_restart`) and wall-clock steps on
either side (:func:`wall_clock_jump`), each returning a :class:`FaultOutcome`.

Invariants:

* Every outcome is computed from what the system did (counters, verified
  reports, RTTs against the relay's floor), never set by hand.
* Everything binds 127.0.0.1 port 0, every wait is bounded, every daemon, agent
  and relay is stopped on the way out.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable
from typing import Any, Final

from chiploc.chip_agent import ChipAgent
from chiploc.common.errors import ChiplocError, TransportError
from chiploc.landmarks import LandmarkDaemon
from chiploc.protocol import MeasurementReport, verify_report

from ._fault_lab import _LOOPBACK, _NS_PER_S, FaultOutcome, _Checks, _config, _identities, _prepare
from ._fault_relay import FaultPlan, FaultyRelay
from ._loopback import bounded, started_agent, started_daemon, started_relay

__all__ = ["agent_restart", "lossy_rounds", "wall_clock_jump"]

#: Landmark counters that are not drops of a delivered datagram.
_NOT_DROPS: Final = frozenset(
    {
        "probes_answered",
        "probes_lost",
        "round_measured",
        "round_unreachable",
        "round_refused",
        "probe_timeout",
        "hello_timeout",
        "hello_retransmit",
        "hello_send_error",
        "send_error",
    }
)

#: Agent counters that are not drops.
_AGENT_NOT_DROPS: Final = frozenset({"answered", "sessions_opened", "hello_acks_resent"})


async def lossy_rounds(
    directory: str | os.PathLike[str],
    plan: FaultPlan,
    *,
    rounds: int = 3,
    probes: int = 20,
    probe_timeout_ms: int = 60,
    hello_timeout_ms: int = 200,
    hello_retries: int = 3,
) -> FaultOutcome:
    """Rounds through a :class:`FaultyRelay`; checks every delivered datagram is used once
    or counted, lost probes are recorded as lost, no RTT is below the relay's floor and
    every report verifies. With ``timed_only`` off the set-up datagrams are hit too: the
    landmark re-sends the same HELLO up to ``hello_retries`` times, the agent opens at most
    one session per round and re-sends its ack; a round whose every HELLO or HELLO_ACK was
    lost must fail cleanly (``ProbeTimeout``), never half-succeed."""
    root = _prepare(directory)
    ids = _identities("lossy")
    chip_key = ids.chips[0]
    floor_ns = 2 * plan.delay_ns
    checks = _Checks()
    reports: list[MeasurementReport] = []
    failed_cleanly = 0
    async with contextlib.AsyncExitStack() as stack:
        daemon = await started_daemon(
            stack,
            LandmarkDaemon(
                _config(
                    root,
                    ids.landmark,
                    probe_timeout_ms=probe_timeout_ms,
                    hello_timeout_ms=hello_timeout_ms,
                    hello_retries=hello_retries,
                ),
                key=ids.landmark,
                registry=ids.registry,
            ),
        )
        agent = await started_agent(stack, ChipAgent(chip_key, ids.registry, host=_LOOPBACK))
        relay = await started_relay(stack, FaultyRelay(agent.address, plan))
        for _ in range(rounds):
            try:
                reports.append(await daemon.measure(chip_key.id, relay.address, probes=probes))
            except ChiplocError as e:
                if e.reason != "timeout":
                    raise
                failed_cleanly += 1
        await relay.settle()
        lm, ag = daemon.counters, agent.counters
        answered = sum(r.answered for r in reports)
        lost = sum(len(r.probes) - r.answered for r in reports)
        # every report verifies, with distinct, increasing seqs (no double use)
        verified = 0
        for r in reports:
            verify_report(r.raw, ids.registry)
            verified += 1
        checks.check("reports verify", verified == len(reports), f"{verified}/{len(reports)}")
        checks.check(
            "rounds complete or fail cleanly",
            len(reports) + failed_cleanly == rounds and (plan.timed_only <= (failed_cleanly == 0)),
            f"{len(reports)} measured, {failed_cleanly} unreachable (hello lost)",
        )
        checks.check(
            "every burst has its full length",
            all(len(r.probes) == probes for r in reports),
            [len(r.probes) for r in reports],
        )
        rtts = [p.rtt_ns for r in reports for p in r.probes if p.rtt_ns is not None]
        low = min(rtts, default=None)
        checks.check(
            "no RTT below the true floor",
            low is None or low >= floor_ns,
            f"min {low} ns, floor {floor_ns} ns",
        )
        checks.check(
            "lost probes recorded as lost",
            lost == lm.get("probe_timeout", 0) + lm.get("send_error", 0),
            f"{lost} lost records, {lm.get('probe_timeout', 0)} timeouts",
        )
        to_lm = sum(
            relay.count("to_landmark", k, "delivered") for k in ("hello_ack", "response", "other")
        )
        lm_drops = sum(v for k, v in lm.items() if k not in _NOT_DROPS)
        acks_used = len(reports)
        checks.check(
            "every datagram the landmark got is used once or counted",
            to_lm == answered + acks_used + lm_drops,
            f"delivered {to_lm} = answered {answered} + acks {acks_used} + dropped {lm_drops}",
        )
        to_chip = relay.total("delivered") - to_lm
        ag_drops = sum(v for k, v in ag.items() if k not in _AGENT_NOT_DROPS)
        opened, resent = ag.get("sessions_opened", 0), ag.get("hello_acks_resent", 0)
        checks.check(
            "every datagram the agent got is used once or counted",
            to_chip == ag.get("answered", 0) + opened + resent + ag_drops,
            f"delivered {to_chip} = answered {ag.get('answered', 0)} + sessions {opened} "
            f"+ acks re-sent {resent} + dropped {ag_drops}",
        )
        retransmits = lm.get("hello_retransmit", 0)
        hellos_sent = relay.count("to_chip", "hello", "received")
        checks.check(
            "every HELLO sent is the first or a counted, bounded retransmission",
            hellos_sent == rounds + retransmits <= rounds * (1 + hello_retries),
            f"{hellos_sent} hellos = {rounds} rounds + {retransmits} retransmitted",
        )
        checks.check(
            "at most one session per round, one for each measured round",
            len(reports) <= opened <= rounds,
            f"{opened} sessions opened, {len(reports)} rounds measured of {rounds}",
        )
        dup_responses = relay.count("to_landmark", "response", "duplicated")
        checks.check(
            "duplicates counted, not used twice",
            answered <= sum(len(r.probes) for r in reports)
            and (dup_responses == 0 or lm_drops > 0),
            f"{dup_responses} duplicated responses, {lm_drops} landmark drops",
        )
        checks.check("relay never early", relay.total("early") == 0, relay.total("early"))
        injected = relay.total("dropped") + relay.total("duplicated") + relay.total("reordered")
        name = f"datagrams loss={plan.loss:g} dup={plan.duplicate:g} reorder={plan.reorder:g}"
        if not plan.timed_only:
            name += " (set-up too)"
        return checks.outcome(
            name,
            injected=injected,
            rounds=len(reports),
            failed_cleanly=failed_cleanly,
            hello_retries=hello_retries,
            hello_retransmits=retransmits,
            hello_acks_resent=resent,
            sessions_opened=opened,
            answered=answered,
            lost=lost,
            min_rtt_ns=low,
            floor_ns=floor_ns,
            relay=relay.counters,
            landmark=lm,
            agent=ag,
        )


async def _wait_for(condition: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.001)
    return True


async def agent_restart(
    directory: str | os.PathLike[str], *, probes: int = 20, restart_after: int = 5
) -> FaultOutcome:
    """Stop the chip agent mid-round and start a new one on the same port: the round ends
    with the probes answered before (the rest lost) or fails cleanly; the next round is
    fully answered."""
    root = _prepare(directory)
    ids = _identities("agent-restart")
    chip_key = ids.chips[0]
    checks = _Checks()
    async with contextlib.AsyncExitStack() as stack:
        daemon = await started_daemon(
            stack,
            LandmarkDaemon(
                _config(root, ids.landmark, probe_timeout_ms=50),
                key=ids.landmark,
                registry=ids.registry,
            ),
        )
        first = ChipAgent(chip_key, ids.registry, host=_LOOPBACK)
        await first.start()
        port = first.address[1]
        slow = FaultPlan(delay_ns=2_000_000)  # slows the burst down
        relay = await started_relay(stack, FaultyRelay(first.address, slow))
        task = asyncio.ensure_future(daemon.measure(chip_key.id, relay.address, probes=probes))
        reached = await _wait_for(
            lambda: first.counters.get("answered", 0) >= restart_after or task.done(), 5.0
        )
        await first.stop()
        second = ChipAgent(chip_key, ids.registry, host=_LOOPBACK, port=port)
        for attempt in range(50):  # the old socket closes on a later loop iteration
            try:
                await second.start()
                break
            except TransportError:
                if attempt == 49:
                    raise
                await asyncio.sleep(0.01)
        stack.push_async_callback(bounded, second.stop(), 5.0)
        checks.check("restarted mid-round", reached and not task.done(), f"port {port}")
        outcome = "measured"
        try:
            report = await asyncio.wait_for(task, 30.0)
        except ChiplocError as e:  # a clean failure is acceptable
            report, outcome = None, f"failed cleanly ({e.reason})"
        if report is not None:
            verify_report(report.raw, ids.registry)
            seqs_answered = [p.seq for p in report.probes if p.rtt_ns is not None]
            seqs_lost = [p.seq for p in report.probes if p.rtt_ns is None]
            checks.check(
                "round keeps the answered probes, the rest lost",
                len(report.probes) == probes
                and len(seqs_answered) >= restart_after
                and bool(seqs_lost)
                and max(seqs_answered) < min(seqs_lost),
                f"answered {len(seqs_answered)}, lost {len(seqs_lost)}",
            )
        checks.check(
            "new agent refused the old session",
            second.counters.get("no_session", 0) >= 1,
            f"no_session={second.counters.get('no_session', 0)}",
        )
        after = await daemon.measure(chip_key.id, relay.address, probes=probes)
        verify_report(after.raw, ids.registry)
        checks.check(
            "next round fully answered",
            after.answered == probes,
            f"{after.answered}/{probes}",
        )
        return checks.outcome("agent restarted mid-round", injected=1, first_round=outcome)


async def wall_clock_jump(
    directory: str | os.PathLike[str],
    *,
    probes: int = 30,
    jump_after: int = 10,
    tolerance_ns: int = 3_000_000,
) -> FaultOutcome:
    """Step the agent's and then the landmark's wall clock by +1 h and -1 h in the middle of
    rounds (through a relay with a fixed 1 ms floor each way): every probe is still answered,
    no RTT is below the floor and each minimum is within ``tolerance_ns`` of the unjumped
    round. The landmark's clocks are injected (:class:`LandmarkDaemon` ``realtime_ns``), so
    its realtime/monotonic offset check meets the step end to end; a +0.5 ms landmark step
    *before* a round (smaller than the RTT) must leave kernel stamps usable and every RTT
    above the floor. A HELLO issued while the two wall clocks are an hour apart (either
    side off) is refused as stale by the agent, every copy of it: a clean failure."""
    root = _prepare(directory)
    ids = _identities("clock-jump")
    chip_key = ids.chips[0]
    offsets = {"agent": 0, "landmark": 0}
    checks = _Checks()
    plan = FaultPlan(delay_ns=1_000_000)
    floor_ns = 2 * plan.delay_ns

    def agent_wall_clock_ns() -> int:
        return time.time_ns() + offsets["agent"]

    def landmark_wall_clock_ns() -> int:
        return time.time_ns() + offsets["landmark"]

    async with contextlib.AsyncExitStack() as stack:
        daemon = await started_daemon(
            stack,
            LandmarkDaemon(
                _config(root, ids.landmark, probe_timeout_ms=500, hello_timeout_ms=300),
                key=ids.landmark,
                registry=ids.registry,
                realtime_ns=landmark_wall_clock_ns,
            ),
        )
        agent = await started_agent(
            stack,
            ChipAgent(chip_key, ids.registry, host=_LOOPBACK, wall_clock_ns=agent_wall_clock_ns),
        )
        relay = await started_relay(stack, FaultyRelay(agent.address, plan))

        def check_round(label: str, report: MeasurementReport) -> None:
            verify_report(report.raw, ids.registry)
            minima[label] = report.min_rtt_ns
            low = min(p.rtt_ns for p in report.probes if p.rtt_ns is not None)
            sources[label] = sorted({p.timestamp_source for p in report.probes})
            checks.check(
                f"{label}: every probe answered", report.answered == probes, report.answered
            )
            checks.check(f"{label}: no RTT below the floor", low >= floor_ns, f"{low} ns")
            checks.check(
                f"{label}: min RTT close to the unjumped run",
                base.min_rtt_ns is not None
                and report.min_rtt_ns is not None
                and abs(report.min_rtt_ns - base.min_rtt_ns) <= tolerance_ns,
                f"{report.min_rtt_ns} vs {base.min_rtt_ns} ns",
            )

        base = await daemon.measure(chip_key.id, relay.address, probes=probes)
        minima: dict[str, int | None] = {"none": base.min_rtt_ns}
        sources: dict[str, list[str]] = {"none": sorted({p.timestamp_source for p in base.probes})}
        jumps = 0
        for side in ("agent", "landmark"):
            for sign, jump_ns in (("+", 3600 * _NS_PER_S), ("-", -3600 * _NS_PER_S)):
                offsets[side] = 0
                done_before = agent.counters.get("answered", 0)
                task = asyncio.ensure_future(
                    daemon.measure(chip_key.id, relay.address, probes=probes)
                )

                def reached(b: int = done_before, t: asyncio.Future[Any] = task) -> bool:
                    return agent.counters.get("answered", 0) - b >= jump_after or t.done()

                await _wait_for(reached, 5.0)
                offsets[side] = jump_ns  # the step, mid-round
                jumps += 1
                check_round(f"{side} {sign}1h", await asyncio.wait_for(task, 30.0))
            offsets[side] = 0

        # a small landmark step before the round, shorter than the RTT: a kernel stamp left
        # on the unstepped clock would shorten every RTT by 0.5 ms (below the 2 ms floor)
        offsets["landmark"] = 500_000
        jumps += 1
        small = await daemon.measure(chip_key.id, relay.address, probes=probes)
        check_round("landmark +0.5ms before", small)
        checks.check(
            "landmark +0.5ms before: kernel stamps still used (if the unjumped run used them)",
            "kernel" in sources["landmark +0.5ms before"] or "kernel" not in sources["none"],
            f"{sources['landmark +0.5ms before']} vs {sources['none']}",
        )
        offsets["landmark"] = 0

        # a new session while the wall clocks are an hour apart: refused as stale
        for side in ("agent", "landmark"):
            offsets[side] = 3600 * _NS_PER_S
            stale_before = agent.counters.get("stale", 0)
            resent_before = daemon.counters.get("hello_retransmit", 0)
            refused = False
            try:
                await daemon.measure(chip_key.id, relay.address, probes=3)
            except ChiplocError as e:
                refused = e.reason == "timeout"
            await relay.settle()
            copies = 1 + daemon.counters.get("hello_retransmit", 0) - resent_before
            stale = agent.counters.get("stale", 0) - stale_before
            checks.check(
                f"hello with the {side}'s wall clock an hour off is refused as stale",
                refused and stale == copies,
                f"stale +{stale} for {copies} copies of the hello",
            )
            offsets[side] = 0
            jumps += 1
        again = await daemon.measure(chip_key.id, relay.address, probes=3)
        checks.check("clocks back: rounds work again", again.answered == 3, again.answered)
        return checks.outcome(
            "wall-clock jump mid-round (agent and landmark)",
            injected=jumps,
            min_rtt_ns=minima,
            timestamp_sources=sources,
            floor_ns=floor_ns,
        )
