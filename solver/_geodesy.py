"""Geodesy on the WGS84 ellipsoid: distance bounds and polygonised geodesic disks.

Invariants enforced here:

* A chord (straight-line, 3-D) bound ``D`` becomes a geodesic-radius bound that
  is never too small: every normal curvature radius of WGS84 is at least
  ``R0 = b**2 / a`` (6335.44 km), so by Schur's comparison theorem a geodesic of
  length ``s <= pi * R0`` has a chord of at least ``2 R0 sin(s / 2 R0)``; points
  farther than ``pi * R0`` along the surface lie near the antipode, where every
  chord exceeds 12,713 km > ``2 R0`` (checked numerically in the tests). Hence
  ``s <= 2 R0 asin(D / 2 R0)`` for ``D < 2 R0``, and the whole Earth otherwise.
* :func:`geodesic_disk` returns a lon/lat polygon (planar edges in degrees)
  that CONTAINS the true geodesic disk: the vertices lie at an inflated
  radius ``r_out`` computed by :func:`pyproj.Geod.fwd`, and along every edge the
  distance to the centre cannot dip below ``r`` because its second derivative
  (arc length parameter) is at most ``K = max(cot(d/R1), 0)/R1 + kappa_g``:
  the Hessian comparison theorem with Gaussian curvature >= 1/R1**2
  (``R1 = a**2/b``), plus the geodesic curvature of a straight lon/lat line,
  at most ``(2 |tan(lat)| + 0.05) / R0``. The dip between two vertices an arc
  ``l`` apart is at most ``K l**2 / 8``; ``l`` is bounded above by
  ``R1 * hypot(dlat, cos(lat_min) dlon)``; the Hessian term is taken at
  ``d = r_ring - l/2`` (no edge point is closer to the centre). The inscribed
  variant (used for a circular AUTHORIZED zone) mirrors this with the lower
  Hessian bound at ``r_ring + l/2``. Vertex placement (:func:`_plan_azimuths`)
  only decides where to look; every ring is certified on its real vertices.
* Antimeridian: longitudes are unwrapped, the polygon is cut into pieces inside
  [-180, 180]. A disk holding one pole is closed through that pole; a disk
  holding both poles is the world minus a polygon inscribed in the far region.
  Radii at or beyond :data:`WHOLE_EARTH_KM` give the whole world (a superset,
  so always sound).
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Final

import numpy as np
import numpy.typing as npt
import shapely
from pyproj import Geod
from shapely.geometry import MultiPolygon, Polygon, box
from shapely.geometry.base import BaseGeometry

__all__ = [
    "A_KM",
    "B_KM",
    "GEOD",
    "HALF_MERIDIAN_KM",
    "R0_KM",
    "R1_KM",
    "WHOLE_EARTH_KM",
    "WORLD",
    "chord_to_geodesic_km",
    "geodesic_disk",
    "geodesic_km",
    "geodesic_to_chord_km",
    "polygon_area_km2",
]

#: WGS84 semi-major axis and semi-minor axis (km).
A_KM: Final = 6378.137
_F: Final = 1 / 298.257223563
B_KM: Final = A_KM * (1 - _F)
_E2: Final = _F * (2 - _F)
#: Smallest normal curvature radius of WGS84 (meridional, at the equator).
R0_KM: Final = B_KM * B_KM / A_KM
#: Largest curvature radius of WGS84 (at the poles); 1/R1**2 bounds Gaussian curvature below.
R1_KM: Final = A_KM * A_KM / B_KM
#: Half a meridian: the largest geodesic distance on WGS84.
HALF_MERIDIAN_KM: Final = 20003.931458625
#: Disks at least this large are returned as the whole world (a sound superset).
WHOLE_EARTH_KM: Final = 19990.0

GEOD: Final = Geod(ellps="WGS84")
WORLD: Final = box(-180.0, -90.0, 180.0, 90.0)

_N_MAX: Final = 16384
#: Dip bound aimed at per edge, relative to the radius (the ring's inflation is ~1.1x this).
_TOLERANCE: Final = 1e-3
_FLOOR_KM: Final = 1e-5  # 1 cm: strict containment despite rounding and snapping
_MIN_RADIUS_KM: Final = 1e-3


def chord_to_geodesic_km(chord_km: float) -> float:
    """Upper bound of the geodesic distance of any point within ``chord_km`` in a straight line.

    Returns ``math.inf`` when the bound covers the whole Earth.
    """
    if chord_km < 0 or math.isnan(chord_km):
        raise ValueError(f"chord must be >= 0, got {chord_km}")
    if chord_km >= 2 * R0_KM:
        return math.inf
    return 2 * R0_KM * math.asin(chord_km / (2 * R0_KM))


def geodesic_to_chord_km(geodesic_km: float) -> float:
    """Largest chord whose :func:`chord_to_geodesic_km` bound stays within ``geodesic_km``."""
    if geodesic_km >= math.pi * R0_KM:
        return 2 * R0_KM
    return 2 * R0_KM * math.sin(max(geodesic_km, 0.0) / (2 * R0_KM))


def geodesic_km(
    lat1: npt.ArrayLike, lon1: npt.ArrayLike, lat2: npt.ArrayLike, lon2: npt.ArrayLike
) -> npt.NDArray[np.float64]:
    """Geodesic distance (km) on WGS84, vectorised (Karney's algorithm via pyproj)."""
    la1, lo1, la2, lo2 = np.broadcast_arrays(
        np.asarray(lat1, dtype=np.float64),
        np.asarray(lon1, dtype=np.float64),
        np.asarray(lat2, dtype=np.float64),
        np.asarray(lon2, dtype=np.float64),
    )
    _, _, dist_m = GEOD.inv(
        np.ascontiguousarray(lo1).ravel(),
        np.ascontiguousarray(la1).ravel(),
        np.ascontiguousarray(lo2).ravel(),
        np.ascontiguousarray(la2).ravel(),
    )
    return np.asarray(dist_m, dtype=np.float64).reshape(la1.shape) / 1000.0


def ecef_km(lat: npt.ArrayLike, lon: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Earth-centred, Earth-fixed coordinates (km) of points on the WGS84 surface."""
    la = np.radians(np.asarray(lat, dtype=np.float64))
    lo = np.radians(np.asarray(lon, dtype=np.float64))
    n = A_KM / np.sqrt(1 - _E2 * np.sin(la) ** 2)
    return np.stack(
        [n * np.cos(la) * np.cos(lo), n * np.cos(la) * np.sin(lo), n * (1 - _E2) * np.sin(la)],
        axis=-1,
    )


_RAD: Final = math.pi / 180.0
_R1_PER_DEG: Final = R1_KM * _RAD


def edge_length_bound_km(
    lat_a: npt.NDArray[np.float64],
    lon_a: npt.NDArray[np.float64],
    lat_b: npt.NDArray[np.float64],
    lon_b: npt.NDArray[np.float64],
) -> npt.NDArray[np.float64]:
    """Upper bound of the length on WGS84 of straight lon/lat segments (lon unwrapped).

    ``R1 * hypot(dlat, cos(lat_min) * dlon)`` (radians), ``lat_min`` the smallest
    absolute latitude on the segment (0 when the ends' product is not positive).
    """
    min_abs = np.minimum(np.abs(lat_a), np.abs(lat_b))
    min_abs[lat_a * lat_b <= 0] = 0.0  # may cross (or touch) the equator
    min_abs *= _RAD
    np.cos(min_abs, out=min_abs)
    min_abs *= lon_b - lon_a
    return np.asarray(_R1_PER_DEG * np.hypot(lat_b - lat_a, min_abs))


def _dip_km(
    lat: npt.NDArray[np.float64], lon_u: npt.NDArray[np.float64], r_km: float, inscribed: bool
) -> float:
    """Largest possible deviation of the centre distance along the ring's edges (km).

    On an edge of length ``l`` whose ends lie at distance ``r_km`` from the centre,
    every point lies between ``r_km - l/2`` and ``r_km + l/2`` (triangle inequality),
    so the Hessian bound is taken at the worse end of that range for each edge.
    """
    la, lb = lat[:-1], lat[1:]
    length = edge_length_bound_km(la, lon_u[:-1], lb, lon_u[1:])
    alat = np.abs(lat)
    max_abs = np.maximum(alat[:-1], alat[1:])
    # Unbounded terms: an edge reaching a pole (lon/lat curvature), or reaching the
    # centre (outer) / the cut locus (inscribed) within half its length.
    if float(max_abs.max()) >= 90.0:
        return math.inf
    half = float(length.max()) / 2
    if (r_km + half >= math.pi * R0_KM) if inscribed else (r_km - half <= 0.0):
        return math.inf
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        if inscribed:
            x = (r_km + 0.5 * length) / R0_KM
            hess = -1.0 / np.tan(x)
            np.maximum(hess, 0.0, out=hess)
            hess *= 1.0 / R0_KM
        else:
            x = (r_km - 0.5 * length) / R1_KM
            hess = 1.0 / np.tan(x)
            np.maximum(hess, 0.0, out=hess)
            hess *= 1.0 / R1_KM
        max_abs *= _RAD
        k = np.tan(max_abs, out=max_abs)  # kappa_g = (2 tan|lat| + 0.05) / R0
        k *= 2.0 / R0_KM
        k += 0.05 / R0_KM + hess
        k *= length
        k *= length
    worst = float(k.max()) / 8.0
    return worst if math.isfinite(worst) else math.inf


_PLAN_EDGES: Final = 64  # pilot ring resolution for the vertex placement (even)
_PLAN_AZ: Final = np.linspace(0.0, 2 * math.pi, _PLAN_EDGES + 1)
_PLAN_AZ_DEG: Final = np.degrees(_PLAN_AZ)
_TWO_PI: Final = 2 * math.pi
_PLAN_COS: Final = np.cos(_PLAN_AZ)
_PLAN_SIN: Final = np.sin(_PLAN_AZ)
_PLAN_PREV: Final = np.roll(np.arange(_PLAN_EDGES), 1)
_PLAN_NEXT: Final = np.roll(np.arange(_PLAN_EDGES), -1)
_R_PLAN_KM: Final = 6371.0


def _plan_azimuths(lat: float, r_ring_km: float, budget_km: float) -> npt.NDArray[np.float64]:
    """Azimuths (deg) spaced so that each edge's dip bound stays near ``budget_km``.

    Placement only (soundness comes from :func:`_dip_km` on the real ring): a
    spherical pilot ring gives, per azimuth, the edge length per radian and the
    curvature bound (Hessian term plus the lon/lat line curvature, with the
    circle's own curvature so inscribed rings are not loose); the dip of an edge
    of length ``l`` is ``K l**2 / 8``, so the vertex density is ``sqrt(K / 8 budget)``
    per km, taken as the maximum over neighbouring pilot edges, and vertices are
    placed by inverting its cumulative sum. Dense only where the ring needs it
    (near a pole), coarse elsewhere.
    """
    p0 = math.radians(lat)  # the plan does not depend on the centre's longitude
    d = min(r_ring_km / _R_PLAN_KM, math.pi)
    sp0, cp0, sd, cd = math.sin(p0), math.cos(p0), math.sin(d), math.cos(d)
    sin_p = _PLAN_COS * (cp0 * sd)
    sin_p += sp0 * cd
    np.clip(sin_p, -1.0, 1.0, out=sin_p)
    phi = np.arcsin(sin_p, out=sin_p)
    # Longitude offset atan2(sin az sin d, cos d cos lat0 - sin lat0 sin d cos az): well
    # conditioned at the poles too.
    lam = np.arctan2(_PLAN_SIN * sd, _PLAN_COS * (-sp0 * sd) + cd * cp0)
    dlam = lam[1:] - lam[:-1]
    dlam -= _TWO_PI * np.round(dlam * (1.0 / _TWO_PI))
    pa, pb = phi[:-1], phi[1:]
    # The ring's extreme latitudes lie at azimuths 0 and 180 deg, both pilot vertices.
    aphi = np.abs(phi)
    min_abs = np.minimum(aphi[:-1], aphi[1:])
    min_abs[pa * pb <= 0] = 0.0
    dlam *= np.cos(min_abs, out=min_abs)
    length = np.hypot(pb - pa, dlam)
    max_abs = np.maximum(aphi[:-1], aphi[1:])
    max_abs += 2e-3
    np.minimum(max_abs, math.radians(89.999), out=max_abs)
    x = r_ring_km / R1_KM
    circle = abs(math.cos(x) / math.sin(x)) / R1_KM if 0 < x < math.pi else 1e9
    k = np.tan(max_abs, out=max_abs)
    k *= 2.0 / R0_KM
    k += circle + 0.05 / R0_KM
    np.sqrt(k, out=k)
    k *= R1_KM / math.sqrt(8.0 * budget_km)
    need = length * k  # sub-edges needed per pilot edge
    need = np.maximum(need, np.maximum(need[_PLAN_PREV], need[_PLAN_NEXT]))
    np.maximum(need, 8.0 / _PLAN_EDGES, out=need)  # at least 8 vertices, spread out
    cum = np.empty(_PLAN_EDGES + 1)
    cum[0] = 0.0
    np.cumsum(need, out=cum[1:])
    n = max(math.ceil(float(cum[-1])), 8)
    az: npt.NDArray[np.float64] = np.interp(np.arange(n) * (float(cum[-1]) / n), cum, _PLAN_AZ_DEG)
    return az


def _ring(
    lat: float, lon: float, radius_km: float, az: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    n = az.size + 1
    az_closed = np.empty(n)
    az_closed[:-1] = az
    az_closed[-1] = az[0]  # the same input gives the same (closing) vertex
    lons, lats, _ = GEOD.fwd(
        np.full(n, lon), np.full(n, lat), az_closed, np.full(n, radius_km * 1000.0)
    )
    step = np.diff(lons)
    step -= 360.0 * np.round(step / 360.0)  # unwrap: no edge spans more than 180 deg of lon
    lon_u = np.empty(n)
    lon_u[0] = 0.0
    np.cumsum(step, out=lon_u[1:])
    lon_u += lons[0]
    # Dyadic longitudes (2**-30 deg, 0.1 mm; inside the 1 mm floor) make the +-360 shifts
    # of the antimeridian split exact, so split pieces meet exactly.
    lon_u = np.round(lon_u * 2.0**30) / 2.0**30
    return np.asarray(lats, dtype=np.float64), lon_u


def _split(poly: BaseGeometry, lo: float, hi: float) -> BaseGeometry:
    """Cut an unwrapped-longitude polygon into pieces within [-180, 180]."""
    if lo >= -180.0 and hi <= 180.0:
        return poly
    pieces = []
    for k in (-1, 0, 1):
        window = box(-180.0 + 360.0 * k, -90.0, 180.0 + 360.0 * k, 90.0)
        piece = shapely.intersection(poly, window)
        if not piece.is_empty:
            pieces.append(shapely.transform(piece, lambda xy, k=k: xy - np.array([360.0 * k, 0])))
    return _polygonal(shapely.union_all(pieces))


def _polygonal(geom: BaseGeometry) -> BaseGeometry:
    """The polygonal part of a geometry (drops touching points and lines)."""
    if isinstance(geom, Polygon | MultiPolygon):
        return geom
    polys = [g for g in shapely.get_parts(geom) if isinstance(g, Polygon) and not g.is_empty]
    if not polys:
        return Polygon()
    if len(polys) == 1:
        return polys[0]
    return MultiPolygon(polys)


def _inside_ring(
    ring: BaseGeometry, lon_u: npt.NDArray[np.float64], lat: float, lon: float
) -> bool:
    mid = float(np.mean(lon_u))
    shifted = lon + 360.0 * round((mid - lon) / 360.0)
    return bool(shapely.contains_xy(ring, shifted, lat))


@lru_cache(maxsize=4096)
def _disk_cached(lat: float, lon: float, radius_km: float, inscribed: bool) -> BaseGeometry:
    return _disk(lat, lon, radius_km, inscribed)


def _disk(lat: float, lon: float, radius_km: float, inscribed: bool) -> BaseGeometry:
    if inscribed:
        if radius_km >= HALF_MERIDIAN_KM:
            return WORLD
        if radius_km <= 2 * _FLOOR_KM:
            return Polygon()
    else:
        radius_km = max(radius_km, _MIN_RADIUS_KM)
        if radius_km >= WHOLE_EARTH_KM:
            return WORLD
    sign = -1.0 if inscribed else 1.0
    budget = _TOLERANCE * radius_km  # dip aimed at per edge
    margin = 1.1 * budget + _FLOOR_KM + radius_km * 1e-12
    for _ in range(12):
        r_ring = radius_km + sign * margin
        if inscribed and r_ring <= 0:
            return Polygon()
        if not inscribed and r_ring >= WHOLE_EARTH_KM:
            return WORLD
        az = _plan_azimuths(lat, r_ring, budget)
        if az.size > _N_MAX:
            break
        lat_r, lon_u = _ring(lat, lon, r_ring, az)
        dip = _dip_km(lat_r, lon_u, r_ring, inscribed)
        need = dip + _FLOOR_KM
        if need <= margin:
            return _assemble(lat, lon, r_ring, lat_r, lon_u, inscribed)
        if dip <= 2.0 * budget:
            margin = 1.1 * need  # a near miss: widen the ring (sound, slightly looser)
        else:
            budget /= 4.0  # the plan misjudged some edge (near a pole): densify
    return Polygon() if inscribed else WORLD  # could not certify: fall back soundly


def _assemble(
    lat: float,
    lon: float,
    radius_km: float,
    lat_r: npt.NDArray[np.float64],
    lon_u: npt.NDArray[np.float64],
    inscribed: bool,
) -> BaseGeometry:
    del inscribed  # same topology either way
    winding = round((lon_u[-1] - lon_u[0]) / 360.0)
    lo, hi = float(lon_u.min()), float(lon_u.max())
    if winding == 0:
        lon_u = lon_u.copy()
        lon_u[-1] = lon_u[0]
        ring_poly = Polygon(np.column_stack([lon_u, lat_r]))
        small = radius_km < 5000.0 and max(abs(lat_r.min()), abs(lat_r.max())) < 80.0
        if not small and not ring_poly.is_valid:
            ring_poly = _polygonal(shapely.make_valid(ring_poly))
        # Both poles inside needs a radius above 10,001 km (half the pole-to-pole distance).
        if radius_km < 10000.0 or _inside_ring(ring_poly, lon_u, lat, lon):
            return _split(ring_poly, lo, hi)
        # The ring encloses the far region: the disk holds both poles.
        far = _split(ring_poly, lo, hi)
        return _polygonal(shapely.difference(WORLD, far))
    pole = 90.0 if lat >= 0 else -90.0
    lon_u = lon_u.copy()
    lon_u[-1] = lon_u[0] + 360.0 * winding  # exact, so the split pieces meet exactly
    coords = np.column_stack([lon_u, lat_r])
    closing = np.array([[lon_u[-1], pole], [lon_u[0], pole]])
    poly = Polygon(np.vstack([coords, closing]))
    if not poly.is_valid:
        poly = _polygonal(shapely.make_valid(poly))
    return _split(poly, lo, hi)


def geodesic_disk(lat: float, lon: float, radius_km: float) -> BaseGeometry:
    """Lon/lat (Multi)Polygon that contains every point within ``radius_km`` of (lat, lon).

    Geodesic distance on WGS84. Pieces lie within [-180, 180] x [-90, 90].
    """
    _check_point(lat, lon)
    if not math.isfinite(radius_km) and radius_km > 0:
        return WORLD
    if not radius_km >= 0:
        raise ValueError(f"radius_km must be >= 0, got {radius_km}")
    return _disk_cached(float(lat), float(lon), float(radius_km), False)


def inscribed_disk(lat: float, lon: float, radius_km: float) -> BaseGeometry:
    """Lon/lat polygon contained in the geodesic disk (for authorized circles)."""
    _check_point(lat, lon)
    if not radius_km > 0 or not math.isfinite(radius_km):
        raise ValueError(f"radius_km must be finite and > 0, got {radius_km}")
    return _disk_cached(float(lat), float(lon), float(radius_km), True)


def _check_point(lat: float, lon: float) -> None:
    if not (-90.0 <= lat <= 90.0) or not (-180.0 <= lon <= 180.0):
        raise ValueError(f"coordinates out of range: lat={lat}, lon={lon}")


_E: Final = math.sqrt(_E2)
_GL_X, _GL_W = np.polynomial.legendre.leggauss(6)


def _authalic_f(lat_deg: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Area (km² per radian of longitude) between the equator and ``lat_deg`` on WGS84."""
    s = np.sin(np.radians(lat_deg))
    return np.asarray(B_KM * B_KM / 2 * (s / (1 - _E2 * s * s) + np.arctanh(_E * s) / _E))


def _ring_area_km2(xy: npt.NDArray[np.float64]) -> float:
    lon0, lat0 = xy[:-1, 0], xy[:-1, 1]
    lon1, lat1 = xy[1:, 0], xy[1:, 1]
    t = (_GL_X[:, None] + 1) / 2
    lats = lat0 + t * (lat1 - lat0)
    mean_f = (_GL_W[:, None] / 2 * _authalic_f(lats)).sum(axis=0)
    return float(abs(np.sum(mean_f * np.radians(lon1 - lon0))))


def polygon_area_km2(geom: BaseGeometry) -> float:
    """Area (km²) on WGS84 of a lon/lat polygon whose edges are straight in lon/lat.

    Green's theorem with the authalic primitive ``F(lat)``: each edge adds the
    integral of ``F`` over its longitude span (6-point Gauss-Legendre, exact to
    rounding for the short edges used here; exact for parallels and meridians).
    """
    total = 0.0
    for part in shapely.get_parts(geom):
        if not isinstance(part, Polygon) or part.is_empty:
            continue
        total += _ring_area_km2(np.asarray(part.exterior.coords))
        for hole in part.interiors:
            total -= _ring_area_km2(np.asarray(hole.coords))
    return total
