"""Point estimate (never a proof): least squares on model distances.

Invariant: the estimate is labelled with its model and reported beside, never
instead of, the proven region; it does not influence any verdict.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ._models import Calibration, Measurement, Model, radii_km

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
    if not (math.isfinite(lat) and math.isfinite(lon)):
        return None
    # Fold back onto the globe.
    lat = ((lat + 90.0) % 360.0) - 90.0
    if lat > 90.0:
        lat, lon = 180.0 - lat, lon + 180.0
    lon = ((lon + 180.0) % 360.0) - 180.0
    return lat, lon
