"""Attacks on where a chip seems to be, judged by the solver on real RTTs through
the never-early delay emulator: a relay through Frankfurt (:func:`relay_attack`),
answers held back (:func:`added_delay_attack`), a landmark lying about its RTTs
(:func:`lying_landmark_attack`) and one key in two places (:func:`cloned_key_attack`).

Invariants:

* Delay is only ever added (emulator and relay never deliver early), so a verdict
  that comes out sound here rests on physics, not on the lab.
* Routes are seeded from the attack's name and cities: a run is repeatable.
"""

from __future__ import annotations

import random
from pathlib import Path

from chiploc.protocol import ProbeRecord, verify_report

from ._attack_evidence import (
    _measure_all,
    _reports,
    _resign,
    _rtts,
    _solve,
    _true_position_kept,
    _verdict,
)
from ._attack_lab import _LOOPBACK, _MODEL, AttackOutcome, _cast, _Checks, _point, _route, _world
from ._attack_middlebox import _Relay
from ._paths import Route, draw_hop, fastest_route

__all__ = ["added_delay_attack", "cloned_key_attack", "lying_landmark_attack", "relay_attack"]


async def relay_attack(directory: Path) -> AttackOutcome:
    """A chip in Moscow answers through a relay in Frankfurt; the zone is Germany."""
    name = "relay"
    checks = _Checks()
    codes = ("fra", "ber", "par", "ams")
    chip_key, lm_keys, registry = _cast(name, codes, chip="chip-relayed")
    chip_at, proxy_at = _point("mow"), _point("fra")
    async with _world(directory, registry, lm_keys, chip_key) as (lab, daemons, agent):
        # chip side: proxy -> Moscow; the relay is a real forwarder in Frankfurt
        relay = _Relay((_LOOPBACK, 0))  # upstream set below, once the emulator exists
        await lab.relay(relay)
        hop_out = draw_hop(_MODEL, proxy_at, chip_at, random.Random(f"{name}/proxy"))
        chip_side = await lab.emulate(
            "relay-chip", [agent.address], [(relay.upstream_source, Route(hops=(hop_out,)), 0)]
        )
        relay.upstream = chip_side
        # landmark side: each landmark -> the proxy in Frankfurt
        paths = []
        for d, code in zip(daemons, codes, strict=True):
            hop_in = draw_hop(_MODEL, _point(code), proxy_at, random.Random(f"{name}/{code}"))
            paths.append((d.udp_address, Route(hops=(hop_in,)), 0))
        proxy_public = await lab.emulate("relay-proxy", [relay.address], paths)
        results = await _measure_all(daemons, chip_key.id, proxy_public)
    reports = _reports(results)
    checks.check("rounds measured through the relay", len(reports) == len(codes), _rtts(reports))
    result = _solve(chip_key.id, (r.raw for r in reports), registry, "country:DEU")
    checks.check(
        "verdict is never COMPLIANT",
        result.verdict.value in ("VIOLATION", "INCONCLUSIVE"),
        f"{_verdict(result)} ({result.message})",
    )
    checks.check(*_true_position_kept(result, chip_at))
    return checks.outcome(
        name,
        "physics: a relayed answer travels landmark->proxy->chip, at least the direct "
        "distance at c, so every vacuum disk still contains the chip (solver verdict)",
    )


async def added_delay_attack(directory: Path) -> AttackOutcome:
    """A chip in Warsaw (zone: Germany) holds every answer 20 ms to blur its position."""
    name = "added_delay"
    checks = _Checks()
    codes = ("fra", "ber", "waw", "par")
    chip_key, lm_keys, registry = _cast(name, codes, chip="chip-waw")
    chip_at = _point("waw")
    async with _world(directory, registry, lm_keys, chip_key) as (lab, daemons, agent):
        operator = await lab.relay(_Relay(agent.address))  # the operator's delaying box
        paths = [
            (d.udp_address, _route(name, [_point(c), chip_at]), 0)
            for d, c in zip(daemons, codes, strict=True)
        ]
        address = await lab.emulate("delay-chip", [operator.address], paths)
        honest = await _measure_all(daemons, chip_key.id, address)
        operator.hold_answers_s = 0.020
        delayed = await _measure_all(daemons, chip_key.id, address)
    honest_reports, delayed_reports = _reports(honest), _reports(delayed)
    checks.check(
        "all rounds measured",
        len(honest_reports) == len(delayed_reports) == len(codes),
        f"honest {_rtts(honest_reports)}; delayed {_rtts(delayed_reports)}",
    )
    base = _solve(chip_key.id, (r.raw for r in honest_reports), registry, "country:DEU")
    result = _solve(chip_key.id, (r.raw for r in delayed_reports), registry, "country:DEU")
    checks.check(
        "delayed: INCONCLUSIVE or VIOLATION, never COMPLIANT",
        result.verdict.value in ("INCONCLUSIVE", "VIOLATION"),
        f"without delay {_verdict(base)}, with 20 ms {_verdict(result)} "
        f"(area {base.area_km2 or 0:.0f} -> {result.area_km2 or 0:.0f} km2)",
    )
    checks.check(*_true_position_kept(result, chip_at))
    return checks.outcome(
        name,
        "delay only lengthens RTTs, so every disk grows and still contains the chip: "
        "the region can only blur (INCONCLUSIVE), never move into the zone",
    )


async def lying_landmark_attack(directory: Path) -> AttackOutcome:
    """One dishonest landmark (Frankfurt) signs a report with its RTTs cut to 0.3 ms."""
    name = "lying_landmark"
    checks = _Checks()
    codes = ("fra", "par", "lon", "mad")  # no honest landmark near the chip (Warsaw)
    chip_key, lm_keys, registry = _cast(name, codes, chip="chip-waw")
    chip_at = _point("waw")
    async with _world(directory, registry, lm_keys, chip_key) as (lab, daemons, agent):
        paths = [
            (d.udp_address, _route(name, [_point(c), chip_at]), 0)
            for d, c in zip(daemons, codes, strict=True)
        ]
        address = await lab.emulate("liar-chip", [agent.address], paths)
        results = await _measure_all(daemons, chip_key.id, address)
    reports = {r.landmark_id: r for r in _reports(results)}
    checks.check("all rounds measured", len(reports) == len(codes), _rtts(reports.values()))
    real = reports["lm-fra"]
    # the liar re-signs its real transcript (real chip signatures) with shortened RTTs
    lie = _resign(
        lm_keys[0],
        real,
        [
            ProbeRecord(
                seq=p.seq,
                nonce=p.nonce,
                rtt_ns=None if p.rtt_ns is None else 300_000,
                chip_signature=p.chip_signature,
                timestamp_source=p.timestamp_source,
            )
            for p in real.probes
        ],
    )
    verify_report(lie.raw, registry)  # it verifies: RTTs are the landmark's word
    raws = [lie.raw, *(r.raw for lid, r in reports.items() if lid != "lm-fra")]
    strict = _solve(chip_key.id, raws, registry, "country:DEU", tolerate=0)
    tolerant = _solve(chip_key.id, raws, registry, "country:DEU", tolerate=1)
    honest_raws = [r.raw for r in reports.values()]
    honest0 = _solve(chip_key.id, honest_raws, registry, "country:DEU", tolerate=0)
    honest1 = _solve(chip_key.id, honest_raws, registry, "country:DEU", tolerate=1)
    checks.check(
        "caught with tolerate=1 (or flagged INCONSISTENT)",
        tolerant.verdict.value != "COMPLIANT" or strict.verdict.value == "INCONSISTENT",
        f"lie verifies; tolerate=0 {_verdict(strict)}, tolerate=1 {_verdict(tolerant)} "
        f"({tolerant.message})",
    )
    checks.check(
        "cost of tolerate on the honest reports",
        True,
        f"honest area {honest0.area_km2 or 0:.0f} km2 ({_verdict(honest0)}) -> "
        f"{honest1.area_km2 or 0:.0f} km2 ({_verdict(honest1)}) with tolerate=1",
    )
    return checks.outcome(
        name,
        "a report's RTT is only its landmark's word (verify_report accepts the lie); "
        "solver tolerate=1 requires the verdict to hold with any one landmark left out",
    )


async def cloned_key_attack(directory: Path) -> AttackOutcome:
    """One chip key answers from Frankfurt and from Tokyo (emulator clone routing)."""
    name = "cloned_key"
    checks = _Checks()
    codes = ("fra", "par", "tyo", "sin")
    chip_key, lm_keys, registry = _cast(name, codes, chip="chip-clone")
    places = (_point("fra"), _point("tyo"))
    async with _world(directory, registry, lm_keys, chip_key) as (lab, daemons, agent):
        agents = [agent, *[await lab.agent(chip_key, registry) for _ in places[1:]]]
        paths = []
        for d, code in zip(daemons, codes, strict=True):
            options = [_route(name, [_point(code), p]) for p in places]
            best = fastest_route(options)
            paths.append((d.udp_address, best, options.index(best)))
        address = await lab.emulate("clone", [a.address for a in agents], paths)
        results = await _measure_all(daemons, chip_key.id, address)
        answered_by = [a.counters.get("answered", 0) for a in agents]
    reports = _reports(results)
    checks.check(
        "both copies answered",
        len(reports) == len(codes) and all(n > 0 for n in answered_by),
        f"{_rtts(reports)}; answers per place {answered_by}",
    )
    result = _solve(chip_key.id, (r.raw for r in reports), registry, "country:DEU")
    checks.check(
        "INCONSISTENT",
        result.verdict.value == "INCONSISTENT",
        f"{_verdict(result)}: {result.message}",
    )
    return checks.outcome(
        name,
        "two places 9 000 km apart each answer some landmarks fast: their disks cannot "
        "intersect (solver INCONSISTENT names the conflicting landmarks)",
    )
