"""Attacks on enrolment and revocation in the signed registry: a revoked landmark
that keeps measuring (:func:`revoked_landmark_attack`), a revoked chip
(:func:`revoked_chip_attack`) and a chip that was never enrolled
(:func:`unenrolled_chip_attack`), each asking through the Python API and over HTTP.

Invariants:

* A refusal is read from the system (the error's reason code, the HTTP status,
  the refusal counters, :func:`protocol.verify_report`), never assumed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp

from chiploc.common.errors import ProbeTimeout, RevokedIdentity, UnknownIdentity
from chiploc.landmarks import LandmarkDaemon
from chiploc.protocol import Role

from ._attack_evidence import _measure_refusal, _report_refusal
from ._attack_lab import AttackOutcome, _cast, _Checks, _key, _world
from ._delay import Address

__all__ = ["revoked_chip_attack", "revoked_landmark_attack", "unenrolled_chip_attack"]


async def revoked_landmark_attack(directory: Path) -> AttackOutcome:
    """A landmark keeps measuring after its revocation."""
    name = "revoked_landmark"
    checks = _Checks()
    chip_key, (lm_key,), before = _cast(name)
    after = before.with_revoked(lm_key.id)
    # the revoked landmark still runs with the registry it had
    async with _world(directory, before, [lm_key], chip_key, hello_timeout_ms=300) as world:
        _, (daemon,), agent = world
        old_report = await daemon.measure(chip_key.id, agent.address)
        agent.update_registry(after)
        refused = await _measure_refusal(daemon, chip_key.id, agent.address, ProbeTimeout)
        agent_counters = dict(agent.counters)
    checks.check(
        "agent refuses its hellos",
        agent_counters.get("revoked", 0) >= 1 and refused == "timeout",
        f"agent revoked={agent_counters.get('revoked', 0)}, round: {refused}",
    )
    verdict = _report_refusal(old_report.raw, after, RevokedIdentity)
    checks.check(
        "its reports are rejected",
        verdict == "revoked",
        f"verify_report (earlier report): {verdict}",
    )
    return checks.outcome(
        name,
        "registry revocation: the agent's verify_hello and verify_report look the landmark "
        "up in the signed registry and refuse revoked entries",
    )


async def revoked_chip_attack(directory: Path) -> AttackOutcome:
    """A revoked chip still runs its agent and asks to be measured."""
    name = "revoked_chip"
    checks = _Checks()
    chip_key, (lm_key,), before = _cast(name)
    after = before.with_revoked(chip_key.id)
    async with _world(directory, before, [lm_key], chip_key) as (_, (honest,), agent):
        old_report = await honest.measure(chip_key.id, agent.address)
    async with _world(directory / "after", after, [lm_key], chip_key) as (_, (daemon,), agent):
        refused = await _measure_refusal(daemon, chip_key.id, agent.address, RevokedIdentity)
        counters = dict(daemon.counters)
        status, body = await _post_round(daemon, chip_key.id, agent.address)
        opened = agent.counters.get("sessions_opened", 0)
    checks.check(
        "landmark refuses to measure",
        refused == "revoked" and status == 404 and opened == 0,
        f"measure: {refused}; HTTP {status} {body.get('reason')}; agent sessions {opened}",
    )
    checks.check(
        "refusal counted",
        counters.get("revoked", 0) >= 1,
        f"landmark counters {sorted(counters.items())}",
    )
    verdict = _report_refusal(old_report.raw, after, RevokedIdentity)
    checks.check(
        "its reports are unusable", verdict == "revoked", f"verify_report (earlier): {verdict}"
    )
    return checks.outcome(
        name,
        "registry revocation: the landmark looks the chip up before any hello; "
        "verify_report refuses reports naming a revoked chip",
    )


async def _post_round(
    daemon: LandmarkDaemon, chip_id: str, address: Address
) -> tuple[int, dict[str, Any]]:
    timeout = aiohttp.ClientTimeout(total=5.0)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.post(
            f"{daemon.http_url}/v1/rounds",
            json={"chip_id": chip_id, "address": f"{address[0]}:{address[1]}", "probes": 2},
        ) as response,
    ):
        body = await response.json()
        return response.status, body if isinstance(body, dict) else {}


async def unenrolled_chip_attack(directory: Path) -> AttackOutcome:
    """A chip whose key is not in the registry asks to be measured."""
    name = "unenrolled_chip"
    checks = _Checks()
    _, lm_keys, registry = _cast(name)  # enrols chip-1
    stranger = _key(Role.CHIP, "chip-x", name)
    async with _world(directory, registry, lm_keys, stranger) as (_, (daemon,), agent):
        refused = await _measure_refusal(daemon, stranger.id, agent.address, UnknownIdentity)
        status, body = await _post_round(daemon, stranger.id, agent.address)
        counters = dict(daemon.counters)
        opened = agent.counters.get("sessions_opened", 0)
    checks.check(
        "landmark refuses to measure",
        refused == "unknown_identity" and status == 404 and opened == 0,
        f"measure: {refused}; HTTP {status} {body.get('reason')}; agent sessions {opened}",
    )
    checks.check(
        "refusal counted",
        counters.get("unknown_identity", 0) >= 2,
        f"landmark counters {sorted(counters.items())}",
    )
    from chiploc.solver import load_region, solve

    result = solve(stranger.id, [], load_region("country:DEU"))
    checks.check("verdict UNREACHABLE", result.verdict.value == "UNREACHABLE", result.message)
    return checks.outcome(
        name,
        "enrolment: the landmark looks the chip up in the signed registry before any hello; "
        "no report, so the solver says UNREACHABLE",
    )
