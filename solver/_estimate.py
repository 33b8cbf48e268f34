"""Point estimate (never a proof): least squares on model distances.

Invariant: the estimate is labelled with its model and reported beside, never
instead of, the proven region; it does not influence any verdict.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from ._models import Calibration, Measurement, Model, radius_km

__all__ = ["estimate_position"]

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
    the spherical distance (an estimate: 0.1 km of convergence slack is
    irrelevant, so it stops at steps below 1e-3 degrees or after 40 steps).
    """
    if not measurements:
        return None
    dist = np.array(
        [
            radius_km(m, model, calibration, clock_tolerance_ppm=clock_tolerance_ppm)
            for m in measurements
        ]
    )
    order = np.argsort(dist)[:_MAX_LANDMARKS]
    dist = dist[order]
    lat_l = np.radians([measurements[i].lat for i in order])
    lon_l = np.radians([measurements[i].lon for i in order])
    sin_l, cos_l = np.sin(lat_l), np.cos(lat_l)
    w = 1.0 / np.maximum(dist, 10.0)
    k = _R_MEAN_KM * math.pi / 180.0  # km per degree of arc
    wk = w * k

    def residual(
        x: npt.NDArray[np.float64],
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Weighted residuals and their derivatives (per degree) at x = (lat, lon)."""
        p1, l1 = math.radians(float(x[0])), math.radians(float(x[1]))
        sp, cp = math.sin(p1), math.cos(p1)
        dl = l1 - lon_l
        cos_dl = np.cos(dl)
        cosc = np.clip(sp * sin_l + cp * cos_l * cos_dl, -1.0, 1.0)
        c = np.arccos(cosc)
        inv = wk / np.maximum(np.sqrt(1.0 - cosc * cosc), 1e-9)
        dp = -(cp * sin_l - sp * cos_l * cos_dl) * inv
        dlon = (cp * cos_l * np.sin(dl)) * inv
        return (_R_MEAN_KM * c - dist) * w, dp, dlon

    x = np.array(start, dtype=np.float64)
    f, jp, jl = residual(x)
    cost = float(f @ f)
    lam = 1e-4
    for _ in range(_MAX_STEPS):
        a11, a12, a22 = float(jp @ jp), float(jp @ jl), float(jl @ jl)
        g1, g2 = float(jp @ f), float(jl @ f)
        while True:
            b11, b22 = a11 * (1 + lam) + 1e-12, a22 * (1 + lam) + 1e-12
            det = b11 * b22 - a12 * a12
            step = np.array([(b22 * g1 - a12 * g2) / det, (b11 * g2 - a12 * g1) / det])
            trial = x - step
            f_t, jp_t, jl_t = residual(trial)
            cost_t = float(f_t @ f_t)
            if cost_t <= cost or lam > 1e8:
                break
            lam *= 10.0
        if cost_t > cost:
            break
        x, f, jp, jl, cost = trial, f_t, jp_t, jl_t, cost_t
        lam = max(lam / 10.0, 1e-9)
        if float(np.abs(step).max()) < _STOP_DEG:
            break
    res_x = x
    lat, lon = float(res_x[0]), float(res_x[1])
    if not (math.isfinite(lat) and math.isfinite(lon)):
        return None
    # Fold back onto the globe.
    lat = ((lat + 90.0) % 360.0) - 90.0
    if lat > 90.0:
        lat, lon = 180.0 - lat, lon + 180.0
    lon = ((lon + 180.0) % 360.0) - 180.0
    return lat, lon
