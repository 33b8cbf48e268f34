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


def _hav_km(
    lat: float, lon: float, plat: npt.NDArray[np.float64], plon: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Spherical distance and its partial derivatives (km per degree)."""
    p1, l1 = math.radians(lat), math.radians(lon)
    p2, l2 = np.radians(plat), np.radians(plon)
    cosc = np.sin(p1) * np.sin(p2) + np.cos(p1) * np.cos(p2) * np.cos(l1 - l2)
    cosc = np.clip(cosc, -1.0, 1.0)
    c = np.arccos(cosc)
    sinc = np.maximum(np.sin(c), 1e-9)
    dc_dp1 = -(np.cos(p1) * np.sin(p2) - np.sin(p1) * np.cos(p2) * np.cos(l1 - l2)) / sinc
    dc_dl1 = (np.cos(p1) * np.cos(p2) * np.sin(l1 - l2)) / sinc
    k = _R_MEAN_KM * math.pi / 180.0
    return _R_MEAN_KM * c, k * dc_dp1, k * dc_dl1


def estimate_position(
    measurements: Sequence[Measurement],
    model: Model,
    calibration: Calibration | None,
    start: tuple[float, float],
    clock_tolerance_ppm: float = 0.0,
) -> tuple[float, float] | None:
    """Least-squares (lat, lon) under ``model`` (fiber or calibrated), from ``start``."""
    from scipy.optimize import least_squares

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
    lat_l = np.array([measurements[i].lat for i in order])
    lon_l = np.array([measurements[i].lon for i in order])
    w = 1.0 / np.maximum(dist, 10.0)

    def fun(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        d, _, _ = _hav_km(float(x[0]), float(x[1]), lat_l, lon_l)
        return np.asarray((d - dist) * w)

    def jac(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        _, dp, dl = _hav_km(float(x[0]), float(x[1]), lat_l, lon_l)
        return np.column_stack([dp * w, dl * w])

    res = least_squares(
        fun,
        np.array(start, dtype=np.float64),
        jac=jac,
        method="lm" if len(order) >= 2 else "trf",
        max_nfev=60,
    )
    lat, lon = float(res.x[0]), float(res.x[1])
    if not (math.isfinite(lat) and math.isfinite(lon)):
        return None
    # Fold back onto the globe.
    lat = ((lat + 90.0) % 360.0) - 90.0
    if lat > 90.0:
        lat, lon = 180.0 - lat, lon + 180.0
    lon = ((lon + 180.0) % 360.0) - 180.0
    return lat, lon
