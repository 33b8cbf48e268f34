"""Faults, fuzzing and load for chiploc, each run against real code on 127.0.0.1.

Three kinds of scenario live here so the suite (``tests/adversarial``) and the
benchmark (``benchmarks/robustness.py``) run exactly the same code:

* faults — :class:`FaultyRelay` (a seeded UDP relay that drops, duplicates and
  reorders datagrams, and never delivers one early) and the scenarios
  :func:`lossy_rounds`, :func:`landmark_kill_restart`, :func:`agent_restart`,
  :func:`verifier_kill` and :func:`wall_clock_jump`, each returning a
  :class:`FaultOutcome`;
* fuzzing — :class:`FuzzLab` builds a valid corpus (signed datagrams, reports,
  registries, certificates, key files, CSV and GeoJSON files) and checks one
  input against one reader (:meth:`FuzzLab.check`); :func:`mutate` is the
  seeded mutator; :func:`fuzz_http` and :func:`fuzz_agent` hit live daemons;
* load — :func:`run_load`: one landmark measures thousands of chip agents
  (in a child process) in one ``POST /v1/rounds``.

Invariants:

* Every outcome is computed from what the system did (counters, stored rows,
  bytes served, verified reports), never set by hand; a scenario that does
  not hold comes out ``survived=False`` with the failed check in its evidence.
* The relay only ever adds delay: a datagram's deadline is its arrival stamp
  (``perf_counter_ns()`` read after the datagram was received) plus a
  non-negative delay, and the clock is read again before sending.
* Everything binds 127.0.0.1 port 0, every wait is bounded, every daemon,
  agent, relay and child process is stopped on the way out.
* A fuzz check classifies an input as ``rejected`` (one of the project's own
  errors), ``accepted`` (and then, for signed formats, it must carry the
  original signed content), ``forgery`` (accepted but not the original) or
  ``crash`` (any other exception). Only the last two are failures.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import heapq
import json
import os
import random
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import aiohttp

from chiploc.chip_agent import ChipAgent
from chiploc.common.errors import (
    ChiplocError,
    DecodeError,
    InputError,
    ProtocolError,
    TransportError,
    VerificationError,
)
from chiploc.landmarks import LandmarkConfig, LandmarkDaemon
from chiploc.protocol import (
    ChipEntry,
    Hello,
    LandmarkEntry,
    MeasurementReport,
    MessageType,
    PrivateKey,
    ProbeRecord,
    Registry,
    Role,
    VerifierEntry,
    decode_datagram,
    generate_private_key,
    response_message,
    sign_report,
    verify_report,
    write_keypair,
)

from ._checks import Checks
from ._loopback import bounded, started_agent, started_daemon, started_relay

__all__ = [
    "FUZZ_TARGETS",
    "FaultOutcome",
    "FaultPlan",
    "FaultyRelay",
    "FuzzLab",
    "FuzzResult",
    "HttpFuzzTally",
    "LoadResult",
    "agent_restart",
    "fuzz_agent",
    "fuzz_http",
    "http_requests",
    "landmark_kill_restart",
    "lossy_rounds",
    "mutate",
    "raise_nofile_limit",
    "random_json",
    "run_faults",
    "run_load",
    "verifier_kill",
    "wall_clock_jump",
]

_LOOPBACK: Final = "127.0.0.1"
_NS_PER_S: Final = 1_000_000_000
_MAX_UDP_BYTES: Final = 65_000
Address = tuple[str, int]

# ------------------------------------------------------------------ outcomes


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultOutcome:
    """What one fault scenario did. ``injected``: fault events (datagrams dropped,
    duplicated or reordered, processes killed, restarts, clock jumps);
    ``records_lost``: acknowledged records missing afterwards (must be 0)."""

    name: str
    survived: bool
    injected: int
    records_lost: int
    evidence: str
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.name or self.injected < 0 or self.records_lost < 0:
            raise ValueError("a fault outcome needs a name and non-negative counts")

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "survived": self.survived,
            "injected": self.injected,
            "records_lost": self.records_lost,
            "evidence": self.evidence,
            "details": dict(self.details),
        }


@dataclass(slots=True)
class _Checks(Checks):
    def outcome(
        self, name: str, *, injected: int, records_lost: int = 0, **details: Any
    ) -> FaultOutcome:
        return FaultOutcome(
            name=name,
            survived=self.ok and records_lost == 0,
            injected=injected,
            records_lost=records_lost,
            evidence=self.evidence(),
            details=details,
        )


# ------------------------------------------------------------------ identities


def _key(role: Role, identity: str, label: str) -> PrivateKey:
    seed = hashlib.sha256(f"chiploc-faults\x1f{label}\x1f{role.value}\x1f{identity}".encode())
    return generate_private_key(role, identity, seed=seed.digest())


@dataclass(frozen=True, slots=True)
class _Identities:
    authority: PrivateKey
    landmark: PrivateKey
    chips: tuple[PrivateKey, ...]
    verifier: PrivateKey
    registry: Registry


def _identities(label: str, *, chips: int = 1) -> _Identities:
    authority = _key(Role.AUTHORITY, "authority", label)
    landmark = _key(Role.LANDMARK, "lm-fra", label)
    verifier = _key(Role.VERIFIER, "verifier-1", label)
    chip_keys = tuple(_key(Role.CHIP, f"chip-{i:05d}", label) for i in range(chips))
    registry = Registry(
        authority_public_key=authority.public_key.key_bytes,
        landmarks={
            landmark.id: LandmarkEntry(
                id=landmark.id,
                lat=50.11,
                lon=8.68,
                public_key=landmark.public_key.key_bytes,
                operator="fault lab",
            )
        },
        chips={
            k.id: ChipEntry(id=k.id, public_key=k.public_key.key_bytes, region="country:DEU")
            for k in chip_keys
        },
        verifiers={
            verifier.id: VerifierEntry(id=verifier.id, public_key=verifier.public_key.key_bytes)
        },
        serial=1,
    )
    return _Identities(authority, landmark, chip_keys, verifier, registry)


def _config(directory: Path, key: PrivateKey, **overrides: Any) -> LandmarkConfig:
    values: dict[str, Any] = {
        "id": key.id,
        "key_path": directory / f"{key.id}.key",  # not read: the key is passed
        "registry_path": directory / "registry.json",  # not read either
        "db_path": directory / f"{key.id}.db",
        "udp_host": _LOOPBACK,
        "http_host": _LOOPBACK,
        "probes_per_round": 10,
        "probe_timeout_ms": 100,
        "hello_timeout_ms": 500,
    }
    values.update(overrides)
    return LandmarkConfig(**values)


def _prepare(directory: str | os.PathLike[str]) -> Path:
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    return root


# ------------------------------------------------------------------ the faulty relay


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultPlan:
    """What :class:`FaultyRelay` does to each datagram (probabilities in [0, 1]).

    ``delay_ns`` is a fixed one-way delay added in each direction (the true
    floor of every RTT through the relay is ``2 * delay_ns``); a reordered
    datagram is held a further U(0, ``reorder_extra_ns``) so later ones
    overtake it. With ``timed_only`` the faults hit PROBE and RESPONSE
    datagrams only (session set-up passes clean but still delayed)."""

    loss: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    delay_ns: int = 1_000_000
    reorder_extra_ns: int = 3_000_000
    timed_only: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("loss", "duplicate", "reorder"):
            p = getattr(self, name)
            if not isinstance(p, float | int) or not 0.0 <= p <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1], got {p!r}")
        if self.delay_ns < 0 or self.reorder_extra_ns < 0:
            raise ValueError("delays must be >= 0 (the relay never delivers early)")


_KINDS: Final = {
    MessageType.HELLO: "hello",
    MessageType.HELLO_ACK: "hello_ack",
    MessageType.PROBE: "probe",
    MessageType.RESPONSE: "response",
}


def _kind(data: bytes) -> str:
    return _KINDS.get(data[3], "other") if len(data) >= 4 else "other"


class _Endpoint(asyncio.DatagramProtocol):
    def __init__(self, on_datagram: Callable[[bytes, Address, int], None]) -> None:
        self.on_datagram = on_datagram
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        stamp_ns = time.perf_counter_ns()  # after arrival: a deadline from it is never early
        self.on_datagram(data, (str(addr[0]), int(addr[1])), stamp_ns)


class FaultyRelay:
    """A seeded UDP relay between one landmark and one chip agent.

    The landmark sends to :attr:`address`; the relay forwards to ``upstream``
    from one socket of its own (so the agent sees one stable source) and
    back. Counters (``counters``) are ``<direction>_<kind>_<event>`` with
    direction ``to_chip`` / ``to_landmark``, kind ``hello``, ``hello_ack``,
    ``probe``, ``response`` or ``other`` and event ``received``,
    ``dropped``, ``duplicated``, ``reordered``, ``delivered`` or ``early``
    (always 0: checked at the moment of sending)."""

    def __init__(self, upstream: Address, plan: FaultPlan) -> None:
        self.upstream = upstream
        self.plan = plan
        self._rng = random.Random(plan.seed)
        self._down = _Endpoint(self._from_landmark)
        self._up = _Endpoint(self._from_chip)
        self._landmark: Address | None = None
        self._counters: dict[str, int] = {}
        self._pending: list[tuple[int, int, bytes, str, str]] = []  # deadline, n, data, dir, kind
        self._n = 0
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        await self._loop.create_datagram_endpoint(lambda: self._down, local_addr=(_LOOPBACK, 0))
        await self._loop.create_datagram_endpoint(lambda: self._up, local_addr=(_LOOPBACK, 0))

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._counters["dropped_at_close"] = len(self._pending)
        self._pending.clear()
        for endpoint in (self._down, self._up):
            if endpoint.transport is not None:
                endpoint.transport.close()

    async def __aenter__(self) -> FaultyRelay:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    @property
    def address(self) -> Address:
        if self._down.transport is None:
            raise RuntimeError("relay not started")
        name = self._down.transport.get_extra_info("sockname")
        return (str(name[0]), int(name[1]))

    @property
    def counters(self) -> Mapping[str, int]:
        return dict(self._counters)

    def count(self, direction: str, kind: str, event: str) -> int:
        return self._counters.get(f"{direction}_{kind}_{event}", 0)

    def total(self, event: str) -> int:
        """Sum of ``event`` over directions and kinds."""
        return sum(v for k, v in self._counters.items() if k.endswith(f"_{event}"))

    @property
    def idle(self) -> bool:
        return not self._pending

    def _bump(self, direction: str, kind: str, event: str, n: int = 1) -> None:
        key = f"{direction}_{kind}_{event}"
        self._counters[key] = self._counters.get(key, 0) + n

    def _from_landmark(self, data: bytes, addr: Address, stamp_ns: int) -> None:
        self._landmark = addr
        self._inject(data, "to_chip", stamp_ns)

    def _from_chip(self, data: bytes, addr: Address, stamp_ns: int) -> None:
        if addr == self.upstream:
            self._inject(data, "to_landmark", stamp_ns)

    def _inject(self, data: bytes, direction: str, stamp_ns: int) -> None:
        plan, rng = self.plan, self._rng
        kind = _kind(data)
        self._bump(direction, kind, "received")
        faulty = not plan.timed_only or kind in ("probe", "response")
        # draw all three every time: the sequence of draws does not depend on the outcomes
        lose, dup, reorder = rng.random(), rng.random(), rng.random()
        extra = [rng.randrange(plan.reorder_extra_ns + 1) for _ in range(2)]
        if faulty and lose < plan.loss:
            self._bump(direction, kind, "dropped")
            return
        copies = 2 if faulty and dup < plan.duplicate else 1
        if copies == 2:
            self._bump(direction, kind, "duplicated")
        for i in range(copies):
            delay = plan.delay_ns
            if faulty and reorder < plan.reorder and i == 0:
                delay += extra[i]
                self._bump(direction, kind, "reordered")
            self._schedule(stamp_ns + delay, data, direction, kind)

    def _schedule(self, deadline_ns: int, data: bytes, direction: str, kind: str) -> None:
        self._n += 1
        heapq.heappush(self._pending, (deadline_ns, self._n, data, direction, kind))
        self._arm()

    def _arm(self) -> None:
        loop = self._loop
        if loop is None or not self._pending:
            return
        if self._timer is not None:
            self._timer.cancel()
        wait_s = max(0.0, (self._pending[0][0] - time.perf_counter_ns()) / _NS_PER_S)
        self._timer = loop.call_later(wait_s, self._fire)

    def _fire(self) -> None:
        self._timer = None
        while self._pending:
            now = time.perf_counter_ns()
            deadline, _, data, direction, kind = self._pending[0]
            if now < deadline:  # the loop woke early: wait again, never send early
                break
            heapq.heappop(self._pending)
            self._send(data, direction, kind, deadline)
        self._arm()

    def _send(self, data: bytes, direction: str, kind: str, deadline_ns: int) -> None:
        if time.perf_counter_ns() < deadline_ns:
            self._bump(direction, kind, "early")  # impossible by construction; asserted 0
        dest: Address | None
        if direction == "to_chip":
            transport, dest = self._up.transport, self.upstream
        else:
            transport, dest = self._down.transport, self._landmark
        if transport is None or dest is None:
            self._bump(direction, kind, "undeliverable")
            return
        transport.sendto(data, dest)
        self._bump(direction, kind, "delivered")

    async def settle(self, timeout_s: float = 2.0) -> None:
        """Wait until nothing is held any more (bounded), then one loop pass more."""
        deadline = time.monotonic() + timeout_s
        while self._pending and time.monotonic() < deadline:  # noqa: ASYNC110 - bounded poll
            await asyncio.sleep(0.002)
        await asyncio.sleep(0.02)


# ------------------------------------------------------------------ scenarios: datagram faults

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


# ------------------------------------------------------------------ scenario: landmark SIGKILL


def _write_landmark_lab(root: Path, ids: _Identities) -> Path:
    """Keys, signed registry, authority.pub and landmark.toml on disk; returns the config."""
    keys = root / "keys"
    if not (keys / f"{ids.landmark.id}.key").exists():
        write_keypair(ids.landmark, keys)
    (root / "registry.json").write_bytes(ids.registry.to_signed_json(ids.authority))
    if not (root / "authority.pub").exists():
        _, pub = write_keypair(ids.authority, root / "authority")
        (root / "authority.pub").write_bytes(pub.read_bytes())
    config = root / "landmark.toml"
    config.write_text(
        "[landmark]\n"
        f'id = "{ids.landmark.id}"\n'
        f'key = "keys/{ids.landmark.id}.key"\n'
        'registry = "registry.json"\n'
        'authority_key = "authority.pub"\n'
        'udp_listen = "127.0.0.1:0"\n'
        'http_listen = "127.0.0.1:0"\n'
        'db = "landmark.db"\n'
        "probes_per_round = 10\n"
        "probe_timeout_ms = 200\n"
        "hello_timeout_ms = 500\n",
        encoding="utf-8",
    )
    return config


def _child_env() -> dict[str, str]:
    # The folder that holds the chiploc package (a checkout's top or site-packages):
    # not resolved, since in a checkout chiploc/sim is a symlink to the top-level sim/.
    root = str(Path(__file__).parents[2])
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": root + (os.pathsep + path if path else "")}


async def _spawn_landmark(config: Path) -> tuple[asyncio.subprocess.Process, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "chiploc",
        "landmark",
        "serve",
        "--config",
        str(config),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env=_child_env(),
    )
    assert proc.stdout is not None  # noqa: S101 - PIPE was requested
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), 30.0)
    except TimeoutError:
        line = b""
    text = line.decode("utf-8", "replace")
    if "http " not in text:
        proc.kill()
        await proc.wait()
        raise RuntimeError(f"landmark did not start: {text!r}")
    return proc, text.rsplit("http ", 1)[1].strip()


async def _all_reports(session: aiohttp.ClientSession, url: str) -> list[bytes]:
    raws: list[bytes] = []
    cursor = 0
    for _ in range(10_000):
        async with session.get(f"{url}/v1/reports", params={"since": cursor, "limit": 1000}) as r:
            body = await r.json()
        if not body["reports"]:
            return raws
        raws += [base64.b64decode(item["report_b64"]) for item in body["reports"]]
        cursor = body["next"]
    return raws


async def landmark_kill_restart(
    directory: str | os.PathLike[str], *, kills: int = 2, seed: int = 0, in_flight: int = 4
) -> FaultOutcome:
    """``chiploc landmark serve`` in a subprocess, rounds requested over HTTP, SIGKILL at a
    seeded random moment with rounds in flight, restart on the same db: every report the
    API acknowledged (200) is served again by ``GET /v1/reports``, byte for byte."""
    root = _prepare(directory)
    ids = _identities("landmark-kill")
    chip_key = ids.chips[0]
    config = _write_landmark_lab(root, ids)
    rng = random.Random(seed)
    checks = _Checks()
    acknowledged: list[bytes] = []
    interrupted = 0
    async with contextlib.AsyncExitStack() as stack:
        agent = await started_agent(stack, ChipAgent(chip_key, ids.registry, host=_LOOPBACK))
        address = f"{agent.address[0]}:{agent.address[1]}"
        session = await stack.enter_async_context(
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20))
        )
        procs: list[asyncio.subprocess.Process] = []

        async def _reap() -> None:
            for p in procs:
                if p.returncode is None:
                    p.kill()
                    await bounded(p.wait(), 5.0)

        stack.push_async_callback(_reap)
        for _ in range(kills):
            proc, url = await _spawn_landmark(config)
            procs.append(proc)

            async def requester(url: str = url) -> None:
                nonlocal interrupted
                while True:
                    try:
                        async with session.post(
                            f"{url}/v1/rounds",
                            json={"chip_id": chip_key.id, "address": address, "probes": 50},
                        ) as r:
                            if r.status == 200:
                                body = await r.json()
                                acknowledged.append(base64.b64decode(body["report_b64"]))
                    except (aiohttp.ClientError, TimeoutError):
                        interrupted += 1
                        return

            workers = [asyncio.ensure_future(requester()) for _ in range(in_flight)]
            await asyncio.sleep(rng.uniform(0.3, 0.9))
            proc.send_signal(signal.SIGKILL)
            await asyncio.wait_for(proc.wait(), 10.0)
            await asyncio.wait_for(asyncio.gather(*workers, return_exceptions=True), 25.0)
        proc, url = await _spawn_landmark(config)
        procs.append(proc)
        served = await _all_reports(session, url)
        served_set = set(served)
        lost = [raw for raw in acknowledged if raw not in served_set]
        checks.check(
            "every acknowledged report served after restart, byte for byte",
            not lost,
            f"{len(acknowledged)} acknowledged, {len(served)} served, {len(lost)} missing",
        )
        checks.check("rounds were in flight at each kill", interrupted >= kills, interrupted)
        bad = 0
        for raw in served:
            try:
                verify_report(raw, ids.registry)
            except ChiplocError:
                bad += 1
        checks.check("every served report verifies", bad == 0, f"{bad} bad")
        async with session.post(
            f"{url}/v1/rounds", json={"chip_id": chip_key.id, "address": address, "probes": 5}
        ) as r:
            status = r.status
        checks.check("a round after restart works", status == 200, status)
        proc.send_signal(signal.SIGTERM)
        await bounded(proc.wait(), 10.0)
        return checks.outcome(
            "landmark SIGKILL mid-round + restart",
            injected=kills,
            records_lost=len(lost),
            acknowledged=len(acknowledged),
            served=len(served),
            interrupted_requests=interrupted,
        )


# ------------------------------------------------------------------ scenario: verifier SIGKILL


def _writer_main() -> None:  # pragma: no cover - runs in the child process
    """Child: write signed rounds + certified verdicts into the store until killed; print
    one JSON line per commit (after the commit returned)."""
    from chiploc.solver import Measurement, load_region, solve
    from chiploc.store import open_store
    from chiploc.verifier import issue_certificate, record_registry

    db, run = sys.argv[1], int(sys.argv[2])
    ids = _identities("verifier-kill")
    chip = ids.chips[0]
    region = load_region("circle:50.11,8.68,2000")
    t0 = 1_700_000_000 * _NS_PER_S + run * 10**12
    with open_store(db) as store:
        record_registry(store, ids.registry, now_unix_ns=t0)
        i = 0
        while True:
            session = hashlib.sha256(f"{run}/{i}".encode()).digest()[:16]
            nonce = hashlib.sha256(f"nonce/{run}/{i}".encode()).digest()[:16]
            message = response_message(
                session_id=session, chip_id=chip.id, landmark_id=ids.landmark.id, seq=0, nonce=nonce
            )
            rtt_ns = 1_000_000 + i
            report = sign_report(
                ids.landmark,
                chip_id=chip.id,
                session_id=session,
                chip_address="127.0.0.1:7000",
                started_at_unix_ns=t0 + i,
                finished_at_unix_ns=t0 + i + 1,
                probes=[
                    ProbeRecord(
                        seq=0,
                        nonce=nonce,
                        rtt_ns=rtt_ns,
                        chip_signature=chip.sign(message),
                        timestamp_source="userspace",
                    )
                ],
            )
            inserted = store.add_round(report, received_at_unix_ns=t0 + i)
            print(json.dumps({"round": inserted.record.digest_hex}), flush=True)
            result = solve(
                chip.id,
                [Measurement(landmark=ids.landmark.id, lat=50.11, lon=8.68, rtt_ms=rtt_ns / 1e6)],
                region,
            )
            certificate = issue_certificate(
                result,
                authorized_region_digest_hex=region.digest_hex,
                evidence_digests=[report.digest_hex],
                signer=ids.verifier,
                issued_at_unix_s=(t0 + i) // _NS_PER_S,
            )
            verdict = store.add_verdict(
                result.to_json_dict(),
                evidence_digests=[report.digest_hex],
                certificate=certificate,
                issued_at_unix_ns=t0 + i,
            )
            head = store.audit_head()
            print(
                json.dumps(
                    {
                        "verdict": verdict.verdict_id,
                        "audit": [head.seq, head.hash_hex] if head else None,
                    }
                ),
                flush=True,
            )
            i += 1


def verifier_kill(
    directory: str | os.PathLike[str], *, kills: int = 3, seed: int = 0
) -> FaultOutcome:
    """A child process writes signed rounds and certified verdicts into the store in a
    loop and prints each commit; it is SIGKILLed at seeded random moments and restarted
    on the same database. No reported round, verdict or audit entry may be missing and
    ``verifier.verify_audit`` must pass after every kill."""
    from chiploc.store import open_store
    from chiploc.verifier import verify_audit

    root = _prepare(directory)
    db = root / "verifier.db"
    rng = random.Random(seed)
    checks = _Checks()
    rounds: list[str] = []
    verdicts: list[int] = []
    audit: list[tuple[int, str]] = []
    lost = 0
    for run in range(kills):
        proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [
                sys.executable,
                "-c",
                "from sim._faults import _writer_main; _writer_main()",
                str(db),
                str(run),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=_child_env(),
        )
        lines: list[str] = []

        def reader(p: subprocess.Popen[str] = proc, out: list[str] = lines) -> None:
            assert p.stdout is not None  # noqa: S101 - PIPE was requested
            out.extend(iter(p.stdout.readline, ""))

        thread = threading.Thread(target=reader, daemon=True)
        thread.start()
        # wait for the child to be writing, then kill it at a random moment
        deadline = time.monotonic() + 30
        while len(lines) < 2 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.05, 0.6))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        thread.join(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()
        for line in lines:
            with contextlib.suppress(ValueError):  # a torn last line is not a commit report
                item = json.loads(line)
                if "round" in item:
                    rounds.append(item["round"])
                elif "verdict" in item:
                    verdicts.append(int(item["verdict"]))
                    if item["audit"]:
                        audit.append((int(item["audit"][0]), str(item["audit"][1])))
        with open_store(db, read_only=True) as store:
            report = verify_audit(store)
            stored_rounds = {r.digest_hex for r in store.rounds()}
            stored_verdicts = {v.verdict_id for v in store.verdicts()}
            stored_audit = {(e.seq, e.hash_hex) for e in store.audit_entries()}
        missing = (
            sum(d not in stored_rounds for d in rounds)
            + sum(v not in stored_verdicts for v in verdicts)
            + sum(a not in stored_audit for a in audit)
        )
        lost = max(lost, missing)
        checks.check(
            f"kill {run + 1}: audit verifies, nothing committed lost",
            missing == 0,
            f"{report.entries} entries, {len(rounds)} rounds / {len(verdicts)} verdicts "
            f"reported, {missing} missing",
        )
    checks.check("the writer made progress", len(verdicts) >= kills, len(verdicts))
    return checks.outcome(
        "verifier SIGKILL during writes",
        injected=kills,
        records_lost=lost,
        rounds=len(rounds),
        verdicts=len(verdicts),
    )


async def run_faults(directory: str | os.PathLike[str], *, seed: int = 0) -> list[FaultOutcome]:
    """Every fault scenario, one after another (the benchmark's set)."""
    root = Path(directory)
    outcomes = []
    for i, (loss, dup, reorder) in enumerate(((0.0, 0.0, 0.0), (0.1, 0.1, 0.1), (0.3, 0.3, 0.3))):
        plan = FaultPlan(loss=loss, duplicate=dup, reorder=reorder, seed=seed + i)
        outcomes.append(await lossy_rounds(root / f"lossy-{i}", plan))
    plan = FaultPlan(loss=0.3, duplicate=0.3, reorder=0.3, timed_only=False, seed=seed + 7)
    outcomes.append(await lossy_rounds(root / "lossy-setup", plan, rounds=6))
    outcomes.append(await landmark_kill_restart(root / "landmark-kill", seed=seed))
    outcomes.append(await agent_restart(root / "agent-restart"))
    outcomes.append(await asyncio.to_thread(verifier_kill, root / "verifier-kill", seed=seed))
    outcomes.append(await wall_clock_jump(root / "clock-jump"))
    return outcomes


# ------------------------------------------------------------------ fuzzing

#: The readers :class:`FuzzLab` checks, by name.
FUZZ_TARGETS: Final = (
    "datagram",
    "hello",
    "response",
    "report",
    "registry",
    "registry_signed",
    "private_key",
    "public_key",
    "certificate",
    "measurement_csv",
    "calibration_csv",
    "region_geojson",
    "region_spec",
)

#: Rejections that are the project's own, expected errors for bad input.
_EXPECTED: Final = (ProtocolError, VerificationError, InputError)

_TOKENS: Final = (
    b"\x00",
    b"\xff",
    b'"',
    b",",
    b"\n",
    b"\r",
    b"-",
    b"NaN",
    b"Infinity",
    b"1e999",
    b"-0",
    b"99999999999999999999999999",
    b"null",
    b"true",
    b"[]",
    b"{}",
    b'{"a":',
    b"\\u0000",
    b"\xed\xa0\x80",
)


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One to four seeded mutations of ``data`` (bit flips, byte sets, inserts, deletes,
    truncation, chunk copies, interesting tokens, deep nesting, a very long field)."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(11)
        n = len(out)
        pos = rng.randrange(n + 1)
        if op == 0 and n:
            i = rng.randrange(n)
            out[i] ^= 1 << rng.randrange(8)
        elif op == 1 and n:
            out[rng.randrange(n)] = rng.randrange(256)
        elif op == 2:
            out[pos:pos] = rng.randbytes(rng.randint(1, 16))
        elif op == 3 and n:
            end = min(n, pos + rng.randint(1, 32))
            del out[pos:end]
        elif op == 4:
            del out[pos:]
        elif op == 5 and n:
            start = rng.randrange(n)
            chunk = out[start : start + rng.randint(1, 64)]
            out[pos:pos] = chunk
        elif op in (6, 7):
            out[pos:pos] = rng.choice(_TOKENS)
        elif op == 8:
            depth = rng.choice((2, 50, 5_000))
            out[pos:pos] = b"[" * depth + b"]" * depth
        elif op == 9 and rng.random() < 0.2:
            out[pos:pos] = b"a" * 140_000  # over csv's field limit
        elif op == 10 and rng.random() < 0.1:
            out = bytearray(rng.randbytes(rng.randint(0, 600)))
    return bytes(out)


def random_json(rng: random.Random, depth: int = 3) -> Any:
    """A seeded random JSON value (wrong types, huge numbers, odd strings)."""
    kind = rng.randrange(9 if depth > 0 else 6)
    if kind == 0:
        return None
    if kind == 1:
        return rng.random() < 0.5
    if kind == 2:
        return rng.choice((0, -1, 1, 2**31, 2**63, 2**64, 10**30, -(10**30)))
    if kind == 3:
        return rng.choice((0.5, -1e308, 1e308, 1e-320))
    if kind == 4:
        return rng.choice(
            ("", "chip-00000", "127.0.0.1:1", "[::1]:99999", "host:", ":80", "a" * 300, "\x00",
             "127.0.0.1:-1", "ü:1", "1.2.3.4:0x50", "targets", "since")
        )  # fmt: skip
    if kind == 5:
        return "".join(chr(rng.randrange(0x20, 0x3000)) for _ in range(rng.randrange(12)))
    if kind == 6:
        return [random_json(rng, depth - 1) for _ in range(rng.randrange(4))]
    keys = ("chip_id", "address", "probes", "targets", "x")
    obj = {rng.choice(keys): random_json(rng, depth - 1) for _ in range(rng.randrange(5))}
    if kind == 8 and rng.random() < 0.5:
        obj["targets"] = [random_json(rng, depth - 1) for _ in range(rng.randrange(5))]
    return obj


@dataclass(frozen=True, slots=True, kw_only=True)
class FuzzResult:
    """How one reader took one input: ``rejected`` / ``accepted`` (fine), ``forgery`` /
    ``crash`` (failures)."""

    target: str
    outcome: str
    detail: str = ""

    @property
    def failed(self) -> bool:
        return self.outcome in ("forgery", "crash")


_FUZZ_NOW_NS: Final = 1_700_000_000 * _NS_PER_S


class FuzzLab:
    """A deterministic corpus of valid inputs and one checker per reader.

    ``directory`` receives the scratch files (key files, CSV, GeoJSON) the file
    readers are given."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        from chiploc.solver import Measurement, load_region, solve
        from chiploc.verifier import issue_certificate

        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.ids = _identities("fuzz")
        ids = self.ids
        chip = ids.chips[0]
        self.session_id = bytes(range(16))
        self.nonce = bytes(range(16, 32))
        hello = Hello.create(
            ids.landmark,
            session_id=self.session_id,
            chip_id=chip.id,
            issued_at_unix_ns=_FUZZ_NOW_NS,
        ).to_bytes()
        message = response_message(
            session_id=self.session_id,
            chip_id=chip.id,
            landmark_id=ids.landmark.id,
            seq=7,
            nonce=self.nonce,
        )
        response = (
            bytes((0xC1, 0x0C, 0x01, MessageType.RESPONSE))
            + self.session_id
            + (7).to_bytes(4, "big")
            + chip.sign(message)
        )
        report = sign_report(
            ids.landmark,
            chip_id=chip.id,
            session_id=self.session_id,
            chip_address="127.0.0.1:7000",
            started_at_unix_ns=_FUZZ_NOW_NS,
            finished_at_unix_ns=_FUZZ_NOW_NS + 5_000_000,
            probes=[
                ProbeRecord(
                    seq=7,
                    nonce=self.nonce,
                    rtt_ns=1_234_567,
                    chip_signature=chip.sign(message),
                    timestamp_source="kernel",
                ),
                ProbeRecord(
                    seq=8,
                    nonce=bytes(range(32, 48)),
                    rtt_ns=None,
                    chip_signature=bytes(64),
                    timestamp_source="none",
                ),
            ],
        )
        region = load_region(ids.registry.chip(chip.id).region)  # as the registry authorizes
        result = solve(
            chip.id,
            [Measurement(landmark=ids.landmark.id, lat=50.11, lon=8.68, rtt_ms=1.2)],
            region,
        )
        certificate = issue_certificate(
            result,
            authorized_region_digest_hex=region.digest_hex,
            evidence_digests=[report.digest_hex],
            signer=ids.verifier,
            issued_at_unix_s=_FUZZ_NOW_NS // _NS_PER_S,
        )
        registry = ids.registry.to_signed_json(ids.authority)
        body = json.dumps(json.loads(registry)["registry"]).encode()
        private = json.dumps(
            {
                "format": "chiploc-private-key/1",
                "role": "chip",
                "id": chip.id,
                "seed": chip.seed.hex(),
            }
        ).encode()
        public = json.dumps(
            {
                "format": "chiploc-public-key/1",
                "role": "chip",
                "id": chip.id,
                "public_key": chip.public_key.key_bytes.hex(),
            }
        ).encode()
        square = {
            "type": "Polygon",
            "coordinates": [[[8.0, 50.0], [9.0, 50.0], [9.0, 51.0], [8.0, 51.0], [8.0, 50.0]]],
        }
        self.originals: dict[str, bytes] = {
            "hello": hello,
            "response": response,
            "report": report.raw,
            "registry": registry,
            "certificate": certificate,
        }
        self.corpus: dict[str, tuple[bytes, ...]] = {
            "datagram": (hello, response),
            "hello": (hello,),
            "response": (response,),
            "report": (report.raw,),
            "registry": (registry,),
            "registry_signed": (body,),
            "private_key": (private,),
            "public_key": (public,),
            "certificate": (certificate,),
            "measurement_csv": (
                b"target,landmark,lat,lon,rtt_ms,overhead_ms\n"
                b"chip-1,lm-fra,50.11,8.68,1.2,0\nchip-1,lm-par,48.86,2.35,6.5,\n",
            ),
            "calibration_csv": (
                b"landmark,lat,lon,peer,peer_lat,peer_lon,rtt_ms\n"
                b"lm-fra,50.11,8.68,lm-par,48.86,2.35,7.1\n"
                b"lm-fra,50.11,8.68,lm-ber,52.52,13.40,9.3\n",
            ),
            "region_geojson": (
                json.dumps(square).encode(),
                json.dumps({"type": "Feature", "geometry": square}).encode(),
            ),
            "region_spec": (
                b"country:DEU",
                b"countries:DEU,FRA",
                b"not:CHN",
                b"circle:50.1,8.6,300",
            ),
        }
        self._checks: dict[str, Callable[[bytes], object]] = {
            "datagram": decode_datagram,
            "hello": self._hello,
            "response": self._response,
            "report": lambda d: verify_report(d, ids.registry),
            "registry": lambda d: Registry.from_signed_json(
                d, authority_public_key=ids.authority.public_key.key_bytes, source="fuzz"
            ),
            "registry_signed": self._registry_signed,
            "private_key": lambda d: self._file_reader(d, "k.key", "private_key"),
            "public_key": lambda d: self._file_reader(d, "k.pub", "public_key"),
            "certificate": self._certificate,
            "measurement_csv": lambda d: self._file_reader(d, "m.csv", "measurement_csv"),
            "calibration_csv": lambda d: self._file_reader(d, "c.csv", "calibration_csv"),
            "region_geojson": lambda d: self._file_reader(d, "r.geojson", "region_geojson"),
            "region_spec": self._region_spec,
        }

    # -- per-reader checks: return the accepted value, or raise
    def _hello(self, data: bytes) -> object:
        from chiploc.protocol import verify_hello

        hello = decode_datagram(data)
        if not isinstance(hello, Hello):
            raise DecodeError("not a hello", reason="unexpected_type")
        return verify_hello(
            hello,
            self.ids.registry,
            chip_id=self.ids.chips[0].id,
            now_unix_ns=_FUZZ_NOW_NS,
            max_skew_ns=30 * _NS_PER_S,
        )

    def _response(self, data: bytes) -> object:
        from chiploc.protocol import Response, verify_response

        response = decode_datagram(data)
        if not isinstance(response, Response):
            raise DecodeError("not a response", reason="unexpected_type")
        verify_response(
            self.ids.chips[0].public_key.key_bytes,
            session_id=response.session_id,
            chip_id=self.ids.chips[0].id,
            landmark_id=self.ids.landmark.id,
            seq=response.seq,
            nonce=self.nonce,
            signature=response.signature,
        )
        return response

    def _registry_signed(self, body: bytes) -> object:
        """An authority-signed but possibly malformed body: parsing must still only reject."""
        from chiploc.protocol import canonical_json

        try:
            parsed = json.loads(body)
            message = canonical_json(parsed)
        except (ValueError, RecursionError, TypeError):
            doc = b'{"format":"chiploc-registry/1","registry":' + body + b',"signature":"00"}'
        else:
            from chiploc.protocol import REGISTRY_DOMAIN

            signature = self.ids.authority.sign(REGISTRY_DOMAIN + message).hex()
            doc = json.dumps(
                {"format": "chiploc-registry/1", "registry": parsed, "signature": signature}
            ).encode()
        return Registry.from_signed_json(
            doc, authority_public_key=self.ids.authority.public_key.key_bytes, source="fuzz"
        )

    def _certificate(self, data: bytes) -> object:
        from chiploc.verifier import verify_certificate

        return verify_certificate(data, self.ids.registry, now_unix_s=_FUZZ_NOW_NS // _NS_PER_S)

    def _region_spec(self, data: bytes) -> object:
        from chiploc.solver import load_region

        text = data.decode("utf-8", "replace")
        if text.strip().startswith(("/", ".", "~")) or "geojson" in text or "json" in text:
            # a spec naming a file is a user's own choice of file (it may be /dev/zero):
            # the GeoJSON reader is fuzzed through region_geojson instead
            text = "x" + text
        return load_region(text)

    def _file_reader(self, data: bytes, name: str, target: str) -> object:
        from chiploc.protocol import load_private_key, load_public_key
        from chiploc.solver import Calibration, load_region, parse_measurements_csv

        path = self.directory / name
        path.write_bytes(data)
        path.chmod(0o600)
        if target == "private_key":
            return load_private_key(path)
        if target == "public_key":
            return load_public_key(path)
        if target == "measurement_csv":  # the parser the CLI runs after decoding the file
            return parse_measurements_csv(data.decode("utf-8", "surrogateescape"), source=str(path))
        if target == "calibration_csv":
            return Calibration.from_csv(path)
        return load_region(str(path))

    def _forged(self, target: str, data: bytes, value: object) -> bool:
        """Accepted, but not what the signer signed?"""
        if target in ("hello", "response", "report"):
            return data != self.originals[target]
        if target == "registry":
            return value != self.ids.registry
        if target == "certificate":
            return data.rstrip(b"\n") != self.originals["certificate"].rstrip(b"\n")
        return False

    def check(self, target: str, data: bytes) -> FuzzResult:
        """Run one input through one reader and classify what happened."""
        try:
            value = self._checks[target](data)
        except _EXPECTED as e:
            return FuzzResult(target=target, outcome="rejected", detail=e.reason)
        except Exception as e:  # the finding this exists to catch
            return FuzzResult(target=target, outcome="crash", detail=f"{type(e).__name__}: {e}")
        if self._forged(target, data, value):
            return FuzzResult(target=target, outcome="forgery", detail=data[:200].hex())
        return FuzzResult(target=target, outcome="accepted")

    def inputs(self, target: str, rng: random.Random, count: int) -> Iterator[bytes]:
        """``count`` seeded mutations of the target's corpus."""
        seeds = self.corpus[target]
        for _ in range(count):
            yield mutate(rng.choice(seeds), rng)


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpFuzzTally:
    sent: int
    client_errors: int
    server_errors: int
    not_json: int
    healthy_after: bool
    examples: tuple[str, ...] = ()

    @property
    def crashes(self) -> int:
        return self.server_errors + self.not_json + (0 if self.healthy_after else 1)


async def fuzz_http(
    url: str, requests: Iterable[tuple[str, str, bytes]], *, timeout_s: float = 10.0
) -> HttpFuzzTally:
    """Send ``(method, path_and_query, body)`` requests to a landmark's HTTP API. Every
    answer must be a 4xx (or 2xx) with a JSON body; then ``/healthz`` must still be 200."""
    sent = client = server = not_json = 0
    examples: list[str] = []
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        for method, target, body in requests:
            sent += 1
            async with session.request(
                method, url + target, data=body, headers={"Content-Type": "application/json"}
            ) as r:
                raw = await r.read()
                status = r.status
            try:
                doc = json.loads(raw)
                ok_json = isinstance(doc, dict) and (status < 400 or "error" in doc)
            except ValueError:
                ok_json = False
            if status >= 500:
                server += 1
                examples.append(f"{status} {method} {target[:80]} {body[:80]!r}")
            elif status >= 400:
                client += 1
            if not ok_json:
                not_json += 1
                examples.append(f"not JSON: {status} {method} {target[:80]} {body[:80]!r}")
        async with session.get(url + "/healthz") as r:
            healthy = r.status == 200
    return HttpFuzzTally(
        sent=sent,
        client_errors=client,
        server_errors=server,
        not_json=not_json,
        healthy_after=healthy,
        examples=tuple(examples[:5]),
    )


def http_requests(rng: random.Random, count: int) -> Iterator[tuple[str, str, bytes]]:
    """Seeded hostile requests: random JSON bodies, mutated valid bodies, bad cursors."""
    valid = json.dumps({"chip_id": "chip-unknown", "address": "127.0.0.1:9", "probes": 3}).encode()
    cursors = ("-1", "x", "", "1e3", "99999999999999999999999", str(2**63), "0x10", " 1", "١٢")
    for _ in range(count):
        kind = rng.randrange(3)
        if kind == 0:
            body = json.dumps(random_json(rng)).encode()
            yield "POST", "/v1/rounds", body
        elif kind == 1:
            yield "POST", "/v1/rounds", mutate(valid, rng)
        else:
            since = rng.choice(cursors) if rng.random() < 0.7 else str(rng.randrange(-5, 10**6))
            limit = rng.choice(("1", "0", "1001", "-3", "abc", "100"))
            yield "GET", f"/v1/reports?since={since}&limit={limit}", b""


async def fuzz_agent(agent: ChipAgent, datagrams: Iterable[bytes]) -> tuple[int, int]:
    """Send ``datagrams`` to ``agent`` from one socket; return (sent, counted): every one
    must be counted by exactly one of the agent's counters (drops or ``answered``).
    Datagrams are cut to 65,000 bytes (a UDP datagram cannot be longer)."""
    before = sum(agent.counters.values())
    # a plain socket: asyncio's sendto silently skips empty datagrams
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sent = 0

    async def caught_up(timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while sum(agent.counters.values()) - before < sent and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.001)

    try:
        sock.bind((_LOOPBACK, 0))
        batch_bytes = 0
        for data in datagrams:
            datagram = data[:_MAX_UDP_BYTES]
            sock.sendto(datagram, agent.address)
            sent += 1
            batch_bytes += len(datagram) + 64
            if sent % 32 == 0 or batch_bytes > 64_000:
                # stay far below the socket buffer: a kernel drop is not the agent's
                await caught_up(1.0)
                batch_bytes = 0
        await caught_up(5.0)
    finally:
        sock.close()
    return sent, sum(agent.counters.values()) - before


# ------------------------------------------------------------------ load


def raise_nofile_limit() -> tuple[int, int]:
    """Raise the soft RLIMIT_NOFILE to the hard limit; return (soft, hard) afterwards."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _agents_main() -> None:  # pragma: no cover - runs in the child process
    """Child: start N chip agents on 127.0.0.1, print their ports as one JSON line, serve
    until stdin closes, print a JSON summary (counters, peak RSS) and exit."""
    label, count = sys.argv[1], int(sys.argv[2])
    raise_nofile_limit()

    async def main() -> None:
        ids = _identities(label, chips=count)
        agents = [ChipAgent(k, ids.registry, host=_LOOPBACK) for k in ids.chips]
        for agent in agents:
            await agent.start()
        print(json.dumps([a.address[1] for a in agents]), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        totals: dict[str, int] = {}
        for agent in agents:
            for k, v in agent.counters.items():
                totals[k] = totals.get(k, 0) + v
            await agent.stop()
        print(json.dumps({"counters": totals, "peak_rss_mb": _peak_rss_mb()}), flush=True)

    asyncio.run(main())


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadResult:
    chips: int
    probes: int
    seconds: float
    completed: int
    landmark_peak_rss_mb: float
    agents_peak_rss_mb: float
    nofile_soft_limit: int
    errors: Mapping[str, int]
    agent_counters: Mapping[str, int]

    @property
    def completed_share(self) -> float:
        return self.completed / self.chips if self.chips else 0.0

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "chips": self.chips,
            "probes": self.probes,
            "seconds": round(self.seconds, 3),
            "completed": self.completed,
            "completed_share": round(self.completed_share, 4),
            "landmark_peak_rss_mb": round(self.landmark_peak_rss_mb, 1),
            "agents_peak_rss_mb": round(self.agents_peak_rss_mb, 1),
            "nofile_soft_limit": self.nofile_soft_limit,
            "errors": dict(self.errors),
            "agent_counters": dict(self.agent_counters),
        }


async def run_load(
    directory: str | os.PathLike[str],
    *,
    chips: int,
    probes: int = 3,
    concurrency: int = 256,
    probe_timeout_ms: int = 2000,
) -> LoadResult:
    """One landmark (this process) measures ``chips`` agents (one child process) in one
    ``POST /v1/rounds`` with a targets list. ``seconds`` is the request's wall time."""
    root = _prepare(directory)
    soft, _ = raise_nofile_limit()
    label = f"load-{chips}"
    ids = _identities(label, chips=chips)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from sim._faults import _agents_main; _agents_main()",
        label,
        str(chips),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env=_child_env(),
        limit=1 << 24,
    )
    assert proc.stdin is not None  # noqa: S101 - PIPE requested
    assert proc.stdout is not None  # noqa: S101 - PIPE requested
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), 120.0)
        ports = json.loads(line)
        if len(ports) != chips:
            raise RuntimeError(f"agent child started {len(ports)} of {chips} agents")
        config = _config(
            root,
            ids.landmark,
            probe_timeout_ms=probe_timeout_ms,
            hello_timeout_ms=probe_timeout_ms,
            max_concurrent_rounds=concurrency,
        )
        async with LandmarkDaemon(config, key=ids.landmark, registry=ids.registry) as daemon:
            targets = [
                {"chip_id": k.id, "address": f"{_LOOPBACK}:{port}"}
                for k, port in zip(ids.chips, ports, strict=True)
            ]
            timeout = aiohttp.ClientTimeout(total=600)
            async with aiohttp.ClientSession(timeout=timeout) as session:
                started = time.perf_counter()
                async with session.post(
                    f"{daemon.http_url}/v1/rounds", json={"targets": targets, "probes": probes}
                ) as r:
                    body = await r.json()
                seconds = time.perf_counter() - started
        results = body["results"]
        completed = sum(1 for item in results if "report_b64" in item)
        errors: dict[str, int] = {}
        for item in results:
            if "error" in item:
                errors[item["reason"]] = errors.get(item["reason"], 0) + 1
        landmark_peak = _peak_rss_mb()
        proc.stdin.close()
        summary = json.loads(await asyncio.wait_for(proc.stdout.readline(), 60.0))
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.stdin.close()
            try:
                await asyncio.wait_for(proc.wait(), 30.0)
            except TimeoutError:
                proc.kill()
                await proc.wait()
    return LoadResult(
        chips=chips,
        probes=probes,
        seconds=seconds,
        completed=completed,
        landmark_peak_rss_mb=landmark_peak,
        agents_peak_rss_mb=float(summary["peak_rss_mb"]),
        nofile_soft_limit=soft,
        errors=errors,
        agent_counters=summary["counters"],
    )


def _load_main() -> None:  # pragma: no cover - runs in a fresh process (clean peak RSS)
    """``python -c 'from sim._faults import _load_main; _load_main()' DIR CHIPS``: print
    :meth:`LoadResult.to_json_dict` as one JSON line."""
    directory, chips = sys.argv[1], int(sys.argv[2])
    result = asyncio.run(run_load(directory, chips=chips))
    print(json.dumps(result.to_json_dict()), flush=True)
