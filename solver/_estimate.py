"""Point estimate (never a proof): least squares on model distances.

Invariant: the estimate is labelled with its model and reported beside, never
instead of, the proven region; it does not influence any verdict.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final

import numpy as np
import numpy.typing as npt

from ._models import Calibration, Measurement, Model, radii_km

__all__ = ["estimate_position", "estimate_positions"]

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
