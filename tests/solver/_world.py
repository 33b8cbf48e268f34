"""The world as the verdict tests see it, computed without the solver's own helpers.

Zones are defined by their data (Natural Earth borders with straight lon/lat edges, a
geodesic circle on WGS84, the complement of either); the truth of "is this point in the
zone" and "how far is it from the border" is computed here from those definitions with
an independent pyproj ``Geod`` and an ECEF formula written out below. Measurements come
from physics: an RTT is twice the straight-line (chord) distance at the vacuum speed of
light, times a stretch >= 1.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import shapely
from pyproj import Geod
from shapely.geometry.base import BaseGeometry

from chiploc.common.units import MAX_CLOCK_RATE_ERROR_PPM
from chiploc.common.units import SPEED_OF_LIGHT_KM_PER_MS as C
from chiploc.solver import AuthorizedRegion, country_geometries, load_region

Arr = npt.NDArray[np.float64]

#: An independent geodesic engine (not the solver's module-level instance).
TRUTH_GEOD = Geod(a=6378137.0, rf=298.257223563)
_A = 6378.137
_E2 = (1 / 298.257223563) * (2 - 1 / 298.257223563)
HALF_MERIDIAN_KM = 20003.931458625


def ecef(lat: npt.ArrayLike, lon: npt.ArrayLike) -> Arr:
    """ECEF (km) of points on the WGS84 surface (textbook formula)."""
    la = np.radians(np.asarray(lat, dtype=np.float64))
    lo = np.radians(np.asarray(lon, dtype=np.float64))
    n = _A / np.sqrt(1.0 - _E2 * np.sin(la) ** 2)
    return np.stack(
        [n * np.cos(la) * np.cos(lo), n * np.cos(la) * np.sin(lo), n * (1 - _E2) * np.sin(la)],
        axis=-1,
    )


def chord_km(
    lat1: npt.ArrayLike, lon1: npt.ArrayLike, lat2: npt.ArrayLike, lon2: npt.ArrayLike
) -> Arr:
    return np.asarray(np.linalg.norm(ecef(lat1, lon1) - ecef(lat2, lon2), axis=-1))


def dist_km(
    lat1: npt.ArrayLike, lon1: npt.ArrayLike, lat2: npt.ArrayLike, lon2: npt.ArrayLike
) -> Arr:
    la1, lo1, la2, lo2 = np.broadcast_arrays(
        *(np.asarray(v, dtype=np.float64) for v in (lat1, lon1, lat2, lon2))
    )
    _, _, m = TRUTH_GEOD.inv(lo1.ravel(), la1.ravel(), lo2.ravel(), la2.ravel())
    return np.asarray(m, dtype=np.float64).reshape(la1.shape) / 1000.0


def fwd(lat: float, lon: float, az: npt.ArrayLike, km: npt.ArrayLike) -> tuple[Arr, Arr]:
    az_a, km_a = np.broadcast_arrays(np.asarray(az, float), np.asarray(km, float))
    lo, la, _ = TRUTH_GEOD.fwd(
        np.full(az_a.size, lon), np.full(az_a.size, lat), az_a.ravel(), km_a.ravel() * 1000.0
    )
    return np.asarray(la, dtype=np.float64), np.asarray(lo, dtype=np.float64)


def rtt_ms(lat: float, lon: float, la: float, lo: float, stretch: float) -> float:
    """The RTT a landmark at (la, lo) measures to a chip at (lat, lon): light, stretched."""
    return 2.0 * float(chord_km(lat, lon, la, lo)) / C * stretch


def chord_bound_km(rtt: float, ppm: float = MAX_CLOCK_RATE_ERROR_PPM) -> float:
    """The straight-line distance a vacuum proof allows (RTT widened by the clock's rate)."""
    return rtt / (1.0 - ppm * 1e-6) / 2.0 * C


def feasible_boundary(
    landmarks: list[tuple[float, float, float]], n_az: int = 48
) -> tuple[Arr, Arr]:
    """Points on the exact boundary of each chord bound that satisfy every other bound.

    ``landmarks``: (lat, lon, chord bound km). Along ``n_az`` geodesics from each
    landmark, bisection finds the point whose chord equals the bound (kept on the inside).
    """
    lats: list[Arr] = []
    lons: list[Arr] = []
    az = np.linspace(0.0, 360.0, n_az, endpoint=False)
    for la, lo, bound in landmarks:
        lo_s = np.zeros(n_az)
        hi_s = np.full(n_az, HALF_MERIDIAN_KM)
        far_la, far_lo = fwd(la, lo, az, hi_s)
        reach = chord_km(la, lo, far_la, far_lo) > bound
        for _ in range(45):
            mid = (lo_s + hi_s) / 2
            p_la, p_lo = fwd(la, lo, az, mid)
            inside = chord_km(la, lo, p_la, p_lo) <= bound
            lo_s = np.where(inside, mid, lo_s)
            hi_s = np.where(inside, hi_s, mid)
        p_la, p_lo = fwd(la, lo, az[reach], lo_s[reach])
        lats.append(p_la)
        lons.append(p_lo)
    lat = np.concatenate(lats) if lats else np.zeros(0)
    lon = np.concatenate(lons) if lons else np.zeros(0)
    ok = np.ones(lat.size, dtype=bool)
    for la, lo, bound in landmarks:
        ok &= chord_km(la, lo, lat, lon) <= bound
    return lat[ok], lon[ok]


# --------------------------------------------------------------------------- zones


@dataclass(frozen=True)
class World:
    """A zone as the world defines it: membership, distance to the border, sample points."""

    spec: str
    truth: Callable[[Arr, Arr], npt.NDArray[np.bool_]]
    #: Upper bound of the true distance (km) to the border (exact for circles; for
    #: polygons the nearest of densely sampled border points, which lie on the border).
    border_dist: Callable[[Arr, Arr, float], Arr]
    #: (lat, lon) points on the true border, to draw "near the border" points from.
    border_points: Arr
    inside_points: Arr
    outside_points: Arr


def _circle_world(spec: str, lat0: float, lon0: float, r: float) -> World:
    rng = np.random.default_rng(abs(hash((lat0, lon0, r))) % 2**32)

    def truth(lat: Arr, lon: Arr) -> npt.NDArray[np.bool_]:
        return np.asarray(dist_km(lat0, lon0, lat, lon) < r)

    def border(lat: Arr, lon: Arr, _window_km: float) -> Arr:
        # The geodesic from the centre through p crosses the circle |d - r| from p.
        return np.abs(dist_km(lat0, lon0, lat, lon) - r)

    az = rng.uniform(0, 360, 400)
    b = np.column_stack(fwd(lat0, lon0, az, np.full(az.size, r)))
    inside = np.column_stack(fwd(lat0, lon0, az, r * np.sqrt(rng.uniform(0, 1, az.size))))
    out_d = r + (min(HALF_MERIDIAN_KM, r + 3000) - r) * rng.uniform(0.01, 1, az.size)
    outside = np.column_stack(fwd(lat0, lon0, az, out_d))
    outside = outside[~truth(outside[:, 0], outside[:, 1])]
    return World(spec, truth, border, b, inside, outside)


def _segments(geom: BaseGeometry) -> tuple[Arr, Arr]:
    """Border segments (a, b) as (lon, lat) rows; the cuts at +-180 and +-90 are no border."""
    rings = shapely.get_rings(shapely.get_parts(geom))
    xy, idx = shapely.get_coordinates(rings, return_index=True)
    same = idx[1:] == idx[:-1]
    a, b = xy[:-1][same], xy[1:][same]
    cut = ((np.abs(a[:, 0]) == 180.0) & (a[:, 0] == b[:, 0])) | (
        (np.abs(a[:, 1]) == 90.0) & (a[:, 1] == b[:, 1])
    )
    return a[~cut], b[~cut]


def _polygon_world(spec: str, geom: BaseGeometry) -> World:
    rng = np.random.default_rng(len(spec) * 7919 + int(shapely.get_num_coordinates(geom)))
    shapely.prepare(geom)
    a, b = _segments(geom)
    lines = shapely.linestrings(np.stack([a, b], axis=1))
    tree = shapely.STRtree(lines)

    def truth(lat: Arr, lon: Arr) -> npt.NDArray[np.bool_]:
        return np.asarray(shapely.intersects_xy(geom, lon, lat))

    def border(lat: Arr, lon: Arr, window_km: float) -> Arr:
        """Nearest of border points sampled every <= 50 m along straight lon/lat edges."""
        window_deg = window_km / 111.0 / max(0.05, math.cos(math.radians(float(np.abs(lat).max()))))
        pts = shapely.points(lon, lat)
        hits = tree.query(pts, predicate="dwithin", distance=window_deg + 0.01)
        segs = np.unique(hits[1])
        out = np.full(lat.size, np.inf)
        if segs.size == 0:
            return out
        sa, sb = a[segs], b[segs]
        n = np.maximum(
            2, np.ceil(dist_km(sa[:, 1], sa[:, 0], sb[:, 1], sb[:, 0]) / 0.05).astype(int) + 1
        )
        t = np.concatenate([np.linspace(0.0, 1.0, k) for k in n])
        rep = np.repeat(np.arange(segs.size), n)
        blon = sa[rep, 0] + t * (sb[rep, 0] - sa[rep, 0])
        blat = sa[rep, 1] + t * (sb[rep, 1] - sa[rep, 1])
        for i in range(lat.size):
            out[i] = float(dist_km(lat[i], lon[i], blat, blon).min())
        return out

    pick = rng.choice(a.shape[0], size=min(400, a.shape[0]), replace=False)
    bpts = np.column_stack([a[pick, 1], a[pick, 0]])
    minx, miny, maxx, maxy = geom.bounds
    pad = 3.0
    lo_x, hi_x = max(-180.0, minx - pad), min(180.0, maxx + pad)
    lo_y, hi_y = max(-90.0, miny - pad), min(90.0, maxy + pad)
    cand = np.column_stack([rng.uniform(lo_y, hi_y, 20000), rng.uniform(lo_x, hi_x, 20000)])
    inside_mask = truth(cand[:, 0], cand[:, 1])
    return World(spec, truth, border, bpts, cand[inside_mask][:400], cand[~inside_mask][:400])


def _not(world: World) -> World:
    def truth(lat: Arr, lon: Arr) -> npt.NDArray[np.bool_]:
        return ~world.truth(lat, lon)

    return World(
        "not:" + world.spec,
        truth,
        world.border_dist,
        world.border_points,
        world.outside_points,
        world.inside_points,
    )


def world(spec: str) -> World:
    """The independent world of one zone spec (country:, countries:, circle:, not:)."""
    if spec.startswith("not:"):
        return _not(world(spec[4:]))
    kind, rest = spec.split(":", 1)
    if kind == "circle":
        lat0, lon0, r = (float(x) for x in rest.split(","))
        return _circle_world(spec, lat0, lon0, r)
    table = country_geometries()
    geom = shapely.union_all([table[c][1] for c in rest.split(",")])
    return _polygon_world(spec, geom)


def polygon_zone(tmp_path: Path, name: str, ring: list[list[float]]) -> AuthorizedRegion:
    """The authorized zone of one GeoJSON polygon ``ring`` (lon/lat), loaded from a file."""
    path = tmp_path / f"{name}.geojson"
    path.write_text(json.dumps({"type": "Polygon", "coordinates": [ring]}), encoding="utf-8")
    return load_region(str(path))


def densify(ring: list[list[float]], step_deg: float) -> list[list[float]]:
    """``ring`` with vertices added along its straight lon/lat edges, ``step_deg`` apart."""
    out: list[list[float]] = []
    for (lo1, la1), (lo2, la2) in itertools.pairwise(ring):
        n = max(1, int(np.ceil(max(abs(lo2 - lo1), abs(la2 - la1)) / step_deg)))
        out += [[lo1 + (lo2 - lo1) * k / n, la1 + (la2 - la1) * k / n] for k in range(n)]
    return [*out, out[0]]
