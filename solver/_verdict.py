"""Decide a proven region against an authorized zone, and bound the margin.

Invariants enforced here:

* COMPLIANT only if the region is covered by the zone's inner geometry; VIOLATION only
  if it misses the zone's outer geometry; otherwise INCONCLUSIVE.
* ``margin_km`` never overstates: for every border segment it takes
  ``(f(A) + f(B) - len) / 2`` with ``f(v) = max_i (dist(v, c_i) - r_i)``, a lower bound
  of the distance from ``v`` to the exact intersection (triangle inequality) and a
  1-Lipschitz function along the border. ``len`` is an upper bound of the length of the
  segment as drawn: a straight line in lon/lat (RFC 7946), not a great circle.
* ``margin_km`` is within ~1 km of the true distance however long the zone's edges: the
  segments near the region are cut into pieces of at most ``_MARGIN_STEP_KM`` along their
  own lon/lat line before the bound is taken (a piece's ends lie on the segment, so each
  piece's bound is a bound for that piece and the minimum over the pieces one for the
  segment; the loss of ``(f(A) + f(B) - len) / 2`` against the true minimum is at most
  ``len``). A 4-corner GeoJSON box has edges of hundreds of km: uncut, its margin was 0.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry.base import BaseGeometry

from ._geodesy import (
    R0_KM,
    R1_KM,
    edge_length_bound_km,
    geodesic_km,
)
from ._intersect import _Problem, _Shape, _sphere_km
from ._regions import AuthorizedRegion, BorderSegments
from ._results import Verdict

# --------------------------------------------------------------------------- verdicts


def _decide(region: BaseGeometry, zone: AuthorizedRegion) -> Verdict:
    if region.is_empty:
        return Verdict.INCONSISTENT
    if shapely.covers(zone.geometry, region):
        return Verdict.COMPLIANT
    # A cheap proof that the region meets the outer zone before the full predicate: a
    # vertex of the zone's border (in the closed zone) inside the region.
    border = zone.outer_border
    if border.lat_a.size and shapely.intersects_xy(region, border.lon_a[0], border.lat_a[0]):
        return Verdict.INCONCLUSIVE
    if not shapely.intersects(zone.outer_geometry, region):
        return Verdict.VIOLATION
    return Verdict.INCONCLUSIVE


#: The longest piece of a border segment the margin bound is taken on (km): the bound
#: loses at most a piece's length against the true distance.
_MARGIN_STEP_KM = 0.5
#: At most this many pieces per margin (a longer step past it: still sound, less tight).
_MARGIN_MAX_PIECES = 200_000
#: Rounding room when a whole segment is ruled out before cutting (km; 1 m).
_PRUNE_SLACK_KM = 1e-3


def _pieces(
    lat_a: npt.NDArray[np.float64],
    lon_a: npt.NDArray[np.float64],
    lat_b: npt.NDArray[np.float64],
    lon_b: npt.NDArray[np.float64],
    len_km: npt.NDArray[np.float64],
    step: float,
) -> tuple[npt.NDArray[np.float64], ...]:
    """Segments cut into pieces of at most ``step`` km along their lon/lat line.

    Returns the pieces' ends and upper bounds of their lengths (``edge_length_bound_km``
    of each piece: the bound of a straight lon/lat segment, as for the whole). Segments
    short enough already are returned as they are.
    """
    k = np.maximum(np.ceil(len_km / step), 1.0).astype(np.intp)
    if int(k.max(initial=1)) == 1:
        return lat_a, lon_a, lat_b, lon_b, len_km
    seg = np.repeat(np.arange(k.size), k)
    first = np.repeat(np.cumsum(k) - k, k)
    j = np.arange(seg.size) - first
    t0 = j / k[seg]
    t1 = (j + 1) / k[seg]
    dlat = lat_b[seg] - lat_a[seg]
    dlon = lon_b[seg] - lon_a[seg]
    pa_lat = lat_a[seg] + t0 * dlat
    pa_lon = lon_a[seg] + t0 * dlon
    last = t1 >= 1.0  # the last piece ends exactly at B (no rounding past it)
    pb_lat = np.where(last, lat_b[seg], lat_a[seg] + t1 * dlat)
    pb_lon = np.where(last, lon_b[seg], lon_a[seg] + t1 * dlon)
    return pa_lat, pa_lon, pb_lat, pb_lon, edge_length_bound_km(pa_lat, pa_lon, pb_lat, pb_lon)


def _margin_km(
    prob: _Problem, members: Iterable[int], region: BaseGeometry, border: BorderSegments
) -> float:
    """Lower bound (km) of the distance from the exact intersection to ``border``."""
    idx = np.array(sorted(members), dtype=np.int64)
    if idx.size == 0 or border.lat_a.size == 0:
        return 0.0
    shape = prob.shape(region)
    u = shape.unit
    u0 = u.mean(axis=0)
    norm = float(np.linalg.norm(u0))
    if norm < 1e-6:
        return 0.0
    u0 /= norm
    alpha = float(np.arccos(np.clip(u @ u0, -1, 1)).max()) + shape.half_edge_km / R0_KM
    ang_a = np.arccos(np.clip(border.unit_a @ u0, -1, 1))
    ang_b = np.arccos(np.clip(border.unit_b @ u0, -1, 1))
    seg_len = border.len_km
    lat_c, lon_c, r_c = prob.lat[idx, None], prob.lon[idx, None], prob.r[idx, None]

    def f_bound(
        lat: npt.NDArray[np.float64], lon: npt.NDArray[np.float64]
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """``max_i (dist(v, c_i) - r_i)`` on the spheres of radius R0 and R1."""
        angle = _sphere_km(lat_c, lon_c, lat[None, :], lon[None, :], 1.0)
        return (R0_KM * angle - r_c).max(axis=0), (R1_KM * angle - r_c).max(axis=0)

    beta_km = 250.0
    while True:
        sel = np.minimum(ang_a, ang_b) <= alpha + (beta_km + seg_len) / R0_KM
        if not sel.any():
            best = math.inf
        else:
            step = max(_MARGIN_STEP_KM, float(seg_len[sel].sum()) / _MARGIN_MAX_PIECES)
            sel = np.flatnonzero(sel)
            # Whole segments first: a piece PQ of segment AB has (f(P) + f(Q) - |PQ|) / 2
            # >= (f(A) + f(B) - |AB|) / 2 (f is 1-Lipschitz and the pieces' length bounds
            # add up to at most |AB|'s), and the piece at a vertex V gives at most f(V).
            # So a segment whose whole-segment lower bound exceeds the smallest upper
            # bound of f at a vertex holds no piece that can be the minimum: cutting
            # only the others gives the same minimum, at a fraction of the pieces.
            (lo_a, hi_a), (lo_b, hi_b) = (
                f_bound(border.lat_a[sel], border.lon_a[sel]),
                f_bound(border.lat_b[sel], border.lon_b[sel]),
            )
            upper = min(float(hi_a.min()), float(hi_b.min()))
            sel = sel[(lo_a + lo_b - seg_len[sel]) / 2 <= upper + _PRUNE_SLACK_KM]
            la, loa, lb, lob, ln = _pieces(
                border.lat_a[sel],
                border.lon_a[sel],
                border.lat_b[sel],
                border.lon_b[sel],
                seg_len[sel],
                step,
            )
            (lo_a, hi_a), (lo_b, hi_b) = f_bound(la, loa), f_bound(lb, lob)
            lo = (lo_a + lo_b - ln) / 2
            hi = (hi_a + hi_b - ln) / 2
            cand = lo <= float(hi.min())
            ea = (geodesic_km(lat_c, lon_c, la[None, cand], loa[None, cand]) - r_c).max(axis=0)
            eb = (geodesic_km(lat_c, lon_c, lb[None, cand], lob[None, cand]) - r_c).max(axis=0)
            best = float(((ea + eb - ln[cand]) / 2).min())
        if best <= beta_km or beta_km >= 40000.0:
            return max(0.0, min(best, beta_km))
        beta_km *= 4


_WHOLE_PLANE_DEG2 = 360.0 * 180.0 * (1.0 - 1e-9)


def _center(shape: _Shape) -> tuple[float, float] | None:
    """A point of the region, inside it by construction (the fleet map's dot, the estimate's seed).

    The region is a polygon in the lon/lat plane, split at the antimeridian and closed along
    the poles' edges, and it is in that plane that it is drawn and decided; so shapely's
    ``point_on_surface`` of its largest part (area in that plane, weighted by the cosine of
    the part's mid-latitude) lies inside it: the middle of the widest run of the part along
    the line of latitude halfway up its bounding box. A centroid of the boundary would not:
    for a disk larger than a hemisphere it lands on the far side of the Earth.
    """
    geom = shape.geom
    if geom.is_empty or geom.area >= _WHOLE_PLANE_DEG2:
        return None  # the whole Earth: no point says more than any other
    parts = [p for p in shapely.get_parts(geom) if not p.is_empty and p.area > 0.0]
    if not parts:
        return None

    def weight(part: BaseGeometry) -> float:
        _, lat_s, _, lat_n = part.bounds
        return float(part.area) * max(math.cos(math.radians((lat_s + lat_n) / 2)), 1e-6)

    point = max(parts, key=weight).point_on_surface()
    if point.is_empty:  # pragma: no cover - a part of positive area always has one
        return None
    return float(point.y), float(point.x)
