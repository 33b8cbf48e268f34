"""Adaptive measurement planner: budget, down landmarks, load, audit mode, azimuth spread,
and adaptive settling what all-landmarks settles on a simulated world."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chiploc.common.errors import InputError
from chiploc.sim._adaptive import run_adaptive
from chiploc.sim._fleet import FleetWorld
from chiploc.solver import Verdict
from chiploc.verifier import ChipState, PlanPolicy, PlanSite, plan_step, spread_pick

lat_st = st.floats(-80, 80)
lon_st = st.floats(-179, 179)


def _sites(rng: random.Random, n: int) -> list[PlanSite]:
    return [
        PlanSite(id=f"lm{k}", lat=rng.uniform(-80, 80), lon=rng.uniform(-179, 179))
        for k in range(n)
    ]


@given(
    seed=st.integers(0, 2**32),
    n_landmarks=st.integers(1, 40),
    first=st.integers(1, 5),
    per_step=st.integers(1, 4),
    budget=st.integers(5, 12),
    n_down=st.integers(0, 10),
)
def test_a_chip_never_gets_more_rounds_than_its_budget_nor_a_down_landmark(
    seed: int, n_landmarks: int, first: int, per_step: int, budget: int, n_down: int
) -> None:
    rng = random.Random(seed)
    sites = _sites(rng, n_landmarks)
    down = {s.id for s in rng.sample(sites, min(n_down, n_landmarks))}
    policy = PlanPolicy(first=first, per_step=per_step, budget=budget)
    states = [
        ChipState(chip_id=f"c{k}", anchor=(rng.uniform(-80, 80), rng.uniform(-179, 179)))
        for k in range(6)
    ]
    for _ in range(20):  # every step leaves the chips unsettled: the budget must stop it
        plan = plan_step(states, sites, policy=policy, down=down)
        for _chip_id, asked in plan.asks.items():
            assert not set(asked) & down
        advice = tuple((s.id, 5.0, 4.9) for s in sites[:3])  # near misses: repeats wanted
        states = [
            ChipState(
                chip_id=s.chip_id,
                anchor=s.anchor,
                asked=s.asked + plan.asks.get(s.chip_id, ()),
                verdict=Verdict.INCONCLUSIVE,
                advice=advice,
            )
            for s in states
        ]
        if not plan.asks:
            break
    for s in states:
        assert len(s.asked) <= budget
    up = n_landmarks - len(down)
    # Nothing more was asked only because the budget was spent or no landmark was left.
    for s in states:
        assert len(s.asked) == budget or len(set(s.asked)) == up or len(s.asked) >= up


def test_a_down_landmark_is_skipped_and_reported_and_the_next_takes_its_place() -> None:
    sites = [
        PlanSite(id="near", lat=50.0, lon=8.1),
        PlanSite(id="next", lat=50.0, lon=9.5),
        PlanSite(id="far", lat=30.0, lon=60.0),
    ]
    chip = ChipState(chip_id="c", anchor=(50.0, 8.0))
    plan = plan_step([chip], sites, policy=PlanPolicy(first=1, budget=3), down={"near"})
    assert plan.asks == {"c": ("next",)}
    assert plan.skipped_down == {"c": ("near",)}
    up = plan_step([chip], sites, policy=PlanPolicy(first=1, budget=3))
    assert up.asks == {"c": ("near",)}
    assert not up.skipped_down


def test_audit_mode_asks_every_up_landmark_whatever_the_budget() -> None:
    rng = random.Random(5)
    sites = _sites(rng, 30)
    chips = [ChipState(chip_id=f"c{k}", anchor=(10.0 * k, 5.0)) for k in range(4)]
    plan = plan_step(chips, sites, policy=PlanPolicy(budget=3, audit=True), down={"lm3"})
    for asked in plan.asks.values():
        assert set(asked) == {s.id for s in sites} - {"lm3"}
    assert all(v == ("lm3",) for v in plan.skipped_down.values())
    assert plan.rounds == 4 * 29


def test_settled_chips_are_not_measured_again() -> None:
    sites = _sites(random.Random(1), 10)
    for verdict in (Verdict.COMPLIANT, Verdict.VIOLATION, Verdict.INCONSISTENT):
        chip = ChipState(chip_id="c", anchor=(0.0, 0.0), asked=("lm1",), verdict=verdict)
        plan = plan_step([chip], sites, policy=PlanPolicy())
        assert not plan.asks
        assert plan.settled == ("c",)


def test_load_is_capped_per_landmark_and_spread_to_the_next_nearest() -> None:
    sites = [PlanSite(id=f"lm{k}", lat=48.0 + k * 0.5, lon=2.0) for k in range(8)]
    chips = [ChipState(chip_id=f"c{k}", anchor=(48.0, 2.0)) for k in range(10)]
    plan = plan_step(chips, sites, policy=PlanPolicy(first=2, budget=4, max_load=3))
    counts = {lm: len(c) for lm, c in plan.by_landmark.items()}
    assert max(counts.values()) <= 3
    assert sum(counts.values()) == 20  # every chip still got its two landmarks


def test_second_pick_is_spread_in_azimuth_not_the_next_nearest_in_the_same_direction() -> None:
    # From the chip: landmark A 100 km east, B 150 km east (same bearing), C 180 km west.
    def east(km: float) -> float:
        return km / (111.32 * math.cos(math.radians(45.0)))

    sites = [
        PlanSite(id="A", lat=45.0, lon=10.0 + east(100)),
        PlanSite(id="B", lat=45.0, lon=10.0 + east(150)),
        PlanSite(id="C", lat=45.0, lon=10.0 - east(180)),
    ]
    plan = plan_step(
        [ChipState(chip_id="c", anchor=(45.0, 10.0))], sites, policy=PlanPolicy(first=2)
    )
    assert plan.asks["c"] == ("A", "C")
    assert spread_pick([100.0, 150.0, 180.0], [1.57, 1.57, -1.57], 2) == (0, 2)


def test_bad_policies_and_inputs_are_refused() -> None:
    with pytest.raises(InputError):
        PlanPolicy(first=5, budget=3)
    with pytest.raises(InputError):
        PlanPolicy(max_load=0)
    with pytest.raises(InputError):
        ChipState(chip_id="c", anchor=(95.0, 0.0))
    with pytest.raises(InputError):
        plan_step(
            [ChipState(chip_id="c", anchor=(0.0, 0.0))] * 2,
            [PlanSite(id="a", lat=0, lon=0)],
            policy=PlanPolicy(),
        )


def test_adaptive_settles_what_all_landmarks_settles_with_far_fewer_rounds() -> None:
    world = FleetWorld.generate(seed=11, chips=40, landmarks=60)
    every = run_adaptive(world, policy=PlanPolicy(audit=True))
    adaptive = run_adaptive(world, policy=PlanPolicy())
    assert every.rounds_per_chip == 60
    assert every.settled, "the world must have settled chips for the comparison to mean much"
    settled_both = every.settled & adaptive.settled
    assert len(settled_both) >= 0.98 * len(every.settled)
    disagreements = [c for c in settled_both if every.verdicts[c] != adaptive.verdicts[c]]
    assert disagreements == []
    assert adaptive.rounds_per_chip * 5 <= every.rounds_per_chip
    assert max(adaptive.rounds.values()) <= PlanPolicy().budget
    # And physics: no chip inside its zone is a VIOLATION, none outside is COMPLIANT.
    for k, chip in enumerate(world.chips):
        v = adaptive.verdicts[chip.id]
        assert v is not (Verdict.VIOLATION if chip.inside else Verdict.COMPLIANT), k


def test_a_down_landmark_is_reported_by_the_adaptive_run_and_never_measured() -> None:
    world = FleetWorld.generate(seed=12, chips=12, landmarks=30)
    nearest = world.landmarks[world.nearest_landmarks(0, 1)[0]].id
    outcome = run_adaptive(world, policy=PlanPolicy(), chips=[0], down={nearest})
    assert nearest in outcome.skipped_down[world.chips[0].id]
