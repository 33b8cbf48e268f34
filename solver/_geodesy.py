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
  at most ``(1.1 |tan(lat)| + 0.01) / R0``: with meridional and prime-vertical
  radii M, N and heading theta from the meridian, Liouville's formula and
  ``d(N cos(lat))/d(lat) = -M sin(lat)`` give ``kappa_g = -(tan(lat)/N) sin(theta)
  (1 + cos(theta)**2) - (M'/M**2) sin(theta) cos(theta)**2`` along such a line, so
  ``|kappa_g| <= 1.0887 |tan(lat)| / a + 0.0039 / R0`` (max of ``s (2 - s**2)`` is
  ``4 / (3 sqrt(1.5))``; ``|M'|/M**2 <= 1.5 e**2 / (a (1 - e**2))``, times the max of
  ``s (1 - s**2)``); checked numerically on WGS84 in the tests. The dip between two vertices an arc
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
    "INSCRIBED_MAX_KM",
    "R0_KM",
    "R1_KM",
    "WHOLE_EARTH_KM",
    "WORLD",
    "chord_to_geodesic_km",
    "clear_disk_cache",
    "geodesic_disk",
    "geodesic_disks",
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
#: Inscribed disks of a larger radius (short of half a meridian) are the inscribed disk of
#: this radius, a subset: past ``pi * R0`` (19,903.4 km) the distance from the centre is no
#: longer smooth, so no ring there can be certified (rings certify up to ~19,925 km).
INSCRIBED_MAX_KM: Final = 19910.0

GEOD: Final = Geod(ellps="WGS84")
WORLD: Final = box(-180.0, -90.0, 180.0, 90.0)

#: Geodesic curvature of a straight lon/lat segment on WGS84: at most
#: ``(_KAPPA_TAN |tan(lat)| + _KAPPA_ABS) / R0`` (see the module docstring).
_KAPPA_TAN: Final = 1.1
_KAPPA_ABS: Final = 0.01
#: A ring this small and this far from the poles is its own polygon (no validity check).
_PLAIN_RADIUS_KM: Final = 5000.0
_PLAIN_LAT: Final = 80.0
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


def _dips_km(
    lat: npt.NDArray[np.float64],
    lon_u: npt.NDArray[np.float64],
    start: npt.NDArray[np.intp],
    r_km: npt.NDArray[np.float64],
    inscribed: bool,
) -> npt.NDArray[np.float64]:
    """Per ring, the largest possible deviation of the centre distance along its edges (km).

    Rings are laid end to end (ring i = points ``start[i]:start[i+1]``, closed, at
    distance ``r_km[i]`` from its centre). On an edge of length ``l`` whose ends lie at
    distance ``r`` from the centre, every point lies between ``r - l/2`` and ``r + l/2``
    (triangle inequality), so the Hessian bound is taken at the worse end of that range
    for each edge. ``inf`` where no bound holds.
    """
    first, joins = start[:-1], start[1:-1] - 1  # a ring's first edge; ring-to-ring joins
    la, lb = lat[:-1], lat[1:]
    length = edge_length_bound_km(la, lon_u[:-1], lb, lon_u[1:])
    length[joins] = 0.0  # a join is no edge
    alat = np.abs(lat)
    max_abs = np.maximum(alat[:-1], alat[1:])
    max_abs[joins] = 0.0
    # Unbounded terms: an edge reaching a pole (lon/lat curvature), or reaching the
    # centre (outer) / the cut locus (inscribed) within half its length.
    unbounded = np.maximum.reduceat(max_abs, first) >= 90.0
    half = np.maximum.reduceat(length, first) / 2
    unbounded |= (r_km + half >= math.pi * R0_KM) if inscribed else (r_km - half <= 0.0)
    r_edge = np.repeat(r_km, np.diff(start))[:-1]
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        if inscribed:
            x = (r_edge + 0.5 * length) / R0_KM
            hess = -1.0 / np.tan(x)
            np.maximum(hess, 0.0, out=hess)
            hess *= 1.0 / R0_KM
        else:
            x = (r_edge - 0.5 * length) / R1_KM
            hess = 1.0 / np.tan(x)
            np.maximum(hess, 0.0, out=hess)
            hess *= 1.0 / R1_KM
        max_abs *= _RAD
        k = np.tan(max_abs, out=max_abs)  # kappa_g <= (1.1 tan|lat| + 0.01) / R0
        k *= _KAPPA_TAN / R0_KM
        k += _KAPPA_ABS / R0_KM + hess
        k *= length
        k *= length
    worst = np.maximum.reduceat(k, first) / 8.0
    worst[unbounded | ~np.isfinite(worst)] = math.inf
    return worst


_PLAN_EDGES: Final = 64  # pilot ring resolution for the vertex placement (even)
_PLAN_AZ: Final = np.linspace(0.0, 2 * math.pi, _PLAN_EDGES + 1)
_PLAN_AZ_DEG: Final = np.degrees(_PLAN_AZ)
_TWO_PI: Final = 2 * math.pi
_PLAN_COS: Final = np.cos(_PLAN_AZ)
_PLAN_SIN: Final = np.sin(_PLAN_AZ)
_PLAN_PREV: Final = np.roll(np.arange(_PLAN_EDGES), 1)
_PLAN_NEXT: Final = np.roll(np.arange(_PLAN_EDGES), -1)
_R_PLAN_KM: Final = 6371.0


def _plan_azimuths_many(
    lat: npt.NDArray[np.float64],
    r_ring_km: npt.NDArray[np.float64],
    budget_km: npt.NDArray[np.float64],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.intp]]:
    """Azimuths (deg) spaced so that each edge's dip bound stays near ``budget_km``.

    One row per ring; returns the azimuths of all rings end to end and each ring's
    vertex count (a count above the vertex cap gets no azimuths). Placement only
    (soundness comes from :func:`_dips_km` on the real ring): a spherical pilot
    ring gives, per azimuth, the edge length per radian and the curvature bound
    (Hessian term plus the lon/lat line curvature, with the circle's own curvature
    so inscribed rings are not loose); the dip of an edge of length ``l`` is
    ``K l**2 / 8``, so the vertex density is ``sqrt(K / 8 budget)`` per km, taken as
    the maximum over neighbouring pilot edges, and vertices are placed by
    inverting its cumulative sum. Dense only where the ring needs it (near a
    pole), coarse elsewhere.
    """
    p0 = np.radians(lat)[:, None]  # the plan does not depend on the centre's longitude
    d = np.minimum(r_ring_km * (1.0 / _R_PLAN_KM), math.pi)[:, None]
    sp0, cp0, sd, cd = np.sin(p0), np.cos(p0), np.sin(d), np.cos(d)
    sin_p = _PLAN_COS * (cp0 * sd)
    sin_p += sp0 * cd
    np.minimum(sin_p, 1.0, out=sin_p)
    np.maximum(sin_p, -1.0, out=sin_p)
    phi = np.arcsin(sin_p, out=sin_p)
    # Longitude offset atan2(sin az sin d, cos d cos lat0 - sin lat0 sin d cos az): well
    # conditioned at the poles too.
    lam = np.arctan2(_PLAN_SIN * sd, _PLAN_COS * (-sp0 * sd) + cd * cp0)
    dlam = lam[:, 1:] - lam[:, :-1]
    dlam -= _TWO_PI * np.rint(dlam * (1.0 / _TWO_PI))
    pa, pb = phi[:, :-1], phi[:, 1:]
    # The ring's extreme latitudes lie at azimuths 0 and 180 deg, both pilot vertices.
    aphi = np.abs(phi)
    min_abs = np.minimum(aphi[:, :-1], aphi[:, 1:])
    min_abs[pa * pb <= 0] = 0.0
    dlam *= np.cos(min_abs, out=min_abs)
    length = np.hypot(pb - pa, dlam)
    max_abs = np.maximum(aphi[:, :-1], aphi[:, 1:])
    max_abs += 2e-3
    np.minimum(max_abs, math.radians(89.999), out=max_abs)
    # The circle's own curvature, and the scale sqrt(1 / 8 budget) per row.
    row = np.array(
        [
            (
                abs(math.cos(x) / math.sin(x)) / R1_KM if 0 < x < math.pi else 1e9,
                R1_KM / math.sqrt(8.0 * b),
            )
            for x, b in zip((r_ring_km * (1.0 / R1_KM)).tolist(), budget_km.tolist(), strict=True)
        ]
    )
    k = np.tan(max_abs, out=max_abs)
    k *= _KAPPA_TAN / R0_KM
    k += row[:, :1] + _KAPPA_ABS / R0_KM
    np.sqrt(k, out=k)
    k *= row[:, 1:]
    need = length * k  # sub-edges needed per pilot edge
    need = np.maximum(need, np.maximum(need[:, _PLAN_PREV], need[:, _PLAN_NEXT]))
    np.maximum(need, 8.0 / _PLAN_EDGES, out=need)  # at least 8 vertices, spread out
    cum = np.zeros((lat.size, _PLAN_EDGES + 1))
    np.cumsum(need, axis=1, out=cum[:, 1:])
    total = cum[:, -1].tolist()
    count = np.array(
        [max(math.ceil(t), 8) if t <= _N_MAX else _N_MAX + 1 for t in total], dtype=np.intp
    )  # NaN and inf too: above the cap
    # One interpolation for all rings: ring i's cumulative sum shifted past ring i-1's.
    ok = np.flatnonzero(count <= _N_MAX)
    if ok.size == 0:
        return np.empty(0), count
    n = count[ok]
    gap = max(total[i] for i in ok.tolist()) + 1.0
    shift = np.arange(ok.size) * gap
    step = cum[ok, -1] / n
    t = np.arange(int(n.sum()), dtype=np.float64)
    t *= np.repeat(step, n)
    t += np.repeat(shift - (np.cumsum(n) - n) * step, n)
    cum_ok = cum[ok]
    cum_ok += shift[:, None]
    az: npt.NDArray[np.float64] = np.interp(t, cum_ok.ravel(), np.tile(_PLAN_AZ_DEG, ok.size))
    return az, count


def _rings(
    lat: npt.NDArray[np.float64],
    lon: npt.NDArray[np.float64],
    radius_km: npt.NDArray[np.float64],
    az: npt.NDArray[np.float64],
    count: npt.NDArray[np.intp],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.intp]]:
    """Closed rings of ``count[i]`` vertices at ``radius_km[i]``, end to end (one ``Geod.fwd``).

    Returns latitudes, longitudes unwrapped per ring (no edge spans more than 180 deg)
    and the ring offsets ``start`` (ring i = points ``start[i]:start[i+1]``, its last
    point computed from the same azimuth as its first).
    """
    size = count + 1
    start = np.zeros(count.size + 1, dtype=np.intp)
    np.cumsum(size, out=start[1:])
    last = start[1:] - 1
    az_closed = np.empty(int(start[-1]))
    body = np.ones(az_closed.size, dtype=bool)
    body[last] = False
    az_closed[body] = az
    az_closed[last] = az[np.cumsum(count) - count]  # the same input gives the same vertex
    lons, lats, _ = GEOD.fwd(
        np.repeat(lon, size), np.repeat(lat, size), az_closed, np.repeat(radius_km * 1000.0, size)
    )
    step = np.diff(lons)
    step -= 360.0 * np.round(step / 360.0)  # unwrap: no edge spans more than 180 deg of lon
    step[last[:-1]] = 0.0  # joins between rings
    lon_u = np.empty(az_closed.size)
    lon_u[0] = 0.0
    np.cumsum(step, out=lon_u[1:])
    lon_u += np.repeat(lons[start[:-1]] - lon_u[start[:-1]], size)
    # Dyadic longitudes (2**-30 deg, 0.1 mm; inside the 1 mm floor) make the +-360 shifts
    # of the antimeridian split exact, so split pieces meet exactly.
    lon_u = np.round(lon_u * 2.0**30) / 2.0**30
    return np.asarray(lats, dtype=np.float64), lon_u, start


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


_DISK_CACHE: dict[tuple[float, float, float, bool], BaseGeometry] = {}
_DISK_CACHE_SIZE: Final = 4096


def clear_disk_cache() -> None:
    """Forget every cached disk polygon (benchmarks use it to time fresh disks)."""
    _DISK_CACHE.clear()


def _cached_disks(
    lat: npt.NDArray[np.float64],
    lon: npt.NDArray[np.float64],
    radius_km: npt.NDArray[np.float64],
    inscribed: bool,
) -> list[BaseGeometry]:
    """:func:`_disks`, cached per (lat, lon, radius, inscribed); the missing ones in one batch."""
    keys = [
        (float(a), float(o), float(r), inscribed)
        for a, o, r in zip(lat.tolist(), lon.tolist(), radius_km.tolist(), strict=True)
    ]
    got = [_DISK_CACHE.get(key) for key in keys]
    missing = [i for i, disk in enumerate(got) if disk is None]
    if not missing:
        return [disk for disk in got if disk is not None]
    m = np.array(missing, dtype=np.intp)
    built = _disks(lat[m], lon[m], radius_km[m], inscribed)
    if len(_DISK_CACHE) + len(missing) > _DISK_CACHE_SIZE:
        _DISK_CACHE.clear()  # the disks looked up above are already in hand
    for i, disk in zip(missing, built, strict=True):
        got[i] = _DISK_CACHE[keys[i]] = disk
    return [disk for disk in got if disk is not None]


def _disks(
    lat: npt.NDArray[np.float64],
    lon: npt.NDArray[np.float64],
    radius_km: npt.NDArray[np.float64],
    inscribed: bool,
) -> list[BaseGeometry]:
    """Certified disk polygons (circumscribed, or inscribed), all rings of a round at once.

    Each disk runs the same steps as alone: plan, ring, certificate; a near miss
    widens its ring, a gross miss quarters its budget, at most 12 rounds, and a
    disk that cannot be certified falls back soundly (the world, or nothing).
    """
    out: list[BaseGeometry] = [WORLD if not inscribed else Polygon()] * lat.size
    r = radius_km.astype(np.float64)
    if inscribed:
        for i in np.flatnonzero(r >= HALF_MERIDIAN_KM).tolist():
            out[i] = WORLD
        todo = np.flatnonzero((r < HALF_MERIDIAN_KM) & (r > 2 * _FLOOR_KM))
        np.minimum(r, INSCRIBED_MAX_KM, out=r)  # a smaller disk inside: still inscribed
    else:
        r = np.maximum(r, _MIN_RADIUS_KM)
        todo = np.flatnonzero(r < WHOLE_EARTH_KM)
    sign = -1.0 if inscribed else 1.0
    budget = _TOLERANCE * r[todo]  # dip aimed at per edge
    margin = 1.1 * budget + _FLOOR_KM + r[todo] * 1e-12
    for _ in range(12):
        r_ring = r[todo] + sign * margin
        valid = np.flatnonzero((r_ring > 0) if inscribed else (r_ring < WHOLE_EARTH_KM))
        todo = todo[valid]
        budget, margin, r_ring = budget[valid], margin[valid], r_ring[valid]
        if todo.size == 0:
            break
        az, count = _plan_azimuths_many(lat[todo], r_ring, budget)
        planned = np.flatnonzero(count <= _N_MAX)  # otherwise: the fallback
        todo, budget, margin, r_ring = (
            todo[planned],
            budget[planned],
            margin[planned],
            r_ring[planned],
        )
        if todo.size == 0:
            break
        lat_r, lon_u, start = _rings(lat[todo], lon[todo], r_ring, az, count[planned])
        need = _dips_km(lat_r, lon_u, start, r_ring, inscribed) + _FLOOR_KM
        done = need <= margin
        plain = done & _plain_rings(lat_r, lon_u, start, r_ring)
        if plain.any():
            for i, geom in zip(
                todo[plain].tolist(), _polygons(lat_r, lon_u, start, plain), strict=True
            ):
                out[i] = geom
        for k in np.flatnonzero(done & ~plain).tolist():
            s, e = int(start[k]), int(start[k + 1])
            i = int(todo[k])
            out[i] = _assemble(
                float(lat[i]), float(lon[i]), float(r_ring[k]), lat_r[s:e], lon_u[s:e]
            )
        near = ~done & (need - _FLOOR_KM <= 2.0 * budget)
        margin = np.where(near, 1.1 * need, margin)  # widen the ring (sound, slightly looser)
        budget = np.where(near, budget, budget / 4.0)  # the plan misjudged: densify
        left = np.flatnonzero(~done)
        todo, budget, margin = todo[left], budget[left], margin[left]
        if todo.size == 0:
            break
    return out  # what could not be certified stays the sound fallback


def _plain_rings(
    lat_r: npt.NDArray[np.float64],
    lon_u: npt.NDArray[np.float64],
    start: npt.NDArray[np.intp],
    r_ring: npt.NDArray[np.float64],
) -> npt.NDArray[np.bool_]:
    """Rings whose polygon is the ring itself: :func:`_assemble` would neither close it
    through a pole, nor check or mend it, nor split it at the antimeridian."""
    first = start[:-1]
    winding = np.round((lon_u[start[1:] - 1] - lon_u[first]) / 360.0)
    top = np.maximum.reduceat(np.abs(lat_r), first)
    lo, hi = np.minimum.reduceat(lon_u, first), np.maximum.reduceat(lon_u, first)
    plain: npt.NDArray[np.bool_] = (
        (winding == 0)
        & (r_ring < _PLAIN_RADIUS_KM)
        & (top < _PLAIN_LAT)
        & (lo >= -180.0)
        & (hi <= 180.0)
    )
    return plain


def _polygons(
    lat_r: npt.NDArray[np.float64],
    lon_u: npt.NDArray[np.float64],
    start: npt.NDArray[np.intp],
    which: npt.NDArray[np.bool_],
) -> list[BaseGeometry]:
    """The polygons of the plain rings ``which`` (see :func:`_plain_rings`), in one call."""
    ring = np.repeat(np.arange(which.size), np.diff(start))
    pick = which[ring]
    lon_c = lon_u[pick]
    ends = np.cumsum(np.diff(start)[which])
    lon_c[ends - 1] = lon_c[ends - np.diff(start)[which]]  # close exactly
    ids = (np.cumsum(which) - 1)[ring[pick]]
    rings = shapely.linearrings(np.column_stack([lon_c, lat_r[pick]]), indices=ids)
    polys: list[BaseGeometry] = shapely.polygons(rings).tolist()
    return polys


def _assemble(
    lat: float,
    lon: float,
    radius_km: float,
    lat_r: npt.NDArray[np.float64],
    lon_u: npt.NDArray[np.float64],
) -> BaseGeometry:
    """The polygon of one certified ring (same topology for outer and inscribed rings)."""
    winding = round((lon_u[-1] - lon_u[0]) / 360.0)
    lo, hi = float(lon_u.min()), float(lon_u.max())
    if winding == 0:
        lon_u = lon_u.copy()
        lon_u[-1] = lon_u[0]
        ring_poly = Polygon(np.column_stack([lon_u, lat_r]))
        small = (
            radius_km < _PLAIN_RADIUS_KM and max(abs(lat_r.min()), abs(lat_r.max())) < _PLAIN_LAT
        )
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
    cap = _polar_cap(lat_r, lon_u, winding, pole)
    if cap is not None:
        return cap
    coords = np.column_stack([lon_u, lat_r])
    closing = np.array([[lon_u[-1], pole], [lon_u[0], pole]])
    poly = Polygon(np.vstack([coords, closing]))
    if not poly.is_valid:
        poly = _polygonal(shapely.make_valid(poly))
    return _split(poly, lo, hi)


def _polar_cap(
    lat_r: npt.NDArray[np.float64], lon_u: npt.NDArray[np.float64], winding: int, pole: float
) -> Polygon | None:
    """A ring around one pole, cut where it crosses the antimeridian: one polygon.

    ``lon_u`` starts inside [-180, 180] and ends exactly ``360 * winding`` later. When
    the ring crosses the antimeridian ``X = 180 * winding`` on exactly one edge, the
    vertices past it move by ``-360 * winding`` and the edge is cut at ``X`` (its
    latitude there interpolated along the straight edge, well inside the 1 cm floor):
    the same polygon as splitting the unwrapped one at +-180, without the overlay.
    None when that does not apply (the caller splits in general).
    """
    if abs(winding) != 1:
        return None
    x = 180.0 * winding
    side = (lon_u - x) * winding  # < 0 before the cut, > 0 past it
    cross = np.flatnonzero((side[:-1] < 0) & (side[1:] > 0))
    if cross.size != 1 or np.count_nonzero(side == 0.0) or np.count_nonzero(np.diff(side > 0)) != 1:
        return None
    j = int(cross[0])
    la, lb, oa, ob = lat_r[j], lat_r[j + 1], lon_u[j], lon_u[j + 1]
    lat_x = float(la + (x - oa) * (lb - la) / (ob - oa))
    coords = np.concatenate(
        [
            [[-x, lat_x]],
            np.column_stack([lon_u[j + 1 : -1] - 360.0 * winding, lat_r[j + 1 : -1]]),
            np.column_stack([lon_u[: j + 1], lat_r[: j + 1]]),
            [[x, lat_x], [x, pole], [-x, pole]],
        ]
    )
    poly = Polygon(coords)
    return poly if poly.is_valid else None


def geodesic_disk(lat: float, lon: float, radius_km: float) -> BaseGeometry:
    """Lon/lat (Multi)Polygon that contains every point within ``radius_km`` of (lat, lon).

    Geodesic distance on WGS84. Pieces lie within [-180, 180] x [-90, 90].
    """
    return geodesic_disks([lat], [lon], [radius_km])[0]


def geodesic_disks(
    lat: npt.ArrayLike, lon: npt.ArrayLike, radius_km: npt.ArrayLike
) -> list[BaseGeometry]:
    """:func:`geodesic_disk` for many disks at once (their rings share each vectorised step)."""
    la, lo, r = _check_disks(lat, lon, radius_km)
    if np.isnan(r).any() or (r < 0).any():
        raise ValueError(f"radius_km must be >= 0, got {r[np.isnan(r) | (r < 0)][0]}")
    out: list[BaseGeometry] = [WORLD] * r.size  # an infinite radius: the whole Earth
    finite = np.flatnonzero(np.isfinite(r))
    for i, geom in zip(
        finite.tolist(), _cached_disks(la[finite], lo[finite], r[finite], False), strict=True
    ):
        out[i] = geom
    return out


def inscribed_disk(lat: float, lon: float, radius_km: float) -> BaseGeometry:
    """Lon/lat polygon contained in the geodesic disk (for authorized circles)."""
    la, lo, r = _check_disks([lat], [lon], [radius_km])
    if not r[0] > 0 or not math.isfinite(r[0]):
        raise ValueError(f"radius_km must be finite and > 0, got {radius_km}")
    return _cached_disks(la, lo, r, True)[0]


def _check_disks(
    lat: npt.ArrayLike, lon: npt.ArrayLike, radius_km: npt.ArrayLike
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    la, lo, r = (np.asarray(v, dtype=np.float64).ravel() for v in (lat, lon, radius_km))
    if not la.size == lo.size == r.size:
        raise ValueError("lat, lon and radius_km must have the same length")
    bad = ~((la >= -90.0) & (la <= 90.0) & (lo >= -180.0) & (lo <= 180.0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"coordinates out of range: lat={la[i]}, lon={lo[i]}")
    return la, lo, r


_E: Final = math.sqrt(_E2)
_GL_X, _GL_W = np.polynomial.legendre.leggauss(6)
_GL_T: Final = ((_GL_X + 1) / 2)[:, None]  # nodes on [0, 1]
_GL_W_HALF: Final = (_GL_W / 2)[:, None]


def _authalic_f(lat_deg: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Area (km² per radian of longitude) between the equator and ``lat_deg`` on WGS84."""
    s = np.sin(np.radians(lat_deg))
    return np.asarray(B_KM * B_KM / 2 * (s / (1 - _E2 * s * s) + np.arctanh(_E * s) / _E))


def _edge_areas_km2(xy: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Per edge of consecutive (lon, lat) rows: the integral of ``F`` over its lon span."""
    lon0, lat0, lon1, lat1 = xy[:-1, 0], xy[:-1, 1], xy[1:, 0], xy[1:, 1]
    lats = lat0 + _GL_T * (lat1 - lat0)
    mean_f: npt.NDArray[np.float64] = (_GL_W_HALF * _authalic_f(lats)).sum(axis=0)
    mean_f *= np.radians(lon1 - lon0)
    return mean_f


def polygon_area_km2(geom: BaseGeometry) -> float:
    """Area (km²) on WGS84 of a lon/lat polygon whose edges are straight in lon/lat.

    Green's theorem with the authalic primitive ``F(lat)``: each edge adds the
    integral of ``F`` over its longitude span (6-point Gauss-Legendre, exact to
    rounding for the short edges used here; exact for parallels and meridians).
    Each ring counts by its absolute value, holes negatively; all rings in one pass.
    """
    if isinstance(geom, Polygon) and shapely.get_num_interior_rings(geom) == 0:
        return abs(float(_edge_areas_km2(shapely.get_coordinates(geom)).sum()))
    parts = shapely.get_parts(geom)
    parts = parts[(shapely.get_type_id(parts) == 3) & ~shapely.is_empty(parts)]
    if parts.size == 0:
        return 0.0
    holes = shapely.get_num_interior_rings(parts)
    sign = -np.ones(parts.size + int(holes.sum()))
    sign[np.cumsum(holes + 1) - holes - 1] = 1.0  # each polygon's exterior comes first
    xy, ring = shapely.get_coordinates(shapely.get_rings(parts), return_index=True)
    edge = _edge_areas_km2(xy)
    edge[ring[1:] != ring[:-1]] = 0.0  # no edge between two rings
    per_ring = np.bincount(ring[:-1], weights=edge, minlength=sign.size)
    return float(np.abs(per_ring) @ sign)
