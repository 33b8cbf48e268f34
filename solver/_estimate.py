"""Point estimates (never a proof): nearest landmark, CBG, least squares, min-max ratio.

Invariants: an estimate is labelled with its method and an error radius, and reported
beside, never instead of, the proven region; it does not influence any verdict. Estimates
work on fibre or calibrated radii, never on the vacuum proof's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final

import numpy as np
import numpy.typing as npt

from ._models import Calibration, Measurement, Model, radii_km
from ._results import Estimate, Estimator

__all__ = [
    "DEFAULT_ESTIMATOR",
    "estimate_many",
    "estimate_model",
    "estimate_position",
    "estimate_positions",
]

_R_MEAN_KM = 6371.0088
_MAX_LANDMARKS = 16
_MAX_STEPS = 40
_STOP_DEG = 1e-3  # about 0.1 km: far below the error of any RTT-based estimate


def estimate_position(
    measurements: Sequence[Measurement],
    model: Model,
    calibration: Calibration | None,
    start: tuple[float, float],
    clock_tolerance_ppm: float = 0.0,
) -> tuple[float, float] | None:
    """Least-squares (lat, lon) under ``model`` (fiber or calibrated), from ``start``.

    Levenberg-Marquardt on the 2x2 normal equations with the analytic Jacobian of
    the spherical distance, over the 16 nearest landmarks (an estimate: 0.1 km of
    convergence slack is irrelevant, so it stops at steps below 1e-3 degrees or after
    40 steps).
    """
    if not measurements:
        return None
    dist = radii_km(measurements, model, calibration, clock_tolerance_ppm=clock_tolerance_ppm)
    order = np.argsort(dist, kind="stable")[:_MAX_LANDMARKS].tolist()
    k = _R_MEAN_KM * math.pi / 180.0  # km per degree of arc
    rows = []
    for i in order:
        m, d = measurements[i], float(dist[i])
        p, w = math.radians(m.lat), 1.0 / max(d, 10.0)
        rows.append((math.sin(p), math.cos(p), math.radians(m.lon), d, w, w * k))

    def normal(lat: float, lon: float) -> tuple[float, float, float, float, float, float]:
        """Cost and normal equations (J'J, J'f) of the weighted residuals at (lat, lon).

        Pure Python: for at most 16 landmarks it is several times faster than numpy's
        per-call overhead. Derivatives are per degree.
        """
        p1, l1 = math.radians(lat), math.radians(lon)
        sp, cp = math.sin(p1), math.cos(p1)
        cost = a11 = a12 = a22 = g1 = g2 = 0.0
        for sin_l, cos_l, lon_l, d, w, wk in rows:
            dl = l1 - lon_l
            cos_dl = math.cos(dl)
            cosc = min(1.0, max(-1.0, sp * sin_l + cp * cos_l * cos_dl))
            f = (_R_MEAN_KM * math.acos(cosc) - d) * w
            inv = wk / max(math.sqrt(1.0 - cosc * cosc), 1e-9)
            jp = -(cp * sin_l - sp * cos_l * cos_dl) * inv
            jl = cp * cos_l * math.sin(dl) * inv
            cost += f * f
            a11 += jp * jp
            a12 += jp * jl
            a22 += jl * jl
            g1 += jp * f
            g2 += jl * f
        return cost, a11, a12, a22, g1, g2

    lat, lon = float(start[0]), float(start[1])
    cost, a11, a12, a22, g1, g2 = normal(lat, lon)
    lam = 1e-4
    for _ in range(_MAX_STEPS):
        while True:
            b11, b22 = a11 * (1 + lam) + 1e-12, a22 * (1 + lam) + 1e-12
            det = b11 * b22 - a12 * a12
            s1, s2 = (b22 * g1 - a12 * g2) / det, (b11 * g2 - a12 * g1) / det
            trial = (lat - s1, lon - s2)
            got = normal(*trial)
            if got[0] <= cost or lam > 1e8:
                break
            lam *= 10.0
        if got[0] > cost:
            break
        (lat, lon), (cost, a11, a12, a22, g1, g2) = trial, got
        lam = max(lam / 10.0, 1e-9)
        if max(abs(s1), abs(s2)) < _STOP_DEG:
            break
    return _fold(lat, lon)


def _fold(lat: float, lon: float) -> tuple[float, float] | None:
    """(lat, lon) folded back onto the globe; None if not finite."""
    if not (math.isfinite(lat) and math.isfinite(lon)):
        return None
    lat = ((lat + 90.0) % 360.0) - 90.0
    if lat > 90.0:
        lat, lon = 180.0 - lat, lon + 180.0
    lon = ((lon + 180.0) % 360.0) - 180.0
    return lat, lon


#: From this many problems on, :func:`estimate_positions` runs them all in lockstep (numpy).
_LOCKSTEP_MIN: Final = 16


def estimate_positions(
    problems: Sequence[tuple[Sequence[Measurement], tuple[float, float]]],
    model: Model,
    calibration: Calibration | None,
    clock_tolerance_ppm: float = 0.0,
) -> list[tuple[float, float] | None]:
    """:func:`estimate_position` of each (measurements, start), all under one model.

    From 16 problems on they run in lockstep: every round makes one trial step for
    each unfinished problem with numpy (a rejected trial raises that problem's
    damping for the next round, as the inner loop of :func:`estimate_position`
    would), so each problem takes the same decisions as alone, up to rounding.
    """
    if len(problems) < _LOCKSTEP_MIN:
        return [
            estimate_position(ms, model, calibration, start, clock_tolerance_ppm)
            for ms, start in problems
        ]
    n = len(problems)
    width = min(max((len(ms) for ms, _ in problems), default=1), _MAX_LANDMARKS)
    sin_l, cos_l, lon_l = np.zeros((n, width)), np.ones((n, width)), np.zeros((n, width))
    dist, w = np.zeros((n, width)), np.zeros((n, width))  # padding: weight 0, no residual
    for b, (ms, _) in enumerate(problems):
        if not ms:
            continue
        d = radii_km(ms, model, calibration, clock_tolerance_ppm=clock_tolerance_ppm)
        order = np.argsort(d, kind="stable")[:_MAX_LANDMARKS]
        k = order.size
        p = np.radians([ms[i].lat for i in order.tolist()])
        sin_l[b, :k], cos_l[b, :k] = np.sin(p), np.cos(p)
        lon_l[b, :k] = np.radians([ms[i].lon for i in order.tolist()])
        dist[b, :k] = d[order]
        w[b, :k] = 1.0 / np.maximum(d[order], 10.0)
    wk = w * (_R_MEAN_KM * math.pi / 180.0)

    def normal(
        idx: npt.NDArray[np.intp], lat: npt.NDArray[np.float64], lon: npt.NDArray[np.float64]
    ) -> npt.NDArray[np.float64]:
        """Rows (cost, a11, a12, a22, g1, g2) for the problems ``idx`` at (lat, lon)."""
        p1, l1 = np.radians(lat)[:, None], np.radians(lon)[:, None]
        sp, cp = np.sin(p1), np.cos(p1)
        sl, cl = sin_l[idx], cos_l[idx]
        dl = l1 - lon_l[idx]
        cos_dl = np.cos(dl)
        cosc = np.clip(sp * sl + cp * cl * cos_dl, -1.0, 1.0)
        f = (_R_MEAN_KM * np.arccos(cosc) - dist[idx]) * w[idx]
        inv = wk[idx] / np.maximum(np.sqrt(1.0 - cosc * cosc), 1e-9)
        jp = -(cp * sl - sp * cl * cos_dl) * inv
        jl = cp * cl * np.sin(dl) * inv
        return np.stack(
            [
                (f * f).sum(axis=1),
                (jp * jp).sum(axis=1),
                (jp * jl).sum(axis=1),
                (jl * jl).sum(axis=1),
                (jp * f).sum(axis=1),
                (jl * f).sum(axis=1),
            ],
            axis=1,
        )

    lat = np.array([float(start[0]) for _, start in problems])
    lon = np.array([float(start[1]) for _, start in problems])
    every = np.arange(n)
    state = normal(every, lat, lon)
    lam = np.full(n, 1e-4)
    steps = np.zeros(n, dtype=np.intp)
    active = np.array([bool(ms) for ms, _ in problems])
    for _ in range(_MAX_STEPS * 20):  # each problem: <= 40 steps, <= 17 raises in between
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        _, a11, a12, a22, g1, g2 = state[idx].T
        b11, b22 = a11 * (1 + lam[idx]) + 1e-12, a22 * (1 + lam[idx]) + 1e-12
        det = b11 * b22 - a12 * a12
        s1, s2 = (b22 * g1 - a12 * g2) / det, (b11 * g2 - a12 * g1) / det
        t_lat, t_lon = lat[idx] - s1, lon[idx] - s2
        got = normal(idx, t_lat, t_lon)
        better = got[:, 0] <= state[idx, 0]
        give_up = ~better & (lam[idx] > 1e8)
        ok = idx[better]
        lat[ok], lon[ok], state[ok] = t_lat[better], t_lon[better], got[better]
        lam[ok] = np.maximum(lam[ok] / 10.0, 1e-9)
        steps[ok] += 1
        retry = idx[~better & ~give_up]
        lam[retry] *= 10.0
        small = np.maximum(np.abs(s1), np.abs(s2)) < _STOP_DEG
        active[idx[give_up]] = False
        active[ok[small[better] | (steps[ok] >= _MAX_STEPS)]] = False
    return [
        _fold(a, o) if ms else None
        for (ms, _), a, o in zip(problems, lat.tolist(), lon.tolist(), strict=True)
    ]


# --------------------------------------------------------------------------- estimators


#: The estimator a solve uses unless told otherwise (the evidence: docs/benchmarks.md).
#: It works on the fibre line (2/3 c through the origin) for every landmark, calibrated or
#: not: per-landmark bestlines made it worse on the simulated world (docs/benchmarks.md).
DEFAULT_ESTIMATOR: Final = Estimator.CBG_DEPTH
#: Exponent of the depth weight of ``cbg-depth``.
DEPTH_POWER: Final = 2.0

_GRID: Final = 11  # grid points per side of a search square
_ROUNDS: Final = 6  # refinements of the min-max-ratio search
_CBG_GRID: Final = 21
_FLOOR_KM: Final = 10.0  # radii below this count as this (RTT noise, rounding)
_MAX_USED: Final = 64  # landmarks of smallest radius an estimate uses
_BLOCK: Final = 4_000_000  # (problem, grid point, landmark) triples per numpy block


def _unit(lat: npt.NDArray[np.float64], lon: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    p, lam = np.radians(lat), np.radians(lon)
    return np.stack([np.cos(p) * np.cos(lam), np.cos(p) * np.sin(lam), np.sin(p)], axis=-1)


def _latlon(u: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    n = np.linalg.norm(u, axis=-1, keepdims=True)
    u = u / np.maximum(n, 1e-300)
    lat = np.degrees(np.arcsin(np.clip(u[..., 2], -1.0, 1.0)))
    lon = np.degrees(np.arctan2(u[..., 1], u[..., 0]))
    return lat, lon


def _grid_around(
    center: npt.NDArray[np.float64], half_km: npt.NDArray[np.float64], size: int
) -> npt.NDArray[np.float64]:
    """``size x size`` points (unit vectors, shape (B, size*size, 3)) on a square of half-side
    ``half_km`` in the tangent plane at each ``center`` (B, 3), mapped onto the sphere."""
    z = np.array([0.0, 0.0, 1.0])
    east = np.cross(z, center)
    bad = np.linalg.norm(east, axis=-1) < 1e-12  # a pole: any east will do
    east[bad] = np.array([0.0, 1.0, 0.0])
    east /= np.linalg.norm(east, axis=-1, keepdims=True)
    north = np.cross(center, east)
    t = np.linspace(-1.0, 1.0, size)
    mx, my = np.meshgrid(t, t)
    gx, gy = mx.ravel(), my.ravel()
    ang = np.minimum(half_km, math.pi * _R_MEAN_KM / 2.0)[:, None] / _R_MEAN_KM  # (B, 1)
    x, y = gx[None, :] * ang, gy[None, :] * ang  # (B, G), radians
    rho = np.hypot(x, y)
    safe = np.where(rho > 0, rho, 1.0)
    dirs = (x / safe)[..., None] * east[:, None, :] + (y / safe)[..., None] * north[:, None, :]
    out: npt.NDArray[np.float64] = (
        np.cos(rho)[..., None] * center[:, None, :] + np.sin(rho)[..., None] * dirs
    )
    return out


def _dist_km(pts: npt.NDArray[np.float64], lm: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Great-circle km between points (B, G, 3) and landmarks (B, L, 3): (B, G, L)."""
    dots = np.matmul(pts, lm.transpose(0, 2, 1))
    out: npt.NDArray[np.float64] = _R_MEAN_KM * np.arccos(np.clip(dots, -1.0, 1.0))
    return out


def _pack(
    problems: Sequence[Sequence[Measurement]],
    model: Model,
    calibration: Calibration | None,
    clock_tolerance_ppm: float,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64], list[int]]:
    """Landmark unit vectors (B, L, 3), model radii (B, L), fibre radii (B, L) and the index
    of each problem's smallest effective RTT, over each problem's (at most 64) landmarks of
    smallest model radius; padding repeats a problem's smallest-radius landmark (it changes
    no max or min). One vectorised pass over every measurement of the batch."""
    flat = [m for ms in problems for m in ms]
    sizes = np.array([len(ms) for ms in problems])
    n, width = len(problems), int(sizes.max())
    slot = np.arange(width)[None, :] < sizes[:, None]  # (B, W): a real landmark here
    kw = {"clock_tolerance_ppm": clock_tolerance_ppm}
    r_flat = np.maximum(radii_km(flat, model, calibration, **kw), _FLOOR_KM)
    f_flat = np.maximum(radii_km(flat, Model.FIBER, None, **kw), _FLOOR_KM)
    eff_flat = np.array([m.effective_rtt_ms for m in flat])
    u_flat = _unit(np.array([m.lat for m in flat]), np.array([m.lon for m in flat]))

    def padded(values: npt.NDArray[np.float64], fill: float) -> npt.NDArray[np.float64]:
        out = np.full((n, width, *values.shape[1:]), fill)
        out[slot] = values
        return out

    r_all = padded(r_flat, math.inf)
    order = np.argsort(r_all, axis=1, kind="stable")[:, :_MAX_USED]  # (B, L), padding last
    rows = np.arange(n)[:, None]
    keep = np.where(slot[rows, order], order, order[:, :1])  # padding -> the first landmark
    lm = padded(u_flat, 0.0)[rows, keep]
    r = r_all[rows, keep]
    rf = padded(f_flat, math.inf)[rows, keep]
    eff = padded(eff_flat, math.inf)[rows, keep]
    return lm, r, rf, np.argmin(eff, axis=1).tolist()


def _min_max_ratio(
    lm: npt.NDArray[np.float64], r: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """The point minimising ``max_i d(x, L_i) / r_i`` (unit vectors, (B, 3)): a coarse-to-fine
    grid search, starting on a square around the landmark of smallest radius that holds
    every point better than that landmark itself."""
    rows = np.arange(lm.shape[0])
    first = np.argmin(r, axis=1)
    center = lm[rows, first]
    start = (_dist_km(center[:, None, :], lm)[:, 0, :] / r).max(axis=1)
    half = np.maximum(start * r[rows, first], 1.0)
    for _ in range(_ROUNDS):
        pts = _grid_around(center, half, _GRID)
        pts = np.concatenate([pts, center[:, None, :]], axis=1)
        score = (_dist_km(pts, lm) / r[:, None, :]).max(axis=2)
        best = np.argmin(score, axis=1)
        center = pts[rows, best]
        center /= np.linalg.norm(center, axis=1, keepdims=True)
        half = half * 4.0 / (_GRID - 1)
    out: npt.NDArray[np.float64] = center
    return out


_Grid = tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]


def _disk_grid(lm: npt.NDArray[np.float64], r: npt.NDArray[np.float64]) -> _Grid:
    """Grid points over each problem's smallest disk (B, G, 3) and their distances to every
    landmark (B, G, L)."""
    rows = np.arange(lm.shape[0])
    first = np.argmin(r, axis=1)
    pts = _grid_around(lm[rows, first], r[rows, first], _CBG_GRID)
    return pts, _dist_km(pts, lm)


def _cbg(
    lm: npt.NDArray[np.float64], r: npt.NDArray[np.float64], grid: _Grid, power: float = 0.0
) -> npt.NDArray[np.float64]:
    """Centroid of the intersection of the disks (unit vectors, (B, 3)), each point weighted
    by its depth ``(1 - max_i d / r_i) ** power`` (0: plain CBG), from a grid over the
    smallest disk (``grid``, :func:`_disk_grid`); where the disks do not meet on the grid,
    the min-max-ratio point."""
    pts, dist = grid
    depth = 1.0 - (dist / r[:, None, :]).max(axis=2)
    # strictly inside: a grid point on a disk's edge (up to rounding) is left out on every side
    weight = np.where(depth > 1e-9, np.maximum(depth, 0.0) ** power, 0.0)
    total = (pts * weight[..., None]).sum(axis=1)
    found = (weight > 0).any(axis=1) & (np.linalg.norm(total, axis=1) > 1e-9)
    out: npt.NDArray[np.float64] = np.empty_like(total)
    out[found] = total[found] / np.linalg.norm(total[found], axis=1, keepdims=True)
    if (~found).any():
        out[~found] = _min_max_ratio(lm[~found], r[~found])
    return out


def _error_radius_km(
    u: npt.NDArray[np.float64],
    lm: npt.NDArray[np.float64],
    rf: npt.NDArray[np.float64],
    grid: _Grid,
) -> npt.NDArray[np.float64]:
    """How far the estimates ``u`` (B, 3) can be from any point inside every fibre disk.

    ``grid`` (:func:`_disk_grid` over the fibre disks) has a point within ``h`` (half its
    diagonal step) of every point ``p`` of the smallest disk; that point lies within
    ``r_i + h`` of every landmark if ``p`` lies within ``r_i``. So the farthest grid point
    within ``r_i + h`` of every landmark, plus ``h``, bounds the distance from ``u`` to every
    point inside all the disks; ``min_i (d(u, L_i) + r_i)`` bounds it too (the smaller is
    taken)."""
    pts, dist = grid
    rows = np.arange(lm.shape[0])
    half = rf[rows, np.argmin(rf, axis=1)]
    h = (2.0 * half / (_CBG_GRID - 1)) * math.sqrt(2.0) / 2.0  # (B,)
    inside = (dist <= rf[:, None, :] + h[:, None, None]).all(axis=2)
    far = np.where(inside, _dist_km(pts, u[:, None, :])[..., 0], -np.inf).max(axis=1)
    loose = (_dist_km(u[:, None, :], lm)[:, 0, :] + rf).min(axis=1)
    out: npt.NDArray[np.float64] = np.where(np.isfinite(far), np.minimum(far + h, loose), loose)
    return out


def estimate_many(
    problems: Sequence[Sequence[Measurement]],
    method: Estimator = DEFAULT_ESTIMATOR,
    *,
    model: Model = Model.FIBER,
    calibration: Calibration | None = None,
    clock_tolerance_ppm: float = 0.0,
    starts: Sequence[tuple[float, float] | None] | None = None,
) -> list[Estimate | None]:
    """A :class:`Estimate` for each list of measurements (None for an empty one).

    ``model`` gives the radii the estimators work on (fibre, or calibrated with
    ``calibration``: per-landmark bestlines, the fibre line for a landmark with too few
    points). The error radius is how far the estimate is from the farthest point inside
    every conservative fibre disk (2/3 c, no intercept): it holds whenever every path is
    slower than 2/3 c (docs/benchmarks.md gives the share it held for).
    ``starts`` (least-squares only) are where the fit starts; the nearest landmark if None.
    """
    if model is Model.VACUUM:
        raise ValueError("estimates use the fiber or calibrated model, never vacuum")
    out: list[Estimate | None] = [None] * len(problems)
    todo = [k for k, ms in enumerate(problems) if ms]
    width = min(max((len(problems[k]) for k in todo), default=1), _MAX_USED)
    chunk_size = max(1, _BLOCK // (width * _CBG_GRID * _CBG_GRID))
    for lo in range(0, len(todo), chunk_size):
        idx = todo[lo : lo + chunk_size]
        chunk = [problems[k] for k in idx]
        lm, r, rf, nearest = _pack(chunk, model, calibration, clock_tolerance_ppm)
        fibre_grid = _disk_grid(lm, rf)
        grid = fibre_grid if model is Model.FIBER else None
        if method is Estimator.NEAREST:
            u = lm[np.arange(len(chunk)), nearest]
        elif method is Estimator.CBG:
            u = _cbg(lm, r, grid or _disk_grid(lm, r))
        elif method is Estimator.CBG_DEPTH:
            u = _cbg(lm, r, grid or _disk_grid(lm, r), DEPTH_POWER)
        elif method is Estimator.MIN_MAX_RATIO:
            u = _min_max_ratio(lm, r)
        else:
            guess = [
                (s if s is not None else _nearest(ms))
                for ms, s in zip(
                    chunk,
                    [None] * len(chunk) if starts is None else [starts[k] for k in idx],
                    strict=True,
                )
            ]
            pos = estimate_positions(
                list(zip(chunk, guess, strict=True)), model, calibration, clock_tolerance_ppm
            )
            u = _unit(
                np.array(
                    [p[0] if p is not None else g[0] for p, g in zip(pos, guess, strict=True)]
                ),
                np.array(
                    [p[1] if p is not None else g[1] for p, g in zip(pos, guess, strict=True)]
                ),
            )
        radius = _error_radius_km(u, lm, rf, fibre_grid)
        lat, lon = _latlon(u)
        for j, k in enumerate(idx):
            out[k] = Estimate(
                lat=float(lat[j]),
                lon=float(lon[j]),
                model=model,
                method=method,
                error_radius_km=float(radius[j]),
            )
    return out


def estimate_model(method: Estimator, model: Model) -> Model:
    """The radii ``method`` works on in a solve under ``model``: the calibration's bestlines
    for ``cbg`` and ``least-squares`` under the calibrated model, the fibre line otherwise."""
    if model is Model.CALIBRATED and method in (Estimator.CBG, Estimator.LEAST_SQUARES):
        return Model.CALIBRATED
    return Model.FIBER


def _nearest(ms: Sequence[Measurement]) -> tuple[float, float]:
    m = min(ms, key=lambda m: m.effective_rtt_ms)
    return m.lat, m.lon
