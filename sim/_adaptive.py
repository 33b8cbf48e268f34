"""Adaptive measurement against all-landmarks measurement on a :class:`FleetWorld`.

The planner (:func:`verifier.plan_step`) decides which landmark measures which
chip at each step; this simulation performs those rounds with the world's
RTT model (:func:`world_rtts_ms`, a repeat of a pair is a new draw), keeps
each (chip, landmark) minimum, solves every chip that got new measurements
(:func:`solver.solve_many`, chips grouped by zone) and feeds the verdicts back
to the planner until it asks nothing more. ``PlanPolicy(audit=True)`` is the
all-landmarks mode: one step, every up landmark.

Pure apart from CPU: the world, the policy and the down set in, an
:class:`AdaptiveOutcome` out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from chiploc.solver import Measurement, SolveResult, Verdict, load_region, solve_many
from chiploc.verifier import ChipState, PlanPolicy, PlanSite, chip_state, plan_step

from ._fleet import FleetWorld, world_rtts_ms

__all__ = ["AdaptiveOutcome", "run_adaptive"]

_SETTLED = (Verdict.COMPLIANT, Verdict.VIOLATION)


@dataclass(frozen=True, slots=True, kw_only=True)
class AdaptiveOutcome:
    """Per chip: final verdict and landmark rounds used; what was skipped."""

    verdicts: Mapping[str, Verdict]
    rounds: Mapping[str, int]
    skipped_down: Mapping[str, tuple[str, ...]]
    exhausted: tuple[str, ...]
    steps: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "verdicts", MappingProxyType(dict(self.verdicts)))
        object.__setattr__(self, "rounds", MappingProxyType(dict(self.rounds)))
        object.__setattr__(self, "skipped_down", MappingProxyType(dict(self.skipped_down)))

    @property
    def settled(self) -> frozenset[str]:
        """Chips with a COMPLIANT or VIOLATION verdict."""
        return frozenset(c for c, v in self.verdicts.items() if v in _SETTLED)

    @property
    def rounds_per_chip(self) -> float:
        return sum(self.rounds.values()) / max(1, len(self.rounds))


def run_adaptive(
    world: FleetWorld,
    *,
    policy: PlanPolicy,
    chips: Sequence[int] | None = None,
    down: Iterable[str] = (),
    max_steps: int = 32,
) -> AdaptiveOutcome:
    """Measure and solve ``chips`` (indices; default all) as the planner directs.

    Chips are run zone by zone (every step of one zone's chips, then the next
    zone), so each zone's geometry is built once; ``policy.max_load`` then
    applies within a zone's chips.
    """
    indices = list(range(len(world.chips))) if chips is None else list(chips)
    by_zone: dict[str, list[int]] = {}
    for k in indices:
        by_zone.setdefault(world.chips[k].region, []).append(k)
    parts = [
        _run_group(world, policy=policy, indices=by_zone[z], down=down, max_steps=max_steps)
        for z in sorted(by_zone)
    ]
    return AdaptiveOutcome(
        verdicts={c: v for p in parts for c, v in p.verdicts.items()},
        rounds={c: v for p in parts for c, v in p.rounds.items()},
        skipped_down={c: v for p in parts for c, v in p.skipped_down.items()},
        exhausted=tuple(c for p in parts for c in p.exhausted),
        steps=max((p.steps for p in parts), default=0),
    )


def _run_group(
    world: FleetWorld,
    *,
    policy: PlanPolicy,
    indices: Sequence[int],
    down: Iterable[str],
    max_steps: int,
) -> AdaptiveOutcome:
    sites = [PlanSite(id=s.id, lat=s.lat, lon=s.lon) for s in world.landmarks]
    lm_index = {s.id: k for k, s in enumerate(world.landmarks)}
    down_set = frozenset(down)
    by_id = {world.chips[k].id: k for k in indices}
    states = {
        world.chips[k].id: ChipState(chip_id=world.chips[k].id, anchor=world.chips[k].site)
        for k in indices
    }
    best: dict[str, dict[str, float]] = {c: {} for c in states}
    draws: Counter[tuple[str, str]] = Counter()
    results: dict[str, SolveResult] = {}
    skipped: dict[str, tuple[str, ...]] = {}
    exhausted: tuple[str, ...] = ()
    steps = 0
    while steps < max_steps:
        plan = plan_step(states.values(), sites, policy=policy, down=down_set)
        for chip_id, lost in plan.skipped_down.items():
            skipped[chip_id] = tuple(dict.fromkeys(skipped.get(chip_id, ()) + lost))
        exhausted = plan.exhausted
        if not plan.asks:
            break
        steps += 1
        for chip_id, landmarks in plan.asks.items():
            k = by_id[chip_id]
            per_draw: dict[int, list[str]] = {}
            for landmark_id in landmarks:
                per_draw.setdefault(draws[chip_id, landmark_id], []).append(landmark_id)
                draws[chip_id, landmark_id] += 1
            for draw, ids in per_draw.items():
                row = world_rtts_ms(world, k, draw=draw)
                for landmark_id in ids:
                    rtt = float(row[lm_index[landmark_id]])
                    old = best[chip_id].get(landmark_id)
                    best[chip_id][landmark_id] = rtt if old is None else min(old, rtt)
        solved = _solve(world, {c: best[c] for c in plan.asks}, by_id)
        results.update(solved)
        for chip_id, landmarks in plan.asks.items():
            prev = states[chip_id]
            states[chip_id] = chip_state(
                chip_id, solved[chip_id], anchor=prev.anchor, asked=prev.asked + landmarks
            )
        if policy.audit:
            break
    return AdaptiveOutcome(
        verdicts={c: (results[c].verdict if c in results else Verdict.UNREACHABLE) for c in states},
        rounds={c: len(s.asked) for c, s in states.items()},
        skipped_down=skipped,
        exhausted=exhausted,
        steps=steps,
    )


def _solve(
    world: FleetWorld, measured: Mapping[str, Mapping[str, float]], by_id: Mapping[str, int]
) -> dict[str, SolveResult]:
    lm = {s.id: s for s in world.landmarks}
    by_zone: dict[str, list[str]] = {}
    for chip_id in measured:
        by_zone.setdefault(world.chips[by_id[chip_id]].region, []).append(chip_id)
    out: dict[str, SolveResult] = {}
    for spec in sorted(by_zone):
        members = by_zone[spec]
        targets = [
            (
                c,
                [
                    Measurement(landmark=i, lat=lm[i].lat, lon=lm[i].lon, rtt_ms=rtt)
                    for i, rtt in sorted(measured[c].items())
                ],
            )
            for c in members
        ]
        out.update(zip(members, solve_many(targets, load_region(spec)), strict=True))
    return out
