"""Solve: intersect the landmarks' disks into a region and decide against a zone.

Invariants enforced here:

* The region is an OUTER approximation of the exact intersection of the
  model's geodesic disks: each disk polygon circumscribes its disk, and the
  intersection of supersets is a superset. An empty polygon intersection
  therefore proves an empty exact intersection (INCONSISTENT).
* COMPLIANT only if the region is covered by the zone's inner geometry;
  VIOLATION only if it misses the zone's outer geometry; otherwise
  INCONCLUSIVE. No landmark -> UNREACHABLE; empty region -> INCONSISTENT.
  Nothing but vacuum is a proof.
* Disks are taken by increasing radius; one that seems to contain a smaller
  disk is not built at first (a guess), but the final region is tested against
  every disk left out, and one that does not provably contain it (every region
  edge AB within ``r`` by ``(d(A) + d(B) + |AB|) / 2`` with an upper bound of
  the geodesic distance, and its antipode outside the region) is intersected
  too: a disk that contains the region cannot change it. Landmarks whose disk is
  not proven to contain the final region are *binding*; the region equals the
  intersection of the binding disks, so ``tolerate=N`` only branches on binding
  landmarks.
* ``margin_km`` never overstates: for every border segment it takes
  ``(f(A) + f(B) - len) / 2`` with ``f(v) = max_i (dist(v, c_i) - r_i)``, a lower
  bound of the distance from ``v`` to the exact intersection (triangle
  inequality) and a 1-Lipschitz function along the border.
* The point estimate is labelled and never affects the verdict.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import shapely

from chiploc.common.errors import MeasurementError
from chiploc.common.units import MAX_CLOCK_RATE_ERROR_PPM

from ._estimate import DEFAULT_ESTIMATOR, estimate_many, estimate_model
from ._geodesy import (
    _polygonal,
    polygon_area_km2,
)
from ._intersect import _build_many, _Problem, _SetResult
from ._models import (
    Calibration,
    Measurement,
    Model,
    check_clock_tolerance_ppm,
)
from ._regions import AuthorizedRegion, coarse_zone
from ._results import Estimator, LandmarkBound, Settle, SolveResult, Verdict
from ._settle import _settle_many, _SettleJob
from ._verdict import _center, _decide, _margin_km

__all__ = ["prepare_zone", "solve", "solve_many"]

_MAX_TOLERATE: Final = 8


def _tolerant_nodes(
    prob: _Problem, root: frozenset[int], budget: int
) -> dict[frozenset[int], frozenset[int]]:
    """Every distinct ``root - X`` (|X| <= budget) whose region may differ, mapped to X."""
    seen: dict[frozenset[int], frozenset[int]] = {}

    def visit(node: frozenset[int], removed: frozenset[int], left: int) -> None:
        if node in seen:
            return
        seen[node] = removed
        if left == 0:
            return
        res = prob.solve_set(node)
        branch = res.binding if not res.region.is_empty else frozenset(res.conflict)
        for b in sorted(branch):
            visit(node - {b}, removed | {b}, left - 1)

    visit(root, frozenset(), budget)
    return seen


def solve(
    target: str,
    measurements: Sequence[Measurement],
    region: AuthorizedRegion,
    *,
    model: Model = Model.VACUUM,
    tolerate: int = 0,
    calibration: Calibration | None = None,
    estimate: bool = True,
    clock_tolerance_ppm: float = MAX_CLOCK_RATE_ERROR_PPM,
    estimator: Estimator = DEFAULT_ESTIMATOR,
) -> SolveResult:
    """Locate ``target`` from its landmarks' minimum RTTs and decide against ``region``.

    ``clock_tolerance_ppm`` bounds the landmark clocks' rate error; every RTT is
    widened accordingly before it becomes a distance (see ``docs/solver.md``).
    Expected outcomes (including INCONSISTENT and UNREACHABLE) are values;
    only malformed input raises (MeasurementError / ValueError).
    """
    return solve_many(
        [(target, measurements)],
        region,
        model=model,
        tolerate=tolerate,
        calibration=calibration,
        estimate=estimate,
        clock_tolerance_ppm=clock_tolerance_ppm,
        estimator=estimator,
    )[0]


_BATCH: Final = 256  # targets whose first disks are built together


def prepare_zone(region: AuthorizedRegion) -> None:
    """Build, now, the geometry :func:`solve_many` derives from ``region`` on first use and
    keeps per process: the border segments margins are bounded on and the coarse zone
    settle advice works on (about a second for a large zone).

    A worker calls it at start-up, so no batch pays for it; results do not change.
    """
    region.inner_border  # noqa: B018 - cached properties: built here, once
    region.outer_border  # noqa: B018
    coarse_zone(region)


def solve_many(
    targets: Iterable[tuple[str, Sequence[Measurement]]],
    region: AuthorizedRegion,
    *,
    model: Model = Model.VACUUM,
    tolerate: int = 0,
    calibration: Calibration | None = None,
    estimate: bool = True,
    clock_tolerance_ppm: float = MAX_CLOCK_RATE_ERROR_PPM,
    estimator: Estimator = DEFAULT_ESTIMATOR,
) -> list[SolveResult]:
    """:func:`solve` for each ``(target, measurements)`` against one zone, in order.

    The same results as one :func:`solve` per target, up to rounding (disk vertices
    built in a batch may differ by 1e-9 deg; estimates of 16 or more targets run in
    lockstep). The disks each target is likely to need are built for up to 256 targets
    at once: every vectorised step of the disk construction (plan, ``Geod.fwd``,
    certificate, polygons) is then paid once per batch instead of once per target.
    """
    clock_tolerance_ppm = check_clock_tolerance_ppm(clock_tolerance_ppm)
    if not isinstance(model, Model):
        raise ValueError(f"model must be a Model, got {model!r}")
    if not isinstance(estimator, Estimator):
        raise ValueError(f"estimator must be an Estimator, got {estimator!r}")
    if (
        isinstance(tolerate, bool)
        or not isinstance(tolerate, int)
        or not 0 <= tolerate <= _MAX_TOLERATE
    ):
        raise ValueError(f"tolerate must be an int in [0, {_MAX_TOLERATE}], got {tolerate!r}")
    opts = _Options(
        model=model,
        tolerate=tolerate,
        calibration=calibration,
        estimate=estimate,
        clock_tolerance_ppm=clock_tolerance_ppm,
        estimator=estimator,
    )
    out: list[SolveResult] = []
    batch: list[tuple[str, _Problem | None]] = []
    for target, measurements in targets:
        ms = tuple(measurements)
        ids = [m.landmark for m in ms]
        if len(set(ids)) != len(ids):
            dup = sorted({i for i in ids if ids.count(i) > 1})
            raise MeasurementError(
                f"{target}: duplicate landmark(s) {', '.join(dup)}", reason="duplicate"
            )
        prob = _Problem(ms, model, calibration, clock_tolerance_ppm) if ms else None
        batch.append((target, prob))
        if len(batch) == _BATCH:
            out.extend(_solve_batch(batch, region, opts))
            batch = []
    out.extend(_solve_batch(batch, region, opts))
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class _Options:
    model: Model
    tolerate: int
    calibration: Calibration | None
    estimate: bool
    clock_tolerance_ppm: float
    estimator: Estimator


def _solve_batch(
    batch: Sequence[tuple[str, _Problem | None]], region: AuthorizedRegion, opts: _Options
) -> list[SolveResult]:
    """Solve the problems' full sets in phases, each phase's disks in one batch (the
    likely ones, then those that the first regions could not prove redundant), then
    finish each problem in turn."""
    probs = [p for _, p in batch if p is not None]
    roots = [frozenset(range(len(p.ms))) for p in probs]
    likely = [p.likely_needed(p.order(root)) for p, root in zip(probs, roots, strict=True)]
    _build_many(probs, likely)
    cuts = [p.begin(root) for p, root in zip(probs, roots, strict=True)]
    _build_many(probs, [cut.more for cut in cuts])
    for p, root, cut in zip(probs, roots, cuts, strict=True):
        p.solve_set(root, cut)
    solved = [_solve_one(target, prob, region, opts) for target, prob in batch]
    results = [result for result, _, _ in solved]
    settling = [(k, job) for k, (_, _, job) in enumerate(solved) if job is not None]
    if settling:
        advice = _settle_many(
            [job for _, job in settling],
            region,
            opts.model,
            opts.calibration,
            opts.clock_tolerance_ppm,
        )
        for (k, job), settle in zip(settling, advice, strict=True):
            if settle:
                results[k] = dataclasses.replace(
                    results[k], settle=settle, message=job.message(settle)
                )
    asked = [k for k, (_, want, _) in enumerate(solved) if want is not None]
    wanted = [want for _, want, _ in solved if want is not None]
    if wanted:
        estimates = estimate_many(
            [use for use, _ in wanted],
            opts.estimator,
            model=estimate_model(opts.estimator, opts.model),
            calibration=opts.calibration,
            clock_tolerance_ppm=opts.clock_tolerance_ppm,
            starts=[start for _, start in wanted],
        )
        for k, est in zip(asked, estimates, strict=True):
            if est is not None:
                results[k] = dataclasses.replace(results[k], estimate=est)
    return results


#: What an estimate starts from: the landmarks to fit and a start (lat, lon).
_EstimateRequest = tuple[list[Measurement], tuple[float, float]]


def _solve_one(
    target: str, prob: _Problem | None, region: AuthorizedRegion, opts: _Options
) -> tuple[SolveResult, _EstimateRequest | None, _SettleJob | None]:
    """The result without its estimate and settle advice (both made for the whole batch
    at once, :func:`_solve_batch`): what the estimate should start from, if one is
    wanted, and the advice to give, if the result is INCONCLUSIVE."""
    model, tolerate = opts.model, opts.tolerate
    clock_tolerance_ppm, estimate = opts.clock_tolerance_ppm, opts.estimate
    proof = model is Model.VACUUM

    def make(**kw: Any) -> SolveResult:
        return SolveResult(
            target=target,
            proof=proof,
            model=model,
            region_spec=region.spec,
            tolerate=tolerate,
            clock_tolerance_ppm=clock_tolerance_ppm,
            **kw,
        )

    if prob is None:
        return make(
            verdict=Verdict.UNREACHABLE, region=None, region_center=None, area_km2=None,
            margin_km=None, binding_landmarks=(), conflicting_landmarks=(), settle=(),
            estimate=None,
            landmarks=(), message=f"{target}: no measurement from any landmark",
        ), None, None  # fmt: skip
    ms = prob.ms
    root = frozenset(range(len(ms)))
    res = prob.solve_set(root)
    nodes = _tolerant_nodes(prob, root, tolerate) if tolerate else {root: frozenset()}
    names = [m.landmark for m in ms]

    def bounds(binding: frozenset[int]) -> tuple[LandmarkBound, ...]:
        return tuple(
            LandmarkBound(measurement=m, radius_km=r, binding=i in binding)
            for i, (m, r) in enumerate(zip(ms, prob.r.tolist(), strict=True))
        )

    consistent = {n: x for n, x in nodes.items() if not prob.solve_set(n).region.is_empty}
    if not consistent:
        conflict = tuple(names[i] for i in res.conflict)
        left_out = f" (even with any {tolerate} left out)" if tolerate else ""
        if proof:
            return make(
                verdict=Verdict.INCONSISTENT, region=None, region_center=None, area_km2=None,
                margin_km=None, binding_landmarks=(), conflicting_landmarks=conflict, settle=(),
                estimate=None, landmarks=bounds(frozenset()),
                message=(
                    f"no location satisfies all bounds under the {model.value} model: "
                    f"{', '.join(conflict)} conflict{left_out}"
                ),
            ), None, None  # fmt: skip
        # Under an estimate model an empty region is a model miss (paths faster than the
        # model assumed), never evidence of a lie: INCONCLUSIVE, with an estimate.
        nearest = min(ms, key=lambda m: m.effective_rtt_ms)
        want_all = (list(ms), (nearest.lat, nearest.lon)) if estimate else None
        return make(
            verdict=Verdict.INCONCLUSIVE, region=None, region_center=None, area_km2=None,
            margin_km=None, binding_landmarks=(), conflicting_landmarks=conflict, settle=(),
            estimate=None, landmarks=bounds(frozenset()), reason="model_miss",
            message=(
                f"model miss: no location satisfies all bounds under the {model.value} model "
                f"(an estimate, not a proof): {', '.join(conflict)} conflict{left_out}; some "
                "paths are faster than the model assumes - no evidence that a landmark lies"
            ),
        ), want_all, None  # fmt: skip

    verdicts = {n: _decide(prob.solve_set(n).region, region) for n in consistent}
    kinds = set(verdicts.values())
    verdict = kinds.pop() if len(kinds) == 1 else Verdict.INCONCLUSIVE
    if len(consistent) == 1:
        out_region = prob.solve_set(next(iter(consistent))).region
    else:
        out_region = _polygonal(shapely.union_all([prob.solve_set(n).region for n in consistent]))
    liars: tuple[tuple[str, ...], ...] = ()
    if res.region.is_empty and proof:
        smallest = min(len(x) for x in consistent.values())
        liars = tuple(
            sorted(
                {
                    tuple(sorted(names[i] for i in x))
                    for x in consistent.values()
                    if len(x) == smallest
                }
            )
        )
    root_binding = res.binding if not res.region.is_empty else frozenset()

    margin: float | None = None
    if verdict in (Verdict.COMPLIANT, Verdict.VIOLATION):
        border = region.inner_border if verdict is Verdict.COMPLIANT else region.outer_border
        margin = min(
            _margin_km(prob, prob.solve_set(n).binding, prob.solve_set(n).region, border)
            for n in consistent
        )
    center = _center(prob.shape(out_region))
    want: _EstimateRequest | None = None
    if estimate:
        largest: frozenset[int] = max(consistent, key=len)
        use = [ms[i] for i in sorted(largest)]
        want = (use, center if center is not None else (use[0].lat, use[0].lon))

    def message(settle: tuple[Settle, ...]) -> str:
        return _message(
            verdict, region.spec, margin, model, settle, names, verdicts, consistent, liars, res
        )

    job: _SettleJob | None = None
    if verdict is Verdict.INCONCLUSIVE and verdicts.get(root) is Verdict.INCONCLUSIVE:
        job = _SettleJob(prob, root, res, center, message)
    return make(
        verdict=verdict, region=out_region, region_center=center,
        area_km2=polygon_area_km2(out_region), margin_km=margin,
        binding_landmarks=tuple(names[i] for i in sorted(root_binding, key=lambda i: prob.r[i])),
        conflicting_landmarks=tuple(names[i] for i in res.conflict), settle=(), estimate=None,
        landmarks=bounds(root_binding), message=message(()), likely_liars=liars,
        reason="border" if verdict is Verdict.INCONCLUSIVE else None,
    ), want, job  # fmt: skip


def _message(
    verdict: Verdict,
    spec: str,
    margin: float | None,
    model: Model,
    settle: tuple[Settle, ...],
    names: list[str],
    verdicts: dict[frozenset[int], Verdict],
    consistent: dict[frozenset[int], frozenset[int]],
    liars: tuple[tuple[str, ...], ...],
    res: _SetResult,
) -> str:
    label = (
        ""
        if model is Model.VACUUM
        else f" (under the {model.value} model: an estimate, not a proof)"
    )
    if verdict is Verdict.COMPLIANT:
        text = f"region lies {margin or 0.0:,.1f} km inside {spec}{label}"
    elif verdict is Verdict.VIOLATION:
        text = f"region lies {margin or 0.0:,.1f} km outside {spec}{label}"
    else:
        text = f"region overlaps the border of {spec}{label}"
        if settle:
            s = settle[0]
            text += (
                f"; {s.landmark} at <= {s.rtt_needed_ms:.3f} ms (now {s.rtt_ms:.3f} ms) "
                f"would give {s.would_give.value}"
            )
        flips = sorted(
            {
                ", ".join(sorted(names[i] for i in consistent[n]))
                for n, v in verdicts.items()
                if consistent[n]
            }
        )
        if len(set(verdicts.values())) > 1 and flips:
            text += f"; the verdict changes when leaving out {' or '.join(flips[:3])}"
    if res.region.is_empty and model is not Model.VACUUM:
        text += (
            "; all landmarks together conflict under the model ("
            + ", ".join(names[i] for i in res.conflict)
            + "): a model miss, no evidence that a landmark lies"
        )
    if liars:
        text += (
            "; all landmarks together are inconsistent ("
            + ", ".join(names[i] for i in res.conflict)
            + f" conflict); likely liar(s): {' or '.join('+'.join(x) for x in liars)}"
        )
    return text
