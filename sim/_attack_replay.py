"""Attacks that replay captured traffic: old answers from an earlier session and
earlier probes plus a captured HELLO (:func:`replay_attack`), and an enrolled
landmark posing as another with its id, its HELLO and its live session
(:func:`impersonated_landmark_attack`).

Invariants:

* The recording relays only forward and copy what they see; forged datagrams are
  built with the same codec (:mod:`protocol`) an attacker could use.
* Every wait for a datagram to be counted is bounded (``_settle``).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from chiploc.common.errors import BadSignature
from chiploc.protocol import (
    Hello,
    MessageType,
    Probe,
    Response,
    Role,
    generate_private_key,
    verify_report,
)

from ._attack_evidence import _report_refusal, _resign
from ._attack_lab import _PROBES, AttackOutcome, _cast, _Checks, _seed, _world
from ._attack_middlebox import _Relay
from ._delay import Address

__all__ = ["impersonated_landmark_attack", "replay_attack"]


class _Recorder(_Relay):
    """Forwards everything; keeps the HELLOs it saw and the RESPONSEs the chip sent."""

    def __init__(self, upstream: Address) -> None:
        super().__init__(upstream)
        self.hellos: list[bytes] = []
        self.responses: list[bytes] = []

    def from_landmark(self, data: bytes, addr: Address) -> None:
        if len(data) >= 4 and data[3] == MessageType.HELLO:
            self.hellos.append(bytes(data))
        self.to_chip(data)

    def from_chip(self, data: bytes) -> None:
        if len(data) >= 4 and data[3] == MessageType.RESPONSE:
            self.responses.append(bytes(data))
        self.to_landmark(data)


class _Replayer(_Recorder):
    """Round 2: before forwarding each probe, answers it with old responses:
    the previous answer of this session verbatim, an answer captured in an earlier
    session verbatim, and that old answer re-labelled with this session and seq."""

    def __init__(self, upstream: Address, captured: Sequence[bytes]) -> None:
        super().__init__(upstream)
        self.captured = list(captured)
        self.injected: list[bytes] = []

    def from_landmark(self, data: bytes, addr: Address) -> None:
        if len(data) == 40 and data[3] == MessageType.PROBE:
            probe = Probe.from_bytes(bytes(data))
            old = Response.from_bytes(self.captured[probe.seq % len(self.captured)])
            forged = [
                old.to_bytes(),  # another session: unknown to the landmark
                Response(
                    session_id=probe.session_id, seq=probe.seq, signature=old.signature
                ).to_bytes(),  # re-labelled: the signature covers the old nonce
            ]
            mine = [r for r in self.responses if r[4:20] == probe.session_id]
            if mine:
                forged.append(mine[-1])  # this session's previous answer (a lower seq)
            for datagram in forged:
                self.injected.append(datagram)
                self.to_landmark(datagram, addr)
        super().from_landmark(data, addr)


async def replay_attack(directory: Path) -> AttackOutcome:
    """Old answers (from an earlier session and from earlier probes) are replayed."""
    name = "replay"
    checks = _Checks()
    chip_key, (lm_key,), registry = _cast(name)
    async with _world(directory, registry, [lm_key], chip_key, probe_timeout_ms=500) as world:
        lab, (daemon,), agent = world
        recorder = await lab.relay(_Recorder(agent.address))
        first = await daemon.measure(chip_key.id, recorder.address, probes=_PROBES)
        replayer = await lab.relay(_Replayer(agent.address, recorder.responses))
        before = dict(daemon.counters)
        second = await daemon.measure(chip_key.id, replayer.address, probes=_PROBES)
        after = dict(daemon.counters)
        # the captured HELLO, sent again to the agent from the recorder's own socket
        agent_before = dict(agent.counters)
        recorder.to_chip(recorder.hellos[0])
        await _settle(lambda: agent.counters.get("replayed", 0) > agent_before.get("replayed", 0))
        agent_after = dict(agent.counters)

    def rose(reason: str, counters: Mapping[str, int], base: Mapping[str, int]) -> int:
        return counters.get(reason, 0) - base.get(reason, 0)

    n = _PROBES
    checks.check("first round captured", len(recorder.responses) == n, f"{n} answers")
    checks.check(
        "old session's answers dropped",
        rose("unknown_session", after, before) >= n,
        f"landmark unknown_session +{rose('unknown_session', after, before)}",
    )
    checks.check(
        "re-labelled answers rejected",
        rose("bad_signature", after, before) >= n,
        f"landmark bad_signature +{rose('bad_signature', after, before)}",
    )
    checks.check(
        "earlier probes' answers rejected",
        rose("replayed", after, before) >= n - 1,
        f"landmark replayed +{rose('replayed', after, before)}",
    )
    old_sigs = {p.chip_signature for p in first.probes if p.rtt_ns is not None}
    accepted = [p.seq for p in second.probes if p.chip_signature in old_sigs]
    verified = verify_report(second.raw, registry)  # each signature over its own nonce
    checks.check(
        "no replayed answer in the report",
        not accepted and verified.answered == n,
        f"{verified.answered}/{n} answered, all fresh; first/second report "
        f"{first.digest_hex[:12]}/{second.digest_hex[:12]}",
    )
    checks.check(
        "replayed HELLO refused by the agent",
        rose("replayed", agent_after, agent_before) == 1,
        f"agent replayed +{rose('replayed', agent_after, agent_before)}",
    )
    return checks.outcome(
        name,
        "landmark: answers demultiplexed by session id (unknown_session), only the "
        "outstanding seq accepted (replayed), chip signature over the fresh nonce "
        "(bad_signature); agent: HELLO session-id replay cache (replayed)",
    )


async def _settle(condition: Callable[[], bool], *, timeout_s: float = 2.0) -> bool:
    """Wait (bounded) until ``condition()`` holds; datagrams on loopback need a moment."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not condition():
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(0.01)
    return True


class _Sniffer(_Recorder):
    """On-path observer for the impersonation attack: notes live sessions."""

    def __init__(self, upstream: Address) -> None:
        super().__init__(upstream)
        self.acked: asyncio.Event = asyncio.Event()

    def from_chip(self, data: bytes) -> None:
        super().from_chip(data)
        if len(data) >= 4 and data[3] == MessageType.HELLO_ACK:
            self.acked.set()


async def impersonated_landmark_attack(directory: Path) -> AttackOutcome:
    """Landmark lm-evil (enrolled) poses as lm-fra: its own key under lm-fra's id, and
    lm-fra's genuine HELLO / live session replayed from its own address."""
    name = "impersonated_landmark"
    checks = _Checks()
    chip_key, (fra, evil), registry = _cast(name, ("fra", "ams"))
    # lm-evil's own secret, under lm-fra's id
    posing = generate_private_key(Role.LANDMARK, fra.id, seed=_seed(name, Role.LANDMARK, evil.id))
    async with _world(directory, registry, [fra], chip_key, probe_timeout_ms=500) as world:
        lab, (honest,), agent = world
        sniffer = await lab.relay(_Sniffer(agent.address))
        evil_socket = await lab.relay(_Relay(agent.address))
        loop = asyncio.get_running_loop()
        base = dict(agent.counters)
        # 1. a HELLO under lm-fra's id, signed with lm-evil's key
        fake = Hello.create(
            posing, session_id=os.urandom(16), chip_id=chip_key.id, issued_at_unix_ns=time.time_ns()
        )
        evil_socket.to_chip(fake.to_bytes())
        await _settle(lambda: agent.counters.get("bad_signature", 0) > base.get("bad_signature", 0))
        # 2. lm-fra measures through the on-path sniffer; lm-evil probes lm-fra's live
        #    session from its own address while the round runs
        round_task = loop.create_task(honest.measure(chip_key.id, sniffer.address))
        await asyncio.wait_for(sniffer.acked.wait(), 5.0)
        sid = next(iter(sniffer.sessions))
        stolen = Probe(session_id=sid, seq=1_000_000, nonce=os.urandom(16))
        evil_socket.to_chip(stolen.to_bytes())
        report = await asyncio.wait_for(round_task, 10.0)
        # 3. lm-fra's genuine HELLO, replayed from lm-evil's address
        evil_socket.to_chip(sniffer.hellos[0])
        await _settle(lambda: agent.counters.get("replayed", 0) > base.get("replayed", 0))
        await _settle(lambda: agent.counters.get("wrong_source", 0) > base.get("wrong_source", 0))
        counters = dict(agent.counters)

    def rose(reason: str) -> int:
        return counters.get(reason, 0) - base.get(reason, 0)

    checks.check(
        "HELLO signed with another landmark's key refused",
        rose("bad_signature") == 1,
        f"agent bad_signature +{rose('bad_signature')}",
    )
    checks.check(
        "probe into another landmark's session refused",
        rose("wrong_source") == 1,
        f"agent wrong_source +{rose('wrong_source')} (session bound to the HELLO's source)",
    )
    checks.check(
        "replayed HELLO refused", rose("replayed") == 1, f"agent replayed +{rose('replayed')}"
    )
    checks.check(
        "the honest round was unaffected",
        verify_report(report.raw, registry).answered == report.answered == _PROBES,
        f"{report.answered}/{_PROBES} answered",
    )
    # 4. a report under lm-fra's id signed with lm-evil's key
    forged = _resign(posing, report, report.probes)
    verdict = _report_refusal(forged.raw, registry, BadSignature)
    checks.check(
        "report under another landmark's id rejected",
        verdict == "bad_signature",
        f"verify_report: {verdict}",
    )
    return checks.outcome(
        name,
        "landmark signatures are checked against the registry key of the claimed id "
        "(bad_signature); HELLO session ids are single-use (replayed); a session answers "
        "only its HELLO's source address (wrong_source)",
    )
