"""Settle advice: which landmark, at what RTT, would turn an INCONCLUSIVE into a verdict.

Advice is conservative: an RTT it names is one at which that landmark's disk provably
keeps the region inside the inner zone (COMPLIANT) or out of the outer zone (VIOLATION),
computed from lower bounds of distances (see :func:`_settle_many`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import shapely

from ._geodesy import (
    R0_KM,
    R1_KM,
)
from ._intersect import (
    _ARC_SLACK_KM,
    DISK_REACH_KM,
    DISK_REACH_REL,
    _Problem,
    _SetResult,
    _sphere_km,
)
from ._models import (
    Calibration,
    Measurement,
    Model,
    rtts_for_radii_ms,
)
from ._regions import AuthorizedRegion, CoarseZone, coarse_zone
from ._results import Settle, Verdict

_MAX_SETTLE_CANDIDATES: Final = 3
_NEAR_OTHERS: Final = 3  # non-binding landmarks of each kind also asked (see _settle_candidates)


def _segments_lower_km(
    p: npt.NDArray[np.float64], z: CoarseZone, use: npt.NDArray[np.bool_]
) -> npt.NDArray[np.float64]:
    """Per point (row of ``p``) and zone geometry (column: inner, outer): the smallest
    ``(d(A) + d(B) - |AB|) / 2`` over that geometry's boundary segments marked in ``use``.

    ``d`` is the great-circle distance on the sphere of radius R0 (never above the
    WGS84 geodesic), less the rounding slack. Exact, with pruning: the segment at
    the nearest endpoint (distance ``m``) gives at most ``m``, and a segment whose
    nearer end lies at ``e`` gives at least ``e - |AB|/2``, so only segments with
    ``e <= m + max|AB|/2`` are evaluated. ``inf`` where no segment is used.
    """
    best = np.full((p.shape[0], 2), np.inf)
    cols = np.flatnonzero(use)  # only the used segments: a region meets few of a zone's
    if not cols.size:
        return best
    dot_a, dot_b = p @ z.unit_a[cols].T, p @ z.unit_b[cols].T
    near = np.maximum(dot_a, dot_b)  # the nearer end of each segment
    keep = np.zeros(near.shape, dtype=bool)
    split = int(np.searchsorted(cols, z.split))  # used inner segments first, then outer
    for part in (slice(0, split), slice(split, None)):
        if near[:, part].shape[1] == 0:
            continue
        half = float(z.len_km[cols[part]].max()) / 2 / R0_KM + 1e-6
        nearest = np.arccos(np.clip(near[:, part].max(axis=1), -1.0, 1.0))
        lim = np.cos(np.minimum(nearest + half, math.pi))
        np.greater_equal(near[:, part], lim[:, None], out=keep[:, part])
    rows, k = np.divmod(np.flatnonzero(keep), cols.size)  # 2-D nonzero is slow
    d_a = np.arccos(np.clip(dot_a[rows, k], -1.0, 1.0))
    d_a += np.arccos(np.clip(dot_b[rows, k], -1.0, 1.0))
    bound = (R0_KM * d_a - z.len_km[cols[k]]) / 2 - _ARC_SLACK_KM
    np.minimum.at(best, (rows, (k >= split).astype(np.intp)), bound)
    return best


_MEETING_CELLS: Final = 1 << 22  # regions x zone segments per block in _meeting


def _meeting(
    lines: npt.NDArray[np.object_],
    line_job: npt.NDArray[np.intp],
    regions: npt.NDArray[np.object_],
    z: CoarseZone,
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Region boundary segments (``lines``, of the regions ``regions[line_job]``) that
    meet the inner / the outer zone's boundary; per region (row), the zone segments
    (of both) that meet it.

    A zone segment meets the polygon R iff it meets R's boundary (one of its lines:
    the pairs of the one query) or lies inside R. A run of consecutive segments of a
    zone ring that all miss R's boundary is a connected path disjoint from it, so
    it lies wholly inside or wholly outside R: one point test per run decides.
    """
    ia, ja = z.tree.query(lines, predicate="intersects")
    outer = ja >= z.split
    cross_inner = np.zeros(len(lines), dtype=bool)
    cross_inner[ia[~outer]] = True
    cross_outer = np.zeros(len(lines), dtype=bool)
    cross_outer[ia[outer]] = True
    n_zone = z.lon_a.size
    meets = np.zeros((regions.size, n_zone), dtype=bool)
    meets[line_job[ia], ja] = True
    # The runs, a block of regions at a time: the (regions x zone segments) temporaries of
    # a big zone (100,000+ coarse segments) would otherwise take hundreds of MB.
    block = max(1, _MEETING_CELLS // max(n_zone, 1))
    for lo in range(0, regions.size, block):
        hit = meets[lo : lo + block]
        start = np.repeat(z.ring_first[None, :], hit.shape[0], axis=0)  # each run's first
        start[:, 1:] |= hit[:, :-1]
        start &= ~hit
        job, first = np.divmod(np.flatnonzero(start), n_zone)
        if first.size:  # each row starts a run (a ring's first segment): runs stay in their row
            inside = shapely.intersects_xy(regions[lo + job], z.lon_a[first], z.lat_a[first])
            # int32: numpy's bool -> int64 running sum is ~20x slower than bool -> int32
            run = np.cumsum(start, dtype=np.int32) - 1
            hit |= ~hit & inside[run.reshape(hit.shape)]
    return cross_inner, cross_outer, meets


@dataclass(frozen=True, slots=True)
class _SettleJob:
    """An INCONCLUSIVE result waiting for its advice (:func:`_settle_many`), and the
    message that will name it."""

    prob: _Problem
    root: frozenset[int]
    res: _SetResult
    center: tuple[float, float] | None
    message: Callable[[tuple[Settle, ...]], str]


def _settle_candidates(job: _SettleJob) -> npt.NDArray[np.int64]:
    """The landmarks asked: the binding ones (by radius), then two kinds of others: the
    nearest to the region's centre, and those that nearly bind (the farthest vertex
    nearest their radius)."""
    prob, res = job.prob, job.res
    binding = sorted(res.binding, key=lambda i: prob.r[i])
    oi = np.sort(np.fromiter(job.root - res.binding, dtype=np.int64))
    oi = oi[np.isfinite(prob.r[oi])]
    others: list[int] = oi.tolist()
    if len(others) > _NEAR_OTHERS:
        shape = prob.shape(res.region)
        far = np.arccos(np.clip((prob.unit[oi] @ shape.unit.T).min(axis=1), -1.0, 1.0))
        near = np.argsort(-far * R0_KM / prob.r[oi], kind="stable")[:_NEAR_OTHERS]
        if job.center is not None:
            c_lat, c_lon = job.center
            dist = _sphere_km(c_lat, c_lon, prob.lat[oi], prob.lon[oi], R0_KM)
            near = np.array(sorted({*np.argsort(dist)[:_NEAR_OTHERS].tolist(), *near.tolist()}))
        others = oi[near].tolist()
    return np.array(binding + others, dtype=np.int64)


def _starts(counts: npt.NDArray[np.intp]) -> npt.NDArray[np.intp]:
    """Where each run of ``counts`` items laid end to end starts."""
    out: npt.NDArray[np.intp] = np.cumsum(counts) - counts
    return out


def _runs(counts: npt.NDArray[np.intp]) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """For runs of ``counts`` items laid end to end: each run's start, each item's offset."""
    starts = _starts(counts)
    offset = np.arange(int(counts.sum()), dtype=np.intp) - np.repeat(starts, counts)
    return starts, offset


def _settle_many(
    jobs: Sequence[_SettleJob],
    zone: AuthorizedRegion,
    model: Model,
    cal: Calibration | None,
    clock_tolerance_ppm: float,
) -> list[tuple[Settle, ...]]:
    """Per job: landmarks whose lower RTT would settle its INCONCLUSIVE region, and at
    which RTT; all jobs' arrays end to end, one call per step.

    For landmark i with a radius r' < r_i the new region is inside the current
    region R (a polygonised disk reaches at most ``r'(1 + DISK_REACH_REL) +
    DISK_REACH_KM`` from its centre, within the exact disk of radius r_i, within
    R's own polygon for i). It is COMPLIANT if that reach stays below the distance
    from landmark i to ``R - inner`` and VIOLATION if below the distance to
    ``R ∩ outer``, and not INCONSISTENT if some vertex of R is closer than r'.
    Both distances are bounded from below, with zone geometries that err on the
    safe side (:func:`coarse_geometries`), over a superset of the boundary of
    the set: boundary segments of R that leave the inner zone (resp. touch the
    outer one), and zone boundary segments that meet R. Each segment AB counts
    ``(d(A) + d(B) - |AB|) / 2`` (distance is 1-Lipschitz), with d the
    great-circle distance on the sphere of radius R0 (never above the WGS84
    geodesic). So the advice errs towards asking for a lower RTT than needed.
    """
    out: list[tuple[Settle, ...]] = [()] * len(jobs)
    cands = [_settle_candidates(job) for job in jobs]
    shapes = [job.prob.shape(job.res.region) for job in jobs]
    # Every live job has a candidate and a segment (so a vertex): the reduceat calls below
    # need non-empty runs (an empty run would read the next run's first element).
    live = [k for k, c in enumerate(cands) if c.size and shapes[k].seg_len_km.size]
    if not live:
        return out
    z = coarse_zone(zone)
    shapes = [shapes[k] for k in live]
    regions = np.array([s.geom for s in shapes], dtype=object)
    shapely.prepare(regions)  # point tests on arrays of geometries do not prepare them
    # Every region's vertices and boundary segments, end to end.
    n_v = np.array([s.lat.size for s in shapes], dtype=np.intp)
    n_s = np.array([s.seg_len_km.size for s in shapes], dtype=np.intp)
    v_start = _starts(n_v)
    lon_v = np.concatenate([s.lon for s in shapes])
    lat_v = np.concatenate([s.lat for s in shapes])
    unit_v = np.concatenate([s.unit for s in shapes])
    seg_av = np.concatenate([np.flatnonzero(s.same) for s in shapes]) + np.repeat(v_start, n_s)
    seg_len = np.concatenate([s.seg_len_km for s in shapes])
    lines = shapely.linestrings(
        np.stack(
            [np.concatenate([s.seg_a for s in shapes]), np.concatenate([s.seg_b for s in shapes])],
            axis=1,
        )
    )
    in_ci = shapely.contains_xy(z.inner, lon_v, lat_v)  # per vertex, once
    in_co = shapely.intersects_xy(z.outer, lon_v, lat_v)
    cross_ci, cross_co, meets = _meeting(lines, np.repeat(np.arange(len(live)), n_s), regions, z)
    # Superset of the boundary of R - inner (goal COMPLIANT) and of R ∩ outer (VIOLATION):
    # own segments that leave the inner zone (touch the outer one), and zone segments in R.
    own_c = ~(in_ci[seg_av] & in_ci[seg_av + 1]) | cross_ci
    own_v = in_co[seg_av] | in_co[seg_av + 1] | cross_co

    # One row per candidate landmark; (row, vertex) and (row, segment) pairs of its region.
    probs = [jobs[k].prob for k in live]
    live_cands = [cands[k] for k in live]
    n_c = np.array([c.size for c in live_cands], dtype=np.intp)
    row_job = np.repeat(np.arange(len(live)), n_c)

    def per_row(of: Callable[[_Problem], npt.NDArray[Any]]) -> npt.NDArray[Any]:
        """A per-landmark array of each live problem, at its candidates, end to end."""
        return np.concatenate([of(p)[c] for p, c in zip(probs, live_cands, strict=True)])

    cand = np.concatenate(live_cands)
    pu = per_row(lambda p: p.unit)
    pv_start, pv_off = _runs(n_v[row_job])
    pair_v = pv_off + np.repeat(v_start[row_job], n_v[row_job])
    d = np.einsum("ij,ij->i", np.repeat(pu, n_v[row_job], axis=0), unit_v[pair_v])
    np.clip(d, -1.0, 1.0, out=d)
    d = R0_KM * np.arccos(d)  # every vertex ends some segment
    ps_start, ps_off = _runs(n_s[row_job])
    pair_s = ps_off + np.repeat(_starts(n_s)[row_job], n_s[row_job])
    pa = np.repeat(pv_start - v_start[row_job], n_s[row_job]) + seg_av[pair_s]
    own_bound = (d[pa] + d[pa + 1] - seg_len[pair_s]) / 2 - _ARC_SLACK_KM
    reach = np.empty((cand.size, 2))  # columns: goal COMPLIANT, goal VIOLATION
    for col, own in enumerate((own_c, own_v)):
        reach[:, col] = np.minimum.reduceat(np.where(own[pair_s], own_bound, np.inf), ps_start)
    r_start = _starts(n_c)
    for j in np.flatnonzero(meets.any(axis=1)).tolist():
        rows = slice(int(r_start[j]), int(r_start[j] + n_c[j]))
        np.minimum(reach[rows], _segments_lower_km(pu[rows], z, meets[j]), out=reach[rows])
    # A vertex of R within r' keeps the new region non-empty (upper bound: sphere R1).
    nearest_vertex = np.minimum.reduceat(d, pv_start) * (R1_KM / R0_KM) + 2 * _ARC_SLACK_KM
    # A landmark inside the set it should keep away from can never settle it.
    c_lat, c_lon, r_c = per_row(lambda p: p.lat), per_row(lambda p: p.lon), per_row(lambda p: p.r)
    in_r = shapely.intersects_xy(regions[row_job], c_lon, c_lat)
    inside_rest = np.stack(
        [
            in_r & ~shapely.contains_xy(z.inner, c_lon, c_lat),
            in_r & shapely.intersects_xy(z.outer, c_lon, c_lat),
        ],
        axis=1,
    )
    with np.errstate(invalid="ignore"):
        r_new = np.minimum(reach, r_c[:, None])
        r_new -= DISK_REACH_KM
        r_new /= 1 + DISK_REACH_REL
        r_new *= 1 - 1e-9
    # Never from inside the set to keep away from, nor when no vertex of R lies within
    # r' (the lower RTT might leave nothing: INCONSISTENT, not a settlement).
    r_new[inside_rest | ~np.isfinite(reach) | (r_new <= nearest_vertex[:, None])] = -np.inf
    goal = (r_new[:, 1] > r_new[:, 0]).astype(np.intp)  # COMPLIANT on a tie
    best = r_new[np.arange(cand.size), goal]
    rows_ok = np.flatnonzero(np.isfinite(best))
    row_ms = [
        probs[j].ms[i]
        for j, i in zip(row_job[rows_ok].tolist(), cand[rows_ok].tolist(), strict=True)
    ]
    needed = rtts_for_radii_ms(
        row_ms, best[rows_ok], model, cal, clock_tolerance_ppm=clock_tolerance_ppm
    )
    found: list[list[tuple[float, float, Measurement, int]]] = [[] for _ in live]
    for j, m, rtt_needed, g in zip(
        row_job[rows_ok].tolist(), row_ms, needed.tolist(), goal[rows_ok].tolist(), strict=True
    ):
        if m.overhead_ms < rtt_needed < m.rtt_ms:
            found[j].append((rtt_needed / m.rtt_ms, rtt_needed, m, g))
    for j, k in enumerate(live):
        found[j].sort(key=lambda t: -t[0])
        out[k] = tuple(
            Settle(
                landmark=m.landmark,
                rtt_ms=m.rtt_ms,
                rtt_needed_ms=rtt_needed,
                would_give=(Verdict.COMPLIANT, Verdict.VIOLATION)[g],
            )
            for _, rtt_needed, m, g in found[j][:_MAX_SETTLE_CANDIDATES]
        )
    return out
