"""Adaptive measurement: which landmarks should measure which chip next (sans-I/O).

Every landmark measuring every chip costs ``landmarks x chips`` rounds a day.
The planner asks instead, per chip, the few landmarks most likely to settle
the verdict, and only as many more as the verdict still needs:

1. **First step.** The ``policy.first`` up landmarks nearest the chip's
   *anchor* (its last proven region's centre; for a new chip its registered
   site, or a point of its authorized zone), spread in azimuth: a candidate
   in the same direction as one already chosen counts as up to twice as far
   (:func:`spread_pick`), because disks from one side leave the other side of
   the region open.
2. **Follow-up steps** for a chip still INCONCLUSIVE or UNREACHABLE: the
   solver's settle advice first (a landmark whose RTT came within
   ``policy.repeat_within`` of the RTT that would settle it is asked again:
   one queueing spike could explain the gap), then ``policy.per_step`` new
   landmarks nearest the anchor (the caller moves it to the latest proven
   region's centre), spread in azimuth.
3. **Budget.** A chip never gets more than ``policy.budget`` landmark rounds
   in total; a chip that spent it is reported ``exhausted``, not measured on.
4. **Down landmarks** are skipped and reported per chip (``skipped_down``:
   the landmarks it would have asked), never waited on; the next candidates
   take their place.
5. **Load.** A landmark is given at most ``policy.max_load`` chips a step
   (None: no cap); a chip whose next choice is full takes the next candidate.
6. **Audit mode** (``policy.audit``): every up landmark not yet asked,
   budget ignored: the all-landmarks measurement, kept for audits.

Settled (no more asks): COMPLIANT, VIOLATION and INCONSISTENT (an empty
intersection only gets emptier with more disks). Soundness does not depend
on the planner: whatever it asks, the verdict comes from signed, verified
reports through the solver; the planner only decides how much evidence to
gather, so a poor plan costs tightness (INCONCLUSIVE), never a false verdict.

Pure: numbers and ids in, a frozen :class:`StepPlan` out; the edge (the
verifier's collector, or a simulation) performs the rounds.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

import numpy as np
import numpy.typing as npt

from chiploc.common.errors import InputError
from chiploc.solver import SolveResult, Verdict

__all__ = [
    "SETTLED",
    "ChipState",
    "PlanPolicy",
    "PlanSite",
    "StepPlan",
    "chip_state",
    "plan_step",
    "spread_pick",
]

#: Verdicts after which a chip needs no more landmarks this cycle.
SETTLED: Final = frozenset({Verdict.COMPLIANT, Verdict.VIOLATION, Verdict.INCONSISTENT})

_EARTH_KM: Final = 6371.0
_CANDIDATES: Final = 24  # nearest landmarks considered per pick


def _check_point(lat: float, lon: float, what: str) -> None:
    if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180):
        raise InputError(f"{what}: ({lat!r}, {lon!r}) is not a lat/lon", reason="bad_plan")


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanSite:
    """A landmark the planner may ask: its id and registry coordinates."""

    id: str
    lat: float
    lon: float

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise InputError("landmark id must be a non-empty string", reason="bad_plan")
        _check_point(self.lat, self.lon, f"landmark {self.id}")


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanPolicy:
    """How many landmarks a chip gets, and when."""

    first: int = 3
    per_step: int = 2
    budget: int = 10
    repeat_within: float = 0.10
    max_load: int | None = None
    audit: bool = False

    def __post_init__(self) -> None:
        for name in ("first", "per_step", "budget"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"{name} must be a positive integer", reason="bad_plan")
        if self.first > self.budget:
            raise InputError("first must not exceed budget", reason="bad_plan")
        if not (math.isfinite(self.repeat_within) and 0 <= self.repeat_within < 1):
            raise InputError("repeat_within must be in [0, 1)", reason="bad_plan")
        if self.max_load is not None and (
            isinstance(self.max_load, bool) or not isinstance(self.max_load, int)
        ):
            raise InputError("max_load must be an integer or None", reason="bad_plan")
        if self.max_load is not None and self.max_load < 1:
            raise InputError("max_load must be positive", reason="bad_plan")


@dataclass(frozen=True, slots=True, kw_only=True)
class ChipState:
    """What the planner knows of one chip.

    ``asked``: every landmark round it had this cycle (a repeat appears
    twice); ``verdict``: its latest verdict (None before the first step);
    ``advice``: the solver's settle advice as (landmark, rtt_ms,
    rtt_needed_ms).
    """

    chip_id: str
    anchor: tuple[float, float]  # (lat, lon)
    asked: tuple[str, ...] = ()
    verdict: Verdict | None = None
    advice: tuple[tuple[str, float, float], ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.chip_id, str) or not self.chip_id:
            raise InputError("chip id must be a non-empty string", reason="bad_plan")
        _check_point(self.anchor[0], self.anchor[1], f"chip {self.chip_id} anchor")
        if not isinstance(self.asked, tuple) or not isinstance(self.advice, tuple):
            raise InputError("asked and advice must be tuples", reason="bad_plan")


def chip_state(
    chip_id: str,
    result: SolveResult | None,
    *,
    anchor: tuple[float, float],
    asked: Sequence[str] = (),
) -> ChipState:
    """The state after a solve: verdict, settle advice, and the anchor moved to the
    proven region's centre when there is one."""
    if result is None:
        return ChipState(chip_id=chip_id, anchor=anchor, asked=tuple(asked))
    centre = result.region_center if result.region_center is not None else anchor
    return ChipState(
        chip_id=chip_id,
        anchor=centre,
        asked=tuple(asked),
        verdict=result.verdict,
        advice=tuple((s.landmark, s.rtt_ms, s.rtt_needed_ms) for s in result.settle),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class StepPlan:
    """One planning step: per chip the landmarks to ask, and what was not asked and why."""

    asks: Mapping[str, tuple[str, ...]]  # chip -> landmarks (chips with something to ask)
    skipped_down: Mapping[str, tuple[str, ...]]  # chip -> down landmarks it would have asked
    settled: tuple[str, ...]  # chips needing nothing more
    exhausted: tuple[str, ...]  # unsettled chips whose budget is spent (or no landmark left)
    down: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        object.__setattr__(self, "asks", MappingProxyType(dict(self.asks)))
        object.__setattr__(self, "skipped_down", MappingProxyType(dict(self.skipped_down)))
        for chip_id, landmarks in self.asks.items():
            if len(set(landmarks)) != len(landmarks):
                raise ValueError(f"chip {chip_id}: a landmark asked twice in one step")
            if set(landmarks) & self.down:
                raise ValueError(f"chip {chip_id}: a down landmark was asked")

    @property
    def by_landmark(self) -> Mapping[str, tuple[str, ...]]:
        """Landmark -> chips it measures this step (the rounds to trigger)."""
        out: dict[str, list[str]] = {}
        for chip_id, landmarks in self.asks.items():
            for landmark_id in landmarks:
                out.setdefault(landmark_id, []).append(chip_id)
        return MappingProxyType({k: tuple(v) for k, v in sorted(out.items())})

    @property
    def rounds(self) -> int:
        return sum(len(v) for v in self.asks.values())


def _unit(lat: npt.ArrayLike, lon: npt.ArrayLike) -> npt.NDArray[np.float64]:
    la, lo = np.radians(np.asarray(lat, dtype=float)), np.radians(np.asarray(lon, dtype=float))
    return np.stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)], axis=-1)


class _Sites:
    """Landmark positions as arrays (built once per plan)."""

    def __init__(self, sites: Sequence[PlanSite]) -> None:
        ids = [s.id for s in sites]
        if len(set(ids)) != len(ids):
            raise InputError("landmark ids must be unique", reason="bad_plan")
        self.ids = ids
        self.index = {s: k for k, s in enumerate(ids)}
        self.lat = np.array([s.lat for s in sites], dtype=float)
        self.lon = np.array([s.lon for s in sites], dtype=float)
        self.unit = _unit(self.lat, self.lon)

    def distances_km(self, lat: float, lon: float) -> npt.NDArray[np.float64]:
        cos = np.clip(self.unit @ _unit(lat, lon), -1.0, 1.0)
        out: npt.NDArray[np.float64] = np.arccos(cos) * _EARTH_KM
        return out

    def azimuths(
        self, lat: float, lon: float, idx: npt.NDArray[np.intp]
    ) -> npt.NDArray[np.float64]:
        """Initial bearing (radians) from (lat, lon) to each landmark in ``idx``."""
        p1, l1 = math.radians(lat), math.radians(lon)
        p2, l2 = np.radians(self.lat[idx]), np.radians(self.lon[idx])
        dl = l2 - l1
        y = np.sin(dl) * np.cos(p2)
        x = math.cos(p1) * np.sin(p2) - math.sin(p1) * np.cos(p2) * np.cos(dl)
        out: npt.NDArray[np.float64] = np.arctan2(y, x)
        return out


def spread_pick(
    distances_km: Sequence[float], azimuths_rad: Sequence[float], k: int
) -> tuple[int, ...]:
    """Indices of ``k`` candidates: nearest first, then spread in azimuth.

    Each next pick minimises ``(d + 100 km) * (1 + max(0, cos dAz))`` where dAz
    is the smallest azimuth difference to a landmark already picked: a
    candidate in the same direction counts twice as far, one at a right angle
    or beyond counts as it is. Deterministic (ties: lower index).
    """
    n = len(distances_km)
    if len(azimuths_rad) != n:
        raise InputError("one azimuth per distance", reason="bad_plan")
    d = np.asarray(distances_km, dtype=float) + 100.0
    az = np.asarray(azimuths_rad, dtype=float)
    chosen: list[int] = []
    worst_cos = np.full(n, -1.0)
    free = np.ones(n, dtype=bool)
    for _ in range(min(k, n)):
        score = np.where(free, d * (1.0 + np.maximum(worst_cos, 0.0)), np.inf)
        best = int(np.argmin(score))
        if not math.isfinite(float(score[best])):
            break
        chosen.append(best)
        free[best] = False
        np.maximum(worst_cos, np.cos(az - az[best]), out=worst_cos)
    return tuple(chosen)


def plan_step(
    chips: Iterable[ChipState],
    landmarks: Sequence[PlanSite],
    *,
    policy: PlanPolicy,
    down: Iterable[str] = (),
    load: Mapping[str, int] | None = None,
) -> StepPlan:
    """Plan one step of rounds for ``chips`` over ``landmarks`` (see the module doc).

    ``down``: landmarks known to be unreachable now (skipped and reported).
    ``load``: rounds already given to each landmark this step by other plans
    (counted against ``policy.max_load``). Chips are planned in the order given.
    """
    sites = _Sites(landmarks)
    down_set = frozenset(down)
    loads: Counter[str] = Counter(load or {})
    asks: dict[str, tuple[str, ...]] = {}
    skipped: dict[str, tuple[str, ...]] = {}
    settled: list[str] = []
    exhausted: list[str] = []
    seen: set[str] = set()
    for chip in chips:
        if chip.chip_id in seen:
            raise InputError(f"chip {chip.chip_id} planned twice", reason="bad_plan")
        seen.add(chip.chip_id)
        if chip.verdict in SETTLED:
            settled.append(chip.chip_id)
            continue
        picked, skip = _plan_chip(chip, sites, policy, down_set, loads)
        if skip:
            skipped[chip.chip_id] = skip
        if picked:
            asks[chip.chip_id] = picked
            loads.update(picked)
        else:
            exhausted.append(chip.chip_id)
    return StepPlan(
        asks=asks,
        skipped_down=skipped,
        settled=tuple(settled),
        exhausted=tuple(exhausted),
        down=down_set,
    )


def _plan_chip(
    chip: ChipState,
    sites: _Sites,
    policy: PlanPolicy,
    down: frozenset[str],
    loads: Counter[str],
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    asked = set(chip.asked)

    def full(landmark_id: str) -> bool:
        return policy.max_load is not None and loads[landmark_id] >= policy.max_load

    if policy.audit:
        new = [i for i in sites.ids if i not in asked]
        return (
            tuple(i for i in new if i not in down and not full(i)),
            tuple(i for i in new if i in down),
        )
    room = policy.budget - len(chip.asked)
    if room <= 0:
        return (), ()
    picked: list[str] = []
    skipped: list[str] = []
    if chip.asked:  # a follow-up: settle advice first
        repeats = Counter(chip.asked)
        for landmark_id, rtt_ms, needed_ms in chip.advice:
            if len(picked) >= room or landmark_id in picked or repeats[landmark_id] > 1:
                continue
            if needed_ms < rtt_ms * (1.0 - policy.repeat_within):
                continue  # too far off for a queueing spike to explain
            if landmark_id in down:
                skipped.append(landmark_id)
            elif landmark_id in sites.index and not full(landmark_id):
                picked.append(landmark_id)
        want = min(room - len(picked), policy.per_step)
    else:
        want = min(room, policy.first)
    if want > 0:
        lat, lon = chip.anchor
        dist = sites.distances_km(lat, lon)
        order = np.argsort(dist, kind="stable")
        excluded = asked | set(picked)
        # What the chip would ask were every landmark up: the down ones among them are
        # reported; the choice is then made among the landmarks that can answer.
        pool_all = [int(k) for k in order if sites.ids[k] not in excluded][:_CANDIDATES]
        if down:
            ideal = _spread(sites, lat, lon, dist, pool_all, want)
            skipped.extend(i for i in ideal if i in down)
        pool = [
            int(k)
            for k in order
            if sites.ids[k] not in excluded and sites.ids[k] not in down and not full(sites.ids[k])
        ][:_CANDIDATES]
        picked.extend(_spread(sites, lat, lon, dist, pool, want))
    return tuple(picked), tuple(dict.fromkeys(skipped))


def _spread(
    sites: _Sites,
    lat: float,
    lon: float,
    dist: npt.NDArray[np.float64],
    pool: list[int],
    want: int,
) -> list[str]:
    if not pool:
        return []
    idx = np.array(pool, dtype=np.intp)
    chosen = spread_pick(dist[idx].tolist(), sites.azimuths(lat, lon, idx).tolist(), want)
    return [sites.ids[pool[c]] for c in chosen]
